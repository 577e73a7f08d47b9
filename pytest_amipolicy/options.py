"""Command-line options and ini keys, and their validation into Settings.

Everything a user can get wrong on the command line is checked here, before a
single cloud call or boot, and reported as a ``pytest.UsageError`` that names
the bad value and the fix. The checks of what only an ``--ami`` run reads
live in :mod:`pytest_amipolicy.ec2_options`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_amipolicy.catalogue import all_policies, select
from pytest_amipolicy.ec2_options import (
    check_ami_id,
    check_cidr,
    check_instance_type,
    check_region,
    check_subnet,
    configured_region,
    warn_idle_ec2_options,
    warn_unknown_region,
)
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets.specs import (
    DEMO_IMAGE,
    check_boot_tools,
    check_host_spec,
    check_image,
    check_image_contents,
    check_image_users,
    warn_host_users,
)

PRODUCT_ID = re.compile(r"^prod-[A-Za-z0-9]+$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
# Policy IDs hold neither commas nor spaces: a list may be separated by either,
# or written one per line.
POLICY_LIST_SEPARATOR = re.compile(r"[,\s]+")
# Amazon Inspector's severities, lowest first.
INSPECTOR_SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--ami*`` options and their ``amipolicy_*`` ini twins."""
    group = parser.getgroup("amipolicy", "AWS Marketplace AMI policy checks")

    group.addoption(
        "--ami",
        action="append",
        default=[],
        metavar="AMI_ID",
        help="check this AMI by launching a throwaway instance (repeatable).",
    )
    group.addoption(
        "--ami-host",
        action="append",
        default=[],
        metavar="SPEC",
        help="check a running machine: ssh://user@host[:port], paramiko://..., "
        "winrm://user:password@host (repeatable).",
    )
    group.addoption(
        "--ami-image",
        action="append",
        default=[],
        metavar="PATH",
        help="boot a local root tree, tar archive or raw disk image in a container "
        f"and check it; '{DEMO_IMAGE}' builds the bundled Debian demo image "
        "(repeatable; needs root and systemd-nspawn).",
    )
    group.addoption("--ami-region", metavar="REGION", help="AWS region of --ami.")
    group.addoption(
        "--ami-user", metavar="NAME", help="login user (default: by distribution)."
    )
    group.addoption(
        "--ami-key",
        metavar="PATH",
        help="private key for --ami-host (the key whose public half is allowed).",
    )
    group.addoption(
        "--ami-instance-type", metavar="TYPE", help="instance type for --ami."
    )
    group.addoption(
        "--ami-subnet", metavar="SUBNET_ID", help="launch --ami in this subnet."
    )
    group.addoption(
        "--ami-ingress-cidr",
        metavar="CIDR",
        help="allow the admin port only from here (default: your public address).",
    )
    group.addoption(
        "--ami-connect",
        choices=("public", "private"),
        default=None,
        help="connect to the instance's public or private address.",
    )
    group.addoption(
        "--ami-boot-timeout",
        metavar="SECONDS",
        help="how long an instance may take to reach 'running' (default 600).",
    )
    group.addoption(
        "--ami-ssh-timeout",
        metavar="SECONDS",
        help="how long SSH or WinRM may take to accept the login, for --ami and "
        "--ami-image (default 300).",
    )
    group.addoption(
        "--ami-policy",
        action="append",
        default=[],
        metavar="ID",
        help="check only these policies: IDs or globs such as 'SSH-*' (repeatable; "
        "commas or spaces between several).",
    )
    group.addoption(
        "--ami-keep",
        action="store_true",
        default=False,
        help="leave the instance running after the checks and say how to reach it.",
    )
    group.addoption(
        "--ami-cleanup",
        action="store_true",
        default=False,
        help="delete every resource this plugin tagged whose expiry has passed, "
        "then exit.",
    )
    group.addoption(
        "--ami-check-date",
        metavar="YYYY-MM-DD",
        help="judge dates (end of life, AMI age) as of this day (default: today).",
    )
    group.addoption(
        "--ami-evidence",
        metavar="PATH",
        help="also write the evidence of every policy as JSON to PATH.",
    )
    group.addoption(
        "--ami-inspector",
        action="store_true",
        default=False,
        help="judge AMAZON-INSPECTOR on Amazon Inspector's findings for instances "
        "of the AMI.",
    )
    group.addoption(
        "--ami-inspector-severity",
        metavar="SEVERITY",
        help="AMAZON-INSPECTOR fails on findings at or above this severity "
        f"({', '.join(INSPECTOR_SEVERITIES)}; default HIGH).",
    )
    group.addoption(
        "--ami-product",
        metavar="ENTITY_ID",
        help="judge AMAZON-ASSESSMENT on AWS Marketplace's scan of the AMI in this "
        "AMI product (prod-...).",
    )
    group.addoption(
        "--ami-guardduty",
        action="store_true",
        default=False,
        help="judge AMAZON-MALWARE on GuardDuty Malware Protection's scan of the AMI.",
    )

    parser.addini("amipolicy_region", "AWS region of --ami.")
    parser.addini("amipolicy_user", "login user for every target.")
    parser.addini("amipolicy_instance_type", "instance type for --ami.")
    parser.addini("amipolicy_subnet", "subnet for --ami.")
    parser.addini("amipolicy_ingress_cidr", "CIDR allowed to reach the admin port.")
    parser.addini("amipolicy_connect", "public or private.", default="public")
    parser.addini(
        "amipolicy_policies",
        "policy IDs or globs to check, separated by commas, spaces or lines.",
        type="args",
    )
    parser.addini(
        "amipolicy_max_age_days", "AMI-AGE limit in days (default 730).", default="730"
    )
    parser.addini(
        "amipolicy_boot_timeout",
        "seconds to wait for an instance to run.",
        default="600",
    )
    parser.addini(
        "amipolicy_ssh_timeout",
        "seconds to wait for SSH or WinRM to answer.",
        default="300",
    )
    parser.addini("amipolicy_redact", "regular expressions to redact.", type="linelist")
    parser.addini(
        "amipolicy_inspector_severity",
        "lowest Inspector severity that fails AMAZON-INSPECTOR.",
        default="HIGH",
    )
    parser.addini("amipolicy_product", "AWS Marketplace AMI product entity id.")
    parser.addini(
        "amipolicy_guardduty_role",
        "IAM role ARN GuardDuty assumes to scan the AMI when no scan exists.",
    )
    parser.addini(
        "amipolicy_amazon_timeout",
        "seconds to wait for Inspector, Marketplace or GuardDuty results.",
        default="900",
    )
    parser.addini(
        "amipolicy_amazon_poll_delay",
        "seconds between polls for those results.",
        default="15",
    )


def _named(config: pytest.Config, option: str, ini: str) -> tuple[str | None, str]:
    """Return the option's value, else the ini key's, with the name it came by.

    A message about a bad value then names what the user wrote: the option on
    the command line, or the key in the ini file.
    """
    value = config.getoption(option)
    if value is not None:
        return str(value), "--" + option.replace("_", "-")

    value = config.getini(ini) or None
    return (None if value is None else str(value)), ini


# A login name as Linux and Windows accept one (a Windows domain user as
# DOMAIN\name): no spaces, quotes or shell punctuation.
LOGIN_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@\\-]{0,63}$")


def _check_user(user: str | None, name: str) -> None:
    if user is not None and not LOGIN_USER.match(user):
        raise pytest.UsageError(
            f"{name}={user!r} is not a login user name: give the name the machine "
            "logs in with, such as ec2-user, admin or Administrator (letters, "
            "digits and . _ - @ \\ only), or leave it out for the distribution's "
            "default."
        )


def _split(values: list[str]) -> list[str]:
    return [
        part.strip() for value in values for part in value.split(",") if part.strip()
    ]


def _policy_patterns(values: Iterable[str]) -> list[str]:
    return [
        part for value in values for part in POLICY_LIST_SEPARATOR.split(value) if part
    ]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _refuse_empty(config: pytest.Config, dest: str, example: str) -> None:
    for value in config.getoption(dest):
        if not value.strip(" ,\t\r\n"):
            option = "--" + dest.replace("_", "-")
            raise pytest.UsageError(
                f"{option} was given an empty value; give {example}."
            )


def _check_date(value: str | None) -> datetime.date:
    if value is not None and not value.strip():
        raise pytest.UsageError(
            "--ami-check-date was given an empty value: write a date as YYYY-MM-DD."
        )
    if not value:
        return datetime.date.today()

    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise pytest.UsageError(
            f"--ami-check-date={value!r} is not a date: write it as YYYY-MM-DD."
        ) from None


def _check_number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not (0 < number < math.inf):
        raise pytest.UsageError(f"{name}={value!r} must be a positive number.")
    return number


def _timeout(config: pytest.Config, option: str, ini: str) -> float:
    # The message names whichever of the two the value came from.
    given = config.getoption(option)
    if given is not None:
        return _check_number("--" + option.replace("_", "-"), given)
    return _check_number(ini, config.getini(ini))


def _check_key(value: str | None) -> Path | None:
    if value is None:
        return None

    path = Path(value).expanduser()
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise pytest.UsageError(
            f"--ami-key={value!r} {problem}: give the path of the private key "
            "file that logs in to the host."
        )
    return path


def _check_key_applies(value: str | None, hosts: tuple[str, ...]) -> None:
    # The other targets log in with a launch key of their own, so a key given
    # for them would be silently ignored.
    if value is not None and not hosts:
        raise pytest.UsageError(
            f"--ami-key={value!r} applies to --ami-host only, and no --ami-host "
            "was given (--ami and --ami-image log in with a launch key made for "
            "the run); drop --ami-key, or add --ami-host=ssh://user@host."
        )


def check_cleanup_options(config: pytest.Config) -> None:
    """Check what ``--ami-cleanup`` reads; it runs instead of a session."""
    check_region(*_named(config, "ami_region", "amipolicy_region"))

    # Nothing would be checked: say so rather than leave the targets unnoticed.
    for dest in ("ami", "ami_host", "ami_image"):
        given = config.getoption(dest)
        if given:
            option = "--" + dest.replace("_", "-")
            raise pytest.UsageError(
                f"--ami-cleanup runs on its own and checks nothing, so "
                f"{option}={given[0]!r} would be ignored; run the cleanup and the "
                "check as two commands."
            )


def _check_evidence(value: str | None) -> Path | None:
    """Return the JSON evidence path if a file can be written there.

    Checked before anything is launched or booted: finding out at the end of a
    long run that the evidence cannot be kept would waste the run.
    """
    if value is None:
        return None
    shown = f"--ami-evidence={value!r}"
    if not value.strip():
        raise pytest.UsageError(
            "--ami-evidence was given an empty value; give a file name such as "
            "evidence.json."
        )

    path = Path(value).expanduser()
    if path.is_dir():
        raise pytest.UsageError(
            f"{shown} is a directory; give a file name, such as "
            f"{path / 'evidence.json'}."
        )

    # Missing folders are made when the file is written; the nearest one that
    # exists is where that has to be allowed.
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise pytest.UsageError(
            f"{shown}: {str(folder)!r} is a file, not a folder; give a path in a "
            "folder."
        )

    # Permission bits do not tell (root passes them; /proc and read-only
    # mounts refuse anyway): only writing a file does.
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise pytest.UsageError(
            f"{shown}: cannot write in {str(folder)!r} ({error.strerror}); give a "
            "path in a folder you can write to."
        ) from None
    return path


def _check_severity(value: str, name: str = "--ami-inspector-severity") -> str:
    severity = value.strip().upper()
    if severity not in INSPECTOR_SEVERITIES:
        raise pytest.UsageError(
            f"{name}={value!r} is not an Inspector severity: use "
            f"one of {', '.join(INSPECTOR_SEVERITIES)}."
        )
    return severity


def _severity(config: pytest.Config) -> tuple[str, str]:
    value, name = _named(
        config, "ami_inspector_severity", "amipolicy_inspector_severity"
    )
    return value or "HIGH", name


def _check_product(value: str | None, name: str = "--ami-product") -> str | None:
    if value is None:
        return None

    if not PRODUCT_ID.match(value):
        raise pytest.UsageError(
            f"{name}={value!r} is not a Marketplace product entity id: give "
            "the id of the AMI product, such as prod-abcdefghijklm (aws "
            "marketplace-catalog list-entities --entity-type AmiProduct)."
        )
    return value


def _check_role(value: str | None) -> str | None:
    if value is None:
        return None

    if not ROLE_ARN.match(value):
        raise pytest.UsageError(
            f"amipolicy_guardduty_role={value!r} is not an IAM role ARN such as "
            "arn:aws:iam::123456789012:role/GuardDutyAmiScan."
        )
    return value


def _check_policies(patterns: list[str], name: str = "--ami-policy") -> tuple[str, ...]:
    try:
        chosen = select(patterns)
    except KeyError as error:
        known = ", ".join(p.id for p in all_policies())
        raise pytest.UsageError(
            f"{name}={error.args[0]!r} matches no policy; use one of these "
            f"IDs or a glob over them: {known}."
        ) from None
    return tuple(p.id for p in chosen)


def settings_from(config: pytest.Config) -> Settings:
    """Validate every option and ini key and return the run's Settings."""
    # A target named twice is checked once: its label must be unique.
    _refuse_empty(config, "ami", "an AMI id such as ami-0123456789abcdef0")
    _refuse_empty(config, "ami_host", "a host spec such as ssh://admin@host")
    _refuse_empty(config, "ami_image", f"a path, or {DEMO_IMAGE}")
    _refuse_empty(config, "ami_policy", "a policy ID or glob such as SSH-*")

    amis = _unique(check_ami_id(value) for value in _split(config.getoption("ami")))
    hosts = _unique(check_host_spec(value) for value in config.getoption("ami_host"))
    images = _unique(check_image(value) for value in config.getoption("ami_image"))
    check_boot_tools(images)
    check_image_contents(images)
    _check_key_applies(config.getoption("ami_key"), hosts)

    user, user_name = _named(config, "ami_user", "amipolicy_user")
    _check_user(user, user_name)
    check_image_users(images, user, user_name)
    warn_host_users(config, hosts, user, user_name)

    region, region_name = _named(config, "ami_region", "amipolicy_region")
    check_region(region, region_name)
    if amis and region is None and configured_region() is None:
        raise pytest.UsageError(
            "--ami needs an AWS region and none is configured: pass "
            "--ami-region=REGION, set the amipolicy_region ini key or "
            "AWS_DEFAULT_REGION, or give your AWS profile a region."
        )

    subnet = check_subnet(*_named(config, "ami_subnet", "amipolicy_subnet"))

    connect, connect_name = _named(config, "ami_connect", "amipolicy_connect")
    connect = connect or "public"
    if connect not in ("public", "private"):
        raise pytest.UsageError(
            f"{connect_name}={connect!r} must be 'public' or 'private'."
        )

    patterns = _policy_patterns(config.getoption("ami_policy"))
    patterns_name = "--ami-policy"
    if not patterns:
        listed = list(config.getini("amipolicy_policies"))
        patterns = _policy_patterns(listed)
        patterns_name = "amipolicy_policies"
        if listed and not patterns:
            # Otherwise a list of nothing but separators would check everything.
            raise pytest.UsageError(
                f"amipolicy_policies names no policy ({' '.join(listed)!r}); give "
                "policy IDs or globs such as SSH-*, separated by commas, spaces "
                "or lines, or remove the key to check every policy."
            )

    settings = Settings(
        amis=amis,
        hosts=hosts,
        images=images,
        region=region,
        user=user,
        user_source=user_name,
        key_file=_check_key(config.getoption("ami_key")),
        instance_type=check_instance_type(
            *_named(config, "ami_instance_type", "amipolicy_instance_type")
        ),
        subnet=subnet,
        ingress_cidr=check_cidr(
            *_named(config, "ami_ingress_cidr", "amipolicy_ingress_cidr")
        ),
        connect=connect,
        keep=config.getoption("ami_keep"),
        check_date=_check_date(config.getoption("ami_check_date")),
        max_age_days=int(
            _check_number(
                "amipolicy_max_age_days", config.getini("amipolicy_max_age_days")
            )
        ),
        boot_timeout=_timeout(config, "ami_boot_timeout", "amipolicy_boot_timeout"),
        ssh_timeout=_timeout(config, "ami_ssh_timeout", "amipolicy_ssh_timeout"),
        evidence_path=_check_evidence(config.getoption("ami_evidence")),
        redact=tuple(config.getini("amipolicy_redact")),
        inspector=config.getoption("ami_inspector"),
        inspector_severity=_check_severity(
            *_severity(config),
        ),
        product=_check_product(*_named(config, "ami_product", "amipolicy_product")),
        guardduty=config.getoption("ami_guardduty"),
        guardduty_role=_check_role(config.getini("amipolicy_guardduty_role") or None),
        amazon_timeout=_check_number(
            "amipolicy_amazon_timeout", config.getini("amipolicy_amazon_timeout")
        ),
        amazon_poll_delay=_check_number(
            "amipolicy_amazon_poll_delay", config.getini("amipolicy_amazon_poll_delay")
        ),
    )

    warn_idle_ec2_options(config, amis, images)
    if amis and region is not None:
        warn_unknown_region(config, region, region_name)

    # Checked last, so that cheaper mistakes are reported first; the catalogue
    # is not even imported for runs that name no target.
    if patterns or amis or hosts or images:
        settings = dataclasses.replace(
            settings,
            policies=_check_policies(patterns, patterns_name),
            policy_patterns=tuple(patterns),
            policy_patterns_source=patterns_name,
        )
    return settings
