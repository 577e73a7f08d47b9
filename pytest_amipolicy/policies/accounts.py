"""Account policies: passwords, sudo, and ways in other than the admin's.

Password fields are judged by what they mean (blank, locked, a crypt hash) and
only that meaning ever reaches the evidence: the gathering script reduces each
field to a class before it leaves the machine.
"""

from __future__ import annotations

import re

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, linux
from pytest_amipolicy.verdicts import Evidence, Outcome, failed, passed, undecided

FAMILY = "accounts"

# Services a buyer did not ask for that let someone else in.
REMOTE_AGENT = re.compile(
    r"teamviewer|anydesk|rustdesk|vnc|telnet|rsh|rlogin|rexec|xrdp|chrome-remote|"
    r"splashtop|nxserver",
    re.IGNORECASE,
)
# telnet, rexec/rlogin/rsh, RDP (xrdp), VNC displays, TeamViewer, AnyDesk
AGENT_PORTS = {23, 512, 513, 514, 3389, 5938, 7070} | set(range(5900, 5911))


# crypt(3) schemes by the ID between the first two "$" of a hash.
CRYPT_SCHEMES = {
    "1": "MD5",
    "2a": "bcrypt",
    "2b": "bcrypt",
    "2x": "bcrypt",
    "2y": "bcrypt",
    "5": "SHA-256",
    "6": "SHA-512",
    "7": "scrypt",
    "y": "yescrypt",
    "gy": "gost-yescrypt",
    "md5": "Sun MD5",
    "sha1": "SHA-1",
    "des": "old 13-character DES",
    "bsdi": "BSDi extended DES",
}


def _meaning(cls: str) -> str:
    if cls == linux.BLANK:
        return "blank (no password needed)"
    if cls == linux.LOCKED:
        return "locked"
    if cls.startswith("@hash/"):
        scheme = cls.split("/", 1)[1]
        name = CRYPT_SCHEMES.get(scheme, f"scheme {scheme or 'unnamed'}")
        return f"a usable password ({name} crypt hash)"
    if cls == linux.SHADOWED:
        return "x: the password is kept in /etc/shadow"
    return "not a valid hash, so no password opens it"


def _way_in(name: str, path: str, cls: str) -> str:
    """What a blank or usable password field lets in, for a failure."""
    if cls == linux.BLANK:
        return f"{name}: its {path} field is blank, so no password is needed"
    return f"{name}: {path} holds {_meaning(cls)}"


def _classes_evidence(label: str, command: str, classes: dict[str, str]) -> Evidence:
    lines = [f"{name}: {_meaning(cls)}" for name, cls in classes.items()]
    return Evidence(label=label, command=command, output="\n".join(lines))


@policy(
    "ROOT-PASSWORD",
    family=FAMILY,
    platforms=("linux",),
    summary="root's password field is not blank",
    remediation="Lock root's password ('passwd -l root' or 'usermod -p \"*\" root').",
)
def check_root_password(facts: Facts) -> Outcome:
    try:
        shadow = facts.section("shadow")
        passwd = facts.section("passwd")
    except MissingFact as error:
        return undecided(f"the password files were not read: {error.why}")
    if not shadow.ok or not passwd.ok:
        return undecided(
            "/etc/shadow or /etc/passwd could not be read",
            shadow.evidence("/etc/shadow", shadow.output[-500:]),
        )

    root_passwd = next((a for a in linux.accounts(passwd) if a.name == "root"), None)
    root_shadow = linux.shadow_classes(shadow).get("root")
    classes = {"root in /etc/shadow": root_shadow or "@other"}
    if root_passwd:
        classes["root in /etc/passwd"] = root_passwd.password
    evidence = _classes_evidence(
        "root's password fields, by what they mean (never the hash)",
        f"{shadow.command}; {passwd.command}",
        classes,
    )

    if root_passwd and root_passwd.password == linux.BLANK:
        return failed("root's /etc/passwd password field is blank", evidence)
    if root_shadow is None and (
        root_passwd is None or root_passwd.password == linux.SHADOWED
    ):
        return undecided("root has no /etc/shadow entry", evidence)
    if root_shadow == linux.BLANK:
        return failed("root's /etc/shadow password field is blank", evidence)
    # Without a shadow entry, a field other than "x" in passwd is the password.
    decided_by = root_shadow or (root_passwd.password if root_passwd else "")
    usable = (
        " (usable passwords are NO-PASSWORDS' to judge)"
        if (linux.is_usable(decided_by))
        else ""
    )
    return passed(
        f"root's password field is not blank: it is {_meaning(decided_by)}{usable}",
        evidence,
    )


@policy(
    "NO-PASSWORDS",
    family=FAMILY,
    platforms=("linux",),
    summary="no account has a usable or empty password",
    remediation=(
        "Lock every password ('passwd -l USER'); buyers log in with their own key pair."
    ),
)
def check_no_passwords(facts: Facts) -> Outcome:
    try:
        shadow = facts.section("shadow")
        passwd = facts.section("passwd")
    except MissingFact as error:
        return undecided(f"the password files were not read: {error.why}")
    if not shadow.ok or not passwd.ok:
        return undecided(
            "/etc/shadow or /etc/passwd could not be read",
            shadow.evidence("/etc/shadow", shadow.output[-500:]),
        )

    problems: list[str] = []
    accounts = linux.accounts(passwd)
    for account in accounts:
        # A field other than "x" in passwd is the password itself.
        if account.password == linux.BLANK or linux.is_usable(account.password):
            problems.append(_way_in(account.name, "/etc/passwd", account.password))
    shadow_classes = linux.shadow_classes(shadow)
    for name, cls in shadow_classes.items():
        if cls == linux.BLANK or linux.is_usable(cls):
            problems.append(_way_in(name, "/etc/shadow", cls))

    evidence = _classes_evidence(
        "password field of every account in /etc/shadow, by what it means "
        "(never the hash)",
        shadow.command,
        shadow_classes,
    )
    if problems:
        names = {problem.split(":", 1)[0] for problem in problems}
        many = len(names) != 1
        return failed(
            f"{len(names)} account{'s' if many else ''} can log in with a "
            "password or without one: " + "; ".join(problems),
            evidence,
            findings=tuple(problems),
        )
    return passed(
        f"none of the {len(set(shadow_classes) | {a.name for a in accounts})} "
        "accounts has a usable or blank password: each is locked or not a valid "
        "hash",
        evidence,
    )


@policy(
    "SUDO",
    needs_root=False,
    family=FAMILY,
    platforms=("linux",),
    summary="the login user can become root through sudo",
    remediation=(
        "Install sudo and give the default login user passwordless sudo, e.g. "
        "'USER ALL=(ALL) NOPASSWD:ALL' in /etc/sudoers.d/."
    ),
)
def check_sudo(facts: Facts) -> Outcome:
    try:
        section = facts.section("sudo")
    except MissingFact as error:
        return undecided(f"sudo was not tried: {error.why}")

    user = facts.login_user or "the login user"
    evidence = [
        Evidence(
            f"whether {user} can become root without a password",
            f"sudo -n true (run as {user})",
            section.output,
        )
    ]
    if facts.has("sudo-list"):
        rules = facts.section("sudo-list")
        evidence.append(
            Evidence(
                f"sudo rules of {user}",
                # the script's command names the user by its variable
                rules.command.replace('"$user"', user),
                rules.output,
            )
        )
    if section.ok:
        return passed(
            f"{user} can become root through sudo without a password "
            "('sudo -n true' succeeded)",
            *evidence,
        )
    if section.output.startswith("cannot act as "):
        # Neither root nor the login user ran the script: sudo was not tried.
        return undecided(
            f"sudo could not be tried as {user}: {section.output.strip()}", *evidence
        )
    if section.status == 127 or "not found" in section.output:
        return failed("sudo is not installed", *evidence)
    said = section.output.replace(f"exit status {section.status}", "").strip()
    return failed(f"sudo -n refused {user}: {said[:200]}", *evidence)


@policy(
    "OUTSIDE-ACCESS",
    family=FAMILY,
    platforms=("linux",),
    summary="no extra root accounts and no remote-access agents beyond SSH admin access",
    remediation=(
        "Remove accounts with UID 0 other than root, and disable or uninstall "
        "remote-access services (telnet, rsh, VNC, xrdp, TeamViewer, AnyDesk...)."
    ),
)
def check_outside_access(facts: Facts) -> Outcome:
    try:
        passwd = facts.section("passwd")
    except MissingFact as error:
        return undecided(f"/etc/passwd was not read: {error.why}")

    problems = [
        f"account {a.name} has UID 0"
        for a in linux.accounts(passwd)
        if a.uid == 0 and a.name != "root"
    ]
    evidence: list[Evidence] = []

    if facts.has("remote-agents"):
        agents = facts.section("remote-agents")
        evidence.append(
            agents.evidence(
                "remote-access software (programs, systemd units, inetd entries)",
                agents.output or "none found",
            )
        )
        for line in agents.output.splitlines():
            kind, _, rest = line.partition(" ")
            if kind in ("enabled", "inetd", "xinetd") and REMOTE_AGENT.search(rest):
                problems.append(f"remote-access service {kind}: {rest}")

    if facts.has("listeners"):
        listeners = facts.section("listeners")
        evidence.append(listeners.evidence("listening sockets (for review)"))
        for line in listeners.output.splitlines():
            fields = line.split()
            local = fields[4] if len(fields) > 4 else ""
            port = local.rsplit(":", 1)[-1]
            if port.isdigit() and int(port) in AGENT_PORTS:
                problems.append(
                    f"listener on port {port} of a remote-access service: {line}"
                )

    if problems:
        return failed("; ".join(problems), *evidence, findings=tuple(problems))
    return passed(
        "no extra UID 0 account and no remote-access agent enabled", *evidence
    )
