"""SSH policies: no password logins, and root never with a password.

Verdicts come from ``sshd -T`` evaluated for the connections that matter (root,
the login user and an ordinary user, all from a scanner's address), so Match
blocks, drop-ins and defaults count exactly as sshd counts them. The config text
is read only to point at the line that decided.
"""

from __future__ import annotations

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, Section, linux, sshd
from pytest_amipolicy.verdicts import (
    Evidence,
    Outcome,
    failed,
    not_applicable,
    passed,
    undecided,
)

FAMILY = "ssh"
SCANNER = "host=scanner.invalid,addr=203.0.113.10"
ORDINARY_USER = "amipolicy-nobody"
PASSWORD_KEYWORDS = (
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "challengeresponseauthentication",
    "usepam",
    "permitemptypasswords",
    "authenticationmethods",
)
ROOT_WITHOUT_PASSWORD = {
    "no",
    "prohibit-password",
    "without-password",
    "forced-commands-only",
}
TRUE_WORDS = {"true", "yes", "1", "on"}


def _contexts(facts: Facts) -> list[tuple[str, str]]:
    """(section name, user) for every connection sshd -T is asked about."""
    login = facts.login_user or "the login user"
    return [("sshd-root", "root"), ("sshd-login", login), ("sshd-user", ORDINARY_USER)]


def _groups(facts: Facts) -> dict[str, tuple[str, ...]]:
    """Group names of root and the login user, for Match Group in the evidence."""
    if not facts.has("user-groups"):
        return {}
    groups = {}
    for line in facts.section("user-groups").output.splitlines():
        name, sep, names = line.partition(":")
        if sep:
            groups[name] = tuple(names.split())
    return groups


def _no_sshd(facts: Facts) -> Outcome | None:
    """Return an outcome when sshd -T could not be used at all."""
    try:
        root = facts.section("sshd-root")
    except MissingFact as error:
        return undecided(f"sshd's effective settings were not gathered: {error.why}")

    if root.status == 127 and "not installed" in root.output:
        return not_applicable("sshd is not installed", root.evidence("sshd -T"))
    if not root.ok or "passwordauthentication" not in linux.sshd_settings(root):
        return undecided(
            "sshd -T failed, so sshd's effective settings are unknown",
            root.evidence("sshd -T for root", _tail(root.output)),
        )
    return None


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _config(facts: Facts) -> dict[str, str]:
    if not facts.has("sshd-config"):
        return {}
    return linux.config_files(facts.section("sshd-config"))


def _settings_evidence(
    section: Section,
    user: str,
    keywords: tuple[str, ...],
    files: dict[str, str],
    groups: tuple[str, ...] = (),
) -> Evidence:
    settings = linux.sshd_settings(section)
    shown = [f"{key} {' '.join(settings[key])}" for key in keywords if key in settings]
    connection = sshd.Connection(user=user, groups=groups)
    origins = [
        sshd.describe(files, key, connection, " ".join(settings[key]))
        for key in keywords
        if key in settings
    ]
    return Evidence(
        label=f"effective sshd settings for user {user}",
        command=f"sshd -T -C user={user},{SCANNER}",
        output="\n".join(shown + ["", "decided by:"] + origins),
    )


def _password_paths(settings: dict[str, list[str]]) -> list[str]:
    """The reasons sshd would accept a password under these settings."""

    def value(key: str) -> str:
        return (settings.get(key) or [""])[0].lower()

    reasons = []
    if value("passwordauthentication") == "yes":
        reasons.append("PasswordAuthentication yes")

    keyboard = value("kbdinteractiveauthentication") or value(
        "challengeresponseauthentication"
    )
    if keyboard == "yes" and value("usepam") == "yes":
        reasons.append("keyboard-interactive through PAM (asks for the password)")
    if value("permitemptypasswords") == "yes":
        reasons.append("PermitEmptyPasswords yes")
    return reasons


def _cloud_init_password(facts: Facts) -> tuple[str | None, Evidence | None]:
    """The ssh_pwauth line cloud-init applies at boot, if it turns passwords on."""
    if not facts.has("cloud-init"):
        return None, None
    section = facts.section("cloud-init")
    lines = [line for line in section.output.splitlines() if ":" in line]
    setting_lines = [line for line in lines if "ssh_pwauth" in line.lower()]
    if not setting_lines:
        return None, None

    # cloud.cfg first, then cloud.cfg.d in lexical order: the last one wins
    last = setting_lines[-1]
    setting = last.split(":", 2)[-1] if last.startswith("/") else last
    value = setting.split(":", 1)[-1].split(" #")[0].strip().strip("'\"").lower()
    evidence = section.evidence("cloud-init ssh_pwauth", "\n".join(setting_lines))
    if value in TRUE_WORDS:
        return (
            f"cloud-init sets ssh_pwauth: {value} ({last.rsplit(':', 1)[0]})",
            evidence,
        )
    return None, evidence


@policy(
    "SSH-PASSWORD",
    needs_root=False,
    family=FAMILY,
    platforms=("linux",),
    summary="sshd accepts no password of any kind, for root, the login user or anyone",
    remediation=(
        "Set 'PasswordAuthentication no' and 'KbdInteractiveAuthentication no' "
        "(ChallengeResponseAuthentication on older sshd) before any Include or "
        "Match that could override them, remove 'PermitEmptyPasswords yes', and "
        "set 'ssh_pwauth: false' for cloud-init."
    ),
)
def check_ssh_password(facts: Facts) -> Outcome:
    stop = _no_sshd(facts)
    if stop is not None:
        return stop

    files = _config(facts)
    groups = _groups(facts)
    problems: list[str] = []
    evidence: list[Evidence] = []
    for name, user in _contexts(facts):
        # A connection sshd was not asked about could be the one a Match
        # block opens to passwords: without its answer there is no verdict.
        try:
            section = facts.section(name)
        except MissingFact as error:
            return undecided(f"sshd -T was not run for user {user}: {error.why}")
        settings = linux.sshd_settings(section)
        if not section.ok or "passwordauthentication" not in settings:
            return undecided(
                f"sshd -T failed for user {user}",
                section.evidence(f"sshd -T for {user}", _tail(section.output)),
            )
        evidence.append(
            _settings_evidence(
                section, user, PASSWORD_KEYWORDS, files, groups.get(user, ())
            )
        )
        problems += [
            f"{reason} for user {user}" for reason in _password_paths(settings)
        ]

    boot_problem, cloud_evidence = _cloud_init_password(facts)
    if cloud_evidence:
        evidence.append(cloud_evidence)
    if boot_problem:
        problems.append(boot_problem)

    if problems:
        return failed(
            "sshd accepts passwords: " + "; ".join(problems),
            *evidence,
            findings=tuple(problems),
        )
    return passed("sshd accepts no password for any connection checked", *evidence)


@policy(
    "SSH-ROOT",
    needs_root=False,
    family=FAMILY,
    platforms=("linux",),
    summary="root cannot log in over SSH with a password",
    remediation=(
        "Set 'PermitRootLogin prohibit-password' (or 'no') before any Include or "
        "Match that could override it."
    ),
)
def check_ssh_root(facts: Facts) -> Outcome:
    stop = _no_sshd(facts)
    if stop is not None:
        return stop

    section = facts.section("sshd-root")
    settings = linux.sshd_settings(section)
    value = (settings.get("permitrootlogin") or [""])[0].lower()
    evidence = _settings_evidence(
        section,
        "root",
        ("permitrootlogin",),
        _config(facts),
        _groups(facts).get("root", ()),
    )

    if not value:
        return undecided("sshd -T printed no permitrootlogin value", evidence)
    if value in ROOT_WITHOUT_PASSWORD:
        return passed(
            f"PermitRootLogin is {value}: root cannot use a password", evidence
        )
    return failed(
        f"PermitRootLogin is {value}: root may log in with a password",
        evidence,
        findings=(f"permitrootlogin {value}",),
    )
