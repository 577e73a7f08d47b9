"""Windows policies, judged on the ``windows`` section of the facts.

Accounts and groups are found by SID and RID, never by name, since names are
translated and can be renamed. A fact the script could not read makes the
verdict an error, never a pass.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from typing import Any

from pytest_amipolicy.catalogue import Check, policy
from pytest_amipolicy.facts import Facts, MissingFact
from pytest_amipolicy.facts.windows import SECTION, SOURCES, machine
from pytest_amipolicy.verdicts import Evidence, Outcome, failed, passed, undecided

logger = logging.getLogger(__name__)

REMOTE_DESKTOP_USERS = "S-1-5-32-555"
GUEST_RID = "501"
ADMINISTRATOR_RID = "500"
EC2CONFIG_FEATURES = ("Ec2SetPassword", "Ec2HandleUserData", "Ec2WindowsActivate")

# Launch agent files, matched by their tail so the install drive does not matter.
V2_FILES = ("\\amazon\\ec2launch\\ec2launch.exe",)
V1_FILES = (
    "\\amazon\\ec2-windows\\launch\\module\\ec2launch.psd1",
    "\\amazon\\ec2-windows\\launch\\scripts\\initializeinstance.ps1",
)
EC2CONFIG_FILES = ("\\amazon\\ec2configservice\\ec2config.exe",)

# The launch agents' settings files, as the fact script reads them.
AGENT_SETTINGS = {
    "v2": "%ProgramData%\\Amazon\\EC2Launch\\config\\agent-config.yml",
    "v1": "%ProgramData%\\Amazon\\EC2-Windows\\Launch\\Config\\LaunchConfig.json",
    "ec2config": "%ProgramFiles%\\Amazon\\Ec2ConfigService\\Settings\\config.xml",
}
AGENT_FOLDERS = (
    "%ProgramFiles%\\Amazon\\EC2Launch",
    "%ProgramData%\\Amazon\\EC2-Windows\\Launch",
    "%ProgramFiles%\\Amazon\\Ec2ConfigService",
)


def _errors(document: dict[str, Any]) -> dict[str, Any]:
    """The script's reasons for what it could not read, checked to be an object."""
    errors = document.get("errors", {})
    if not isinstance(errors, dict):
        raise MissingFact(
            f"{SECTION}.errors", f"is {type(errors).__name__}, not an object"
        )
    return errors


def _fact(document: dict[str, Any], key: str, kind: type | None = None) -> Any:
    """Return ``document[key]``, or raise MissingFact with the script's reason.

    With ``kind``, a value of another JSON type is missing too: the script
    did not say what the policy needs.
    """
    value = document.get(key)
    if value is None:
        why = _errors(document).get(key, "the fact script did not report it")
        raise MissingFact(f"{SECTION}.{key}", str(why))
    if kind is not None and not isinstance(value, kind):
        raise MissingFact(
            f"{SECTION}.{key}",
            f"is {type(value).__name__}, not {_JSON_TYPES.get(kind, kind.__name__)}",
        )
    return value


_JSON_TYPES: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


def _evidence(facts: Facts, label: str, value: Any, source: str = "") -> Evidence:
    section = facts.section(SECTION)
    output = json.dumps(value, indent=2, sort_keys=True)
    return dataclasses.replace(section.evidence(label, output=output), source=source)


def _version(document: dict[str, Any]) -> tuple[int, int]:
    os_info = document.get("os") or {}
    parts = str(os_info.get("version", "")).split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise MissingFact(
            f"{SECTION}.os.version", f"unreadable version {os_info.get('version')!r}"
        ) from None


def _has(paths: list[str], tails: tuple[str, ...]) -> bool:
    return any(path.lower().endswith(tail) for path in paths for tail in tails)


def _agents(document: dict[str, Any]) -> dict[str, bool]:
    """Which launch agents are installed, from their services and files."""
    services = {name.lower() for name in _fact(document, "services", dict)}
    paths = [str(path) for path in _fact(document, "paths", list)]
    return {
        "EC2Launch v2": "ec2launch" in services or _has(paths, V2_FILES),
        "EC2Launch v1": _has(paths, V1_FILES),
        "EC2Config": "ec2config" in services or _has(paths, EC2CONFIG_FILES),
    }


def _guarded(check: Check) -> Check:
    """Turn a missing or unreadable fact into an error verdict with its reason."""

    @functools.wraps(check)
    def judged(facts: Facts) -> Outcome:
        try:
            return check(facts)
        except MissingFact as missing:
            logger.debug("%s: %s", check.__name__, missing)
            return undecided(str(missing))
        except (AttributeError, TypeError, ValueError, KeyError) as error:
            # A part nested deeper than the checks look (a user that is not an
            # object, a count that is not a number): still no verdict.
            logger.debug("%s: unexpected fact shape", check.__name__, exc_info=True)
            return undecided(
                f"the {SECTION} facts are not shaped as the fact script writes "
                f"them ({type(error).__name__}: {error})"
            )

    return judged


@policy(
    "WIN-LAUNCH-AGENT",
    family="windows",
    platforms=("windows",),
    summary=(
        "The image runs the launch agent its Windows version needs: EC2Launch "
        "(v1 or v2) from Server 2016 on, EC2Config with password, activation "
        "and user-data handling on for 2012 R2 and older."
    ),
    remediation=(
        "Install EC2Launch v2 on Windows Server 2016 and later; on 2012 R2 and "
        "older, install the current EC2Config and enable Ec2SetPassword, "
        "Ec2WindowsActivate and Ec2HandleUserData in its config.xml before "
        "creating the image."
    ),
)
@_guarded
def check_launch_agent(facts: Facts) -> Outcome:
    document = machine(facts)
    _fact(document, "os", dict)
    major, minor = _version(document)
    agents = _agents(document)
    installed = [name for name, present in agents.items() if present]
    seen = {
        "os": document["os"],
        "services": document["services"],
        "paths": document["paths"],
        "launch": document.get("launch", {}),
    }
    evidence = _evidence(
        facts,
        "launch agent files and services",
        seen,
        source=f"{SOURCES['services']}; files under {', '.join(AGENT_FOLDERS)}",
    )
    caption = document["os"].get("caption") or f"Windows {major}.{minor}"

    if major >= 10:
        if agents["EC2Launch v2"] or agents["EC2Launch v1"]:
            found = "EC2Launch v2" if agents["EC2Launch v2"] else "EC2Launch v1"
            return passed(f"{caption} runs {found}", evidence)
        return failed(
            f"{caption} needs EC2Launch (v1 or v2); found "
            f"{', '.join(installed) or 'no launch agent'}",
            evidence,
        )

    if not agents["EC2Config"]:
        return failed(
            f"{caption} needs EC2Config; found {', '.join(installed) or 'no launch agent'}",
            evidence,
        )

    plugins = (document.get("launch") or {}).get("ec2config")
    if plugins is None:
        why = _errors(document).get("launch_ec2config", "config.xml not found")
        return undecided(f"EC2Config's plugin settings are unreadable: {why}", evidence)

    off = [name for name in EC2CONFIG_FEATURES if plugins.get(name) != "Enabled"]
    if off:
        return failed(
            f"EC2Config on {caption} has {', '.join(off)} not enabled",
            evidence,
            findings=tuple(f"{name}: {plugins.get(name, 'absent')}" for name in off),
        )
    return passed(
        f"{caption} runs EC2Config with {', '.join(EC2CONFIG_FEATURES)} on", evidence
    )


@policy(
    "WIN-GUEST",
    family="windows",
    platforms=("windows",),
    summary="The built-in guest account (RID 501, under any name) is absent or disabled.",
    remediation=(
        "Disable the built-in guest account (Disable-LocalUser -SID <machine SID>-501, "
        "or net user <its name> /active:no) before creating the image."
    ),
)
@_guarded
def check_guest(facts: Facts) -> Outcome:
    document = machine(facts)
    users = _fact(document, "local_users", list)
    evidence = _evidence(facts, "local accounts", users, source=SOURCES["local_users"])

    # Every Windows machine lists its built-in administrator (RID 500), even
    # disabled or renamed: a list without it was not read whole, and the
    # guest account may be what is missing from it.
    if not any(_rid(user) == ADMINISTRATOR_RID for user in users):
        return undecided(
            "the local accounts were not all read: the built-in administrator "
            "(RID 500) is not among them",
            evidence,
        )

    guests = [user for user in users if _rid(user) == GUEST_RID]
    if not guests:
        return passed("there is no built-in guest account (RID 501)", evidence)

    enabled = [user for user in guests if user.get("enabled") is not False]
    unknown = [user for user in enabled if user.get("enabled") is not True]
    if unknown:
        return undecided(
            "whether the guest account is enabled was not reported", evidence
        )
    if enabled:
        names = ", ".join(str(user.get("name")) for user in enabled)
        return failed(
            f"the built-in guest account ({names}) is enabled",
            evidence,
            findings=tuple(f"{user.get('name')} {user.get('sid')}" for user in enabled),
        )

    names = ", ".join(str(user.get("name")) for user in guests)
    return passed(f"the built-in guest account ({names}) is disabled", evidence)


def _rid(user: dict[str, Any]) -> str | None:
    """The relative id of a local account's SID; None for another kind of SID."""
    sid = str(user.get("sid", ""))
    if not sid.startswith("S-1-5-21-"):
        return None
    return sid.rsplit("-", 1)[-1]


@policy(
    "WIN-RDP-USERS",
    family="windows",
    platforms=("windows",),
    summary="The Remote Desktop Users group (S-1-5-32-555) has no members.",
    remediation=(
        "Remove every member of the Remote Desktop Users group; administrators "
        "can use remote desktop without it."
    ),
)
@_guarded
def check_rdp_users(facts: Facts) -> Outcome:
    document = machine(facts)
    groups = _fact(document, "groups", dict)
    group = groups.get(REMOTE_DESKTOP_USERS)
    if group is None:
        return undecided(f"the group {REMOTE_DESKTOP_USERS} was not reported")

    evidence = _evidence(
        facts, f"members of {REMOTE_DESKTOP_USERS}", group, source=SOURCES["groups"]
    )
    members = group.get("members") if isinstance(group, dict) else group
    if not isinstance(members, list):
        why = group.get("error", "no member list") if isinstance(group, dict) else group
        return undecided(
            f"the members of {REMOTE_DESKTOP_USERS} are unreadable: {why}", evidence
        )

    if members:
        listed = tuple(_member(member) for member in members)
        return failed(
            f"the Remote Desktop Users group has {len(listed)} member(s)",
            evidence,
            findings=listed,
        )
    return passed("the Remote Desktop Users group is empty", evidence)


def _member(member: Any) -> str:
    if isinstance(member, dict):
        name, sid = member.get("name"), member.get("sid")
        return f"{name} ({sid})" if sid and sid != name else str(name or sid)
    return str(member)


@policy(
    "WIN-ADMIN-PASSWORD",
    family="windows",
    platforms=("windows",),
    summary=(
        "Every instance gets its own random administrator password from the "
        "launch agent, retrievable as EC2 password data."
    ),
    remediation=(
        "Set the launch agent to generate a random password: EC2Launch v2 "
        "setAdminAccount with password type random, EC2Launch v1 "
        'adminPasswordType "Random", or EC2Config Ec2SetPassword Enabled; then '
        "recreate the image (EC2Launch v1: run InitializeInstance.ps1 -Schedule "
        "and sysprep)."
    ),
)
@_guarded
def check_admin_password(facts: Facts) -> Outcome:
    document = machine(facts)
    agents = _agents(document)
    launch = document.get("launch") or {}
    if not isinstance(launch, dict):
        raise MissingFact(f"{SECTION}.launch", "is not an object")
    errors = _errors(document)
    read = [path for name, path in AGENT_SETTINGS.items() if name in launch]
    evidence = [
        _evidence(
            facts,
            "launch agent settings",
            launch,
            source=", ".join(read) or "no launch agent settings file was found",
        )
    ]

    # On an EC2 target, password data is the proof that a password was generated.
    available = facts.settings.get("password_data_available")
    if available is not None:
        evidence.append(
            Evidence("EC2 GetPasswordData", output=f"available: {available}")
        )
    if available is False:
        return failed(
            "no password data was available for the launched instance", *evidence
        )

    if agents["EC2Launch v2"]:
        settings, agent, key = launch.get("v2"), "EC2Launch v2", "launch_v2"
        if settings is not None:
            kind = settings.get("password_type")
            if not settings.get("admin_task"):
                return failed("EC2Launch v2 has no setAdminAccount task", *evidence)
            # setAdminAccount without a password type generates a random one.
            if kind is None or str(kind).lower() == "random":
                return passed(
                    "EC2Launch v2 sets a random administrator password", *evidence
                )
            return failed(
                f"EC2Launch v2 sets the password as {kind!r}, not random", *evidence
            )
    elif agents["EC2Launch v1"]:
        settings, agent, key = launch.get("v1"), "EC2Launch v1", "launch_v1"
        if settings is not None:
            kind = settings.get("admin_password_type")
            if str(kind).lower() == "random":
                return passed(
                    "EC2Launch v1 sets a random administrator password", *evidence
                )
            return failed(
                f"EC2Launch v1 adminPasswordType is {kind!r}, not Random", *evidence
            )
    elif agents["EC2Config"]:
        settings, agent, key = launch.get("ec2config"), "EC2Config", "launch_ec2config"
        if settings is not None:
            state = settings.get("Ec2SetPassword")
            if state == "Enabled":
                return passed("EC2Config's Ec2SetPassword is enabled", *evidence)
            return failed(
                f"EC2Config's Ec2SetPassword is {state or 'absent'}", *evidence
            )
    else:
        return failed("no launch agent is installed to generate a password", *evidence)

    why = errors.get(key, "its configuration file was not found")
    return undecided(f"the {agent} password setting is unreadable: {why}", *evidence)


@policy(
    "WIN-SECRETS",
    family="windows",
    platforms=("windows",),
    summary=(
        "No logon password is stored on the image: no automatic logon, no "
        "password left in unattend files, no saved credentials."
    ),
    remediation=(
        "Turn off automatic logon and delete DefaultPassword under HKLM\\SOFTWARE\\"
        "Microsoft\\Windows NT\\CurrentVersion\\Winlogon, delete or blank the "
        "listed unattend files, and delete the saved credentials of every "
        "profile (cmdkey /delete as their user, or the listed Credentials and "
        "Vault files) before creating the image."
    ),
)
@_guarded
def check_secrets(facts: Facts) -> Outcome:
    document = machine(facts)
    errors = _errors(document)
    findings: list[str] = []
    unread: list[str] = []
    evidence: list[Evidence] = []

    winlogon = document.get("winlogon")
    if winlogon is None:
        unread.append(f"Winlogon: {errors.get('winlogon', 'not reported')}")
    else:
        _fact(document, "winlogon", dict)
        evidence.append(
            _evidence(facts, "automatic logon", winlogon, source=SOURCES["winlogon"])
        )
        state = winlogon.get("default_password")
        if state == "set":
            findings.append("Winlogon DefaultPassword holds a password")
        elif state not in ("absent", "empty"):
            unread.append(f"Winlogon DefaultPassword: reported as {state!r}")
        if str(winlogon.get("auto_admin_logon", "")).strip() == "1":
            findings.append("Winlogon AutoAdminLogon is on")

    unattend = document.get("unattend_passwords")
    if unattend is None:
        unread.append("unattend files: not reported")
    else:
        _fact(document, "unattend_passwords", list)
        evidence.append(
            _evidence(
                facts,
                "unattend files with a password left in them (paths only)",
                unattend,
                source=SOURCES["unattend_passwords"],
            )
        )
        findings.extend(f"password in {path}" for path in unattend)
    unread.extend(
        f"{key}: {why}" for key, why in errors.items() if key.startswith("unattend")
    )

    saved = document.get("saved_credentials")
    if saved is None:
        why = errors.get("saved_credentials", "not reported")
        unread.append(f"saved credentials: {why}")
    else:
        _fact(document, "saved_credentials", dict)
        evidence.append(
            _evidence(
                facts,
                "saved credential files per folder (counts only)",
                saved,
                source=SOURCES["saved_credentials"],
            )
        )
        findings.extend(
            f"{int(count)} saved credential file(s) in {folder}"
            for folder, count in sorted(saved.items())
            if int(count)
        )
    unread.extend(
        f"{key.removeprefix('credentials ')}: {why}"
        for key, why in errors.items()
        if key.startswith("credentials ")
    )

    # A finding is certain even when another place could not be read.
    if findings:
        return failed(
            "stored logon passwords were found", *evidence, findings=tuple(findings)
        )
    if unread:
        return undecided("could not read " + "; ".join(unread), *evidence)
    return passed("no stored logon password was found", *evidence)


@policy(
    "WIN-RDP",
    family="windows",
    platforms=("windows",),
    summary="Remote desktop is enabled, so that the buyer can administer the instance.",
    remediation=(
        "Enable remote desktop: fDenyTSConnections 0 under HKLM\\System\\"
        "CurrentControlSet\\Control\\Terminal Server, and under HKLM\\SOFTWARE"
        "\\Policies\\Microsoft\\Windows NT\\Terminal Services when Group "
        "Policy sets it; let the TermService service start (Manual or "
        "Automatic); allow the Remote Desktop rule group in the firewall."
    ),
)
@_guarded
def check_rdp(facts: Facts) -> Outcome:
    document = machine(facts)
    rdp = _fact(document, "rdp", dict)
    errors = _errors(document)
    evidence = [
        _evidence(
            facts,
            "remote desktop settings",
            {key: rdp.get(key) for key in RDP_SETTINGS},
            source=f"{SOURCES['rdp']}; {SOURCES['rdp_policy']}; "
            f"{SOURCES['rdp_service']}",
        ),
        _evidence(
            facts,
            "Remote Desktop firewall rules (shown, not judged)",
            rdp.get("firewall", errors.get("rdp_firewall", "not reported")),
            source=SOURCES["rdp_firewall"],
        ),
    ]

    # Group Policy wins over the local setting whenever it sets the value.
    if "rdp_policy" in errors:
        return undecided(
            "the Group Policy remote desktop setting is unreadable: "
            f"{errors['rdp_policy']}",
            *evidence,
        )
    if "policy_deny_connections" not in rdp:
        return undecided(
            "the Group Policy remote desktop setting was not reported", *evidence
        )
    if rdp["policy_deny_connections"] is not None:
        deny, where = rdp["policy_deny_connections"], "Group Policy fDenyTSConnections"
    else:
        deny, where = rdp.get("deny_connections"), "fDenyTSConnections"
    if deny is None:
        return undecided("fDenyTSConnections is not set", *evidence)
    if int(deny) != 0:
        return failed(f"remote desktop is disabled ({where}={deny})", *evidence)

    start = rdp.get("service_start_mode")
    if start is None:
        why = errors.get("rdp_service", "it was not reported")
        return undecided(
            f"the Remote Desktop service's start mode is unknown: {why}", *evidence
        )
    if str(start).lower() in ("disabled", "absent"):
        return failed(
            f"remote desktop is allowed ({where}=0) but its service, TermService, "
            f"is {str(start).lower()}",
            *evidence,
        )
    return passed(
        f"remote desktop is enabled ({where}=0, TermService starts {start})",
        *evidence,
    )


# What the remote desktop evidence shows of the rdp facts, besides the rules.
RDP_SETTINGS = ("deny_connections", "policy_deny_connections", "service_start_mode")
