"""The policy catalogue: every policy's identity, wording and check function.

Policies register themselves with :func:`policy` when their family module is
imported; :func:`all_policies` imports the families and returns the catalogue in
a stable order. IDs are stable: reports, waivers and case files use them.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pytest_amipolicy.facts import Facts
    from pytest_amipolicy.verdicts import Outcome

POLICY_PAGE = (
    "https://docs.aws.amazon.com/marketplace/latest/userguide/"
    "product-and-ami-policies.html"
)

# Where a policy is judged: on the image's EC2 attributes, on a running Linux or
# Windows machine, or by a person.
PLATFORMS = ("ami", "linux", "windows", "manual")

FAMILY_MODULES = (
    "pytest_amipolicy.policies.ami",
    "pytest_amipolicy.policies.amazon",
    "pytest_amipolicy.policies.ssh",
    "pytest_amipolicy.policies.accounts",
    "pytest_amipolicy.policies.keys",
    "pytest_amipolicy.policies.secrets",
    "pytest_amipolicy.policies.system",
    "pytest_amipolicy.policies.filesystems",
    "pytest_amipolicy.policies.windows",
    "pytest_amipolicy.policies.manual",
)

Check = Callable[["Facts"], "Outcome"]


@dataclass(frozen=True)
class Policy:
    """One policy of the catalogue."""

    id: str
    family: str
    platforms: frozenset[str]
    summary: str
    remediation: str
    check: Check
    # The verdict needs a launched instance too (the AMI's attributes alone
    # cannot show that it works with IMDSv2 required, say).
    needs_launch: bool = False
    # The facts it reads are only complete when gathered as root (shadow,
    # other users' homes); gathered without root, the verdict is error.
    needs_root: bool = True

    @property
    def url(self) -> str:
        return POLICY_PAGE

    def applies_to(self, platform: str) -> bool:
        return platform in self.platforms


_REGISTRY: dict[str, Policy] = {}


def policy(
    policy_id: str,
    *,
    family: str,
    platforms: tuple[str, ...],
    summary: str,
    remediation: str,
    needs_launch: bool = False,
    needs_root: bool = True,
) -> Callable[[Check], Check]:
    """Register the decorated function as the check of policy ``policy_id``."""

    unknown = set(platforms) - set(PLATFORMS)
    if unknown:
        raise ValueError(f"{policy_id}: unknown platforms {sorted(unknown)}")

    def register(check: Check) -> Check:
        # A module imported again (pytester's in-process runs drop modules
        # between runs) replaces its own policy; another module may not.
        known = _REGISTRY.get(policy_id)
        if known is not None and known.check.__qualname__ != check.__qualname__:
            raise ValueError(f"policy {policy_id} is registered twice")
        _REGISTRY[policy_id] = Policy(
            id=policy_id,
            family=family,
            platforms=frozenset(platforms),
            summary=summary,
            remediation=remediation,
            check=check,
            needs_launch=needs_launch,
            needs_root=needs_root,
        )
        return check

    return register


def all_policies() -> list[Policy]:
    """Return every policy, grouped by family in catalogue order."""
    for module in FAMILY_MODULES:
        importlib.import_module(module)

    # Whoever imported a family first, the catalogue order stays the same.
    def position(policy: Policy) -> int:
        module = policy.check.__module__
        return (
            FAMILY_MODULES.index(module)
            if module in FAMILY_MODULES
            else len(FAMILY_MODULES)
        )

    return sorted(_REGISTRY.values(), key=position)


def get_policy(policy_id: str) -> Policy:
    all_policies()
    return _REGISTRY[policy_id]


def select(patterns: list[str]) -> list[Policy]:
    """Return the policies whose ID matches any of ``patterns`` (globs allowed).

    Raises ``KeyError`` naming the first pattern that matches nothing, so that a
    typo is reported instead of silently checking less.
    """
    policies = all_policies()
    if not patterns:
        return policies

    chosen: set[str] = set()
    for pattern in patterns:
        matches = [p.id for p in policies if fnmatch.fnmatchcase(p.id, pattern.upper())]
        if not matches:
            raise KeyError(pattern)
        chosen.update(matches)

    return [p for p in policies if p.id in chosen]
