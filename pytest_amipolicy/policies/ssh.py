"""SSH policies: no password logins, and root never with a password.

Verdicts come from ``sshd -T`` evaluated for the connections that matter: root,
the login user and an ordinary user, all from a scanner's address, and, when
the configuration has Match blocks, every account sshd could let in, on every
port and local address a Match block asks about. So Match blocks, drop-ins and
defaults count exactly as sshd counts them. The config text is read only to
point at the line that decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, linux, sshd
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
# What each of those values lets root do, for the reason of a pass.
ROOT_WITHOUT_PASSWORD_WORDS = {
    "no": "no: root cannot log in over SSH at all",
    "prohibit-password": "prohibit-password: root logs in with a key, never a password",
    # sshd -T prints prohibit-password under its old name
    "without-password": (
        "prohibit-password (sshd -T prints it as without-password): root logs in "
        "with a key, never a password"
    ),
    "forced-commands-only": (
        "forced-commands-only: root logs in only with a key restricted to one "
        "command, never a password"
    ),
}
TRUE_WORDS = {"true", "yes", "1", "on"}
# sshd -T is always asked about root, the login user and an ordinary user.
STANDARD = 3
# Per-account evaluations shown in full in the evidence; the rest are counted.
MAX_DETAILED = 5


@dataclass(frozen=True)
class Evaluation:
    """One connection sshd -T was asked about, and what it answered."""

    connection: sshd.Connection
    settings: dict[str, list[str]]
    label: str

    @property
    def key(self) -> tuple[str, int | None, str | None]:
        """The connection itself: the same one may be asked about twice."""
        c = self.connection
        return (c.user, c.local_port, c.local_address)

    @property
    def command(self) -> str:
        spec = f"user={self.connection.user},{SCANNER}"
        if self.connection.local_port is not None:
            spec += f",lport={self.connection.local_port}"
        if self.connection.local_address:
            spec += f",laddr={self.connection.local_address}"
        return f"sshd -T -C {spec}"


def _standard(facts: Facts) -> list[tuple[str, str, str]]:
    """(section name, user, label) of the connections sshd -T is always asked about.

    The ordinary user is an account that does not exist: it stands for every
    user no Match block names, and the label says so.
    """
    login = facts.login_user
    asked = [
        (
            "sshd-root",
            "root",
            "user root (the login user)" if login == "root" else "user root",
        )
    ]
    # Logged in as root, the login user's answer is root's again.
    if login != "root":
        asked.append(
            (
                "sshd-login",
                login or "the login user",
                f"user {login} (the login user)" if login else "the login user",
            )
        )
    asked.append(
        ("sshd-user", ORDINARY_USER, f"any other user (probed as {ORDINARY_USER})")
    )
    return asked


def _groups(facts: Facts) -> dict[str, tuple[str, ...]]:
    """Group names of the accounts, for Match Group in the evidence."""
    if not facts.has("user-groups"):
        return {}
    groups = {}
    for line in facts.section("user-groups").output.splitlines():
        name, sep, names = line.partition(":")
        if sep:
            groups[name] = tuple(names.split())
    return groups


def _evaluations(facts: Facts, user: str | None = None) -> list[Evaluation] | Outcome:
    """Every sshd -T answer gathered (for ``user`` only, if given), or the
    outcome when one is missing or failed.

    A connection sshd was not asked about could be the one a Match block opens
    to passwords: without its answer there is no verdict.
    """
    groups = _groups(facts)
    found: list[Evaluation] = []
    for name, asked, label in _standard(facts):
        if user is not None and asked != user:
            continue
        try:
            section = facts.section(name)
        except MissingFact as error:
            return undecided(f"sshd -T was not run for {label}: {error.why}")
        settings = linux.sshd_settings(section)
        if not section.ok or "passwordauthentication" not in settings:
            return undecided(
                f"sshd -T failed for {label}",
                section.evidence(f"sshd -T for {label}", _tail(section.output)),
            )
        connection = sshd.Connection(user=asked, groups=groups.get(asked, ()))
        found.append(Evaluation(connection, settings, label))

    if not facts.has("sshd-contexts"):
        if any(_has_match(text) for text in _config(facts).values()):
            return undecided(
                "sshd's configuration has Match blocks, but sshd -T was not "
                "evaluated for every account"
            )
        return found

    section = facts.section("sshd-contexts")
    contexts = linux.sshd_contexts(section)
    if not section.ok:
        return undecided(
            "sshd -T could not be evaluated for every account",
            section.evidence("sshd -T per account", _tail(section.output)),
        )
    for context in contexts or []:
        if user is not None and context.user != user:
            continue
        if context.status or "passwordauthentication" not in context.settings:
            return undecided(
                f"sshd -T failed for {context.describe()}",
                Evidence(f"sshd -T for {context.describe()}", output=context.error),
            )
        connection = sshd.Connection(
            user=context.user,
            groups=groups.get(context.user, ()),
            local_port=context.local_port,
            local_address=context.local_address,
        )
        found.append(Evaluation(connection, context.settings, context.describe()))
    return found


def _has_match(text: str) -> bool:
    return any(
        line.strip().lower().startswith(("match ", "match\t", "match="))
        for line in text.splitlines()
    )


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
    evaluation: Evaluation, keywords: tuple[str, ...], files: dict[str, str]
) -> Evidence:
    settings = evaluation.settings
    shown = [f"{key} {' '.join(settings[key])}" for key in keywords if key in settings]
    origins = [
        sshd.describe(
            files,
            key,
            evaluation.connection,
            " ".join(settings[key]),
            # the probe account exists nowhere: say what it stands for
            who=evaluation.label if evaluation.connection.user == ORDINARY_USER else "",
        )
        for key in keywords
        if key in settings
    ]
    return Evidence(
        label=f"effective sshd settings for {evaluation.label}",
        command=evaluation.command,
        output="\n".join(shown + ["", "decided by:"] + origins),
    )


def _password_paths(settings: dict[str, list[str]]) -> list[str]:
    """The reasons sshd would accept a password under these settings."""

    def value(key: str) -> str:
        return (settings.get(key) or [""])[0].lower()

    reasons = []
    if value("passwordauthentication") == "yes":
        reasons.append("PasswordAuthentication yes")

    # sshd 8.7 and later: ChallengeResponseAuthentication is another name for
    # KbdInteractiveAuthentication and sshd -T prints only the latter. Before,
    # both were printed, and both had to be on: KbdInteractiveAuthentication
    # offers keyboard-interactive, ChallengeResponseAuthentication lets it run
    # the PAM conversation that asks for the password.
    keywords = [
        key
        for key in ("kbdinteractiveauthentication", "challengeresponseauthentication")
        if key in settings
    ]
    keyboard = bool(keywords) and all(value(key) == "yes" for key in keywords)
    if keyboard and value("usepam") == "yes":
        reasons.append("keyboard-interactive through PAM (asks for the password)")
    if value("permitemptypasswords") == "yes":
        reasons.append("PermitEmptyPasswords yes")
    return reasons


def _grouped(problems: dict[str, list[str]]) -> list[str]:
    """One line per reason, naming every connection it holds for."""
    lines = []
    for reason, labels in problems.items():
        shown = labels[:8] + ([f"{len(labels) - 8} more"] if len(labels) > 8 else [])
        lines.append(f"{reason} for {', '.join(shown)}")
    return lines


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

    evaluations = _evaluations(facts)
    if isinstance(evaluations, Outcome):
        return evaluations

    files = _config(facts)
    labels = _labels(evaluations)
    problems: dict[str, list[str]] = {}
    evidence: list[Evidence] = []
    detailed = 0
    for number, evaluation in enumerate(evaluations):
        reasons = _password_paths(evaluation.settings)
        for reason in reasons:
            holding = problems.setdefault(reason, [])
            if labels[evaluation.key] not in holding:
                holding.append(labels[evaluation.key])
        # The three standard connections always; others when they decide.
        standard = number < STANDARD
        if standard or (reasons and detailed < MAX_DETAILED):
            detailed += 0 if standard else 1
            evidence.append(_settings_evidence(evaluation, PASSWORD_KEYWORDS, files))
    evidence.append(_coverage(evaluations))

    found = _grouped(problems)
    boot_problem, cloud_evidence = _cloud_init_password(facts)
    if cloud_evidence:
        evidence.append(cloud_evidence)
    if boot_problem:
        found.append(boot_problem)

    if found:
        return failed(
            "sshd accepts passwords: " + "; ".join(found),
            *evidence,
            findings=tuple(found),
        )
    always = [e.label for e in evaluations[:STANDARD]]
    others = len(labels) - len(always)
    named = ", ".join(always[:-1]) + f" and {always[-1]}"
    if others > 0:
        named += f", and {others} more that its Match blocks could change"
    return passed(
        f"sshd accepts no password on any of the {len(labels)} connections "
        f"checked: {named}",
        *evidence,
    )


def _labels(
    evaluations: list[Evaluation],
) -> dict[tuple[str, int | None, str | None], str]:
    """Each connection once, by the label it was first asked about under."""
    labels: dict[tuple[str, int | None, str | None], str] = {}
    for evaluation in evaluations:
        labels.setdefault(evaluation.key, evaluation.label)
    return labels


def _coverage(evaluations: list[Evaluation]) -> Evidence:
    labels = list(_labels(evaluations).values())
    return Evidence(
        f"connections sshd -T was asked about ({len(labels)})",
        output="\n".join(labels),
    )


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

    as_root = _evaluations(facts, "root")
    if isinstance(as_root, Outcome):
        return as_root

    files = _config(facts)
    values = {
        e.label: (e.settings.get("permitrootlogin") or [""])[0].lower() for e in as_root
    }
    evidence = [_settings_evidence(as_root[0], ("permitrootlogin",), files)]
    evidence += [
        _settings_evidence(e, ("permitrootlogin",), files)
        for e in as_root[1:]
        if values[e.label] not in ROOT_WITHOUT_PASSWORD
    ][:MAX_DETAILED]

    unknown = [label for label, value in values.items() if not value]
    if unknown:
        return undecided(
            f"sshd -T printed no permitrootlogin value for {', '.join(unknown)}",
            *evidence,
        )
    allowed = {
        label: v for label, v in values.items() if v not in ROOT_WITHOUT_PASSWORD
    }
    if allowed:
        found = tuple(
            f"permitrootlogin {v} for {label}" for label, v in allowed.items()
        )
        first = next(iter(allowed.values()))
        return failed(
            f"PermitRootLogin is {first}: root may log in with a password "
            f"({'; '.join(found)})",
            *evidence,
            findings=found,
        )
    value = values[as_root[0].label]
    return passed(f"PermitRootLogin {ROOT_WITHOUT_PASSWORD_WORDS[value]}", *evidence)
