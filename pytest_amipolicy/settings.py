"""The validated settings of a run, built once from options and ini keys."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Everything the targets and policies need from the command line and ini."""

    amis: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    region: str | None = None
    user: str | None = None
    # The option or ini key the user came by, for messages about it.
    user_source: str = "--ami-user"
    key_file: Path | None = None
    instance_type: str | None = None
    subnet: str | None = None
    ingress_cidr: str | None = None
    connect: str = "public"
    keep: bool = False
    policies: tuple[str, ...] = ()
    # The IDs or globs that chose them, as written, and where they were written
    # (--ami-policy or the amipolicy_policies ini key); empty for all policies.
    policy_patterns: tuple[str, ...] = ()
    policy_patterns_source: str = "--ami-policy"
    check_date: datetime.date = field(default_factory=datetime.date.today)
    max_age_days: int = 730
    boot_timeout: float = 600.0
    ssh_timeout: float = 300.0
    evidence_path: Path | None = None
    redact: tuple[str, ...] = ()
    image_cache: Path | None = None
    # Amazon's own verdicts (AMAZON-* policies), each off unless asked for.
    inspector: bool = False
    inspector_severity: str = "HIGH"
    product: str | None = None
    guardduty: bool = False
    guardduty_role: str | None = None
    amazon_timeout: float = 900.0
    amazon_poll_delay: float = 15.0
