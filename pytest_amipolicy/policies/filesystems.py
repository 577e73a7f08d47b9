"""FILESYSTEMS: the disk layout EC2 can boot, and no encryption of the image's own.

Judged from the mounts, the block devices and dm-crypt and fscrypt as the
running machine sees them. In a container (an ``--ami-image`` boot, or a
container reached with ``--ami-host``) none of the image's block filesystems
is in view: the host's disks are listed but not judged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact
from pytest_amipolicy.verdicts import (
    Evidence,
    Outcome,
    failed,
    not_applicable,
    passed,
    undecided,
)

FAMILY = "system"
SUPPORTED_FS = {"ext2", "ext3", "ext4", "xfs", "vfat"}
# Disk filesystems whose source is a pool or dataset name rather than /dev/...
POOLED_FS = {"zfs", "bcachefs"}
# Filesystems that encrypt what they store, stacked on another one.
STACKED_CRYPT_FS = {"ecryptfs"}
# Filesystems that live in memory, in the kernel or on the network: no disk.
NOT_BLOCK = re.compile(
    r"^(proc|sysfs|devtmpfs|devpts|tmpfs|ramfs|cgroup2?|securityfs|pstore|debugfs|"
    r"tracefs|configfs|fusectl|mqueue|hugetlbfs|bpf|autofs|binfmt_misc|nsfs|"
    r"rpc_pipefs|efivarfs|overlay|squashfs|nfs4?|cifs|9p|virtiofs|fuse(\..*)?)$"
)


@dataclass(frozen=True)
class Mount:
    target: str
    source: str
    fstype: str


def _unescape(text: str) -> str:
    return text.replace("\\x20", " ").replace("\\040", " ")


def mounts(output: str) -> list[Mount]:
    result = []
    from_findmnt = output.startswith("# findmnt")
    for line in output.splitlines():
        fields = line.split()
        if line.startswith("#") or len(fields) < 3:
            continue
        target, source = (
            (fields[0], fields[1]) if from_findmnt else (fields[1], fields[0])
        )
        result.append(
            Mount(
                _unescape(target), _unescape(re.sub(r"\[.*\]$", "", source)), fields[2]
            )
        )
    return result


# Where systemd's container interface puts the host's files in a container.
CONTAINER_HOST_DIR = "/run/host"


def container_manager(mounts_output: str) -> str:
    """The container manager the mounts section names ('' outside a container)."""
    for line in mounts_output.splitlines():
        if line.startswith("# container manager:"):
            return line.partition(":")[2].strip() or "the container manager"
    return ""


def _block_devices(lsblk: str) -> list[dict[str, Any]]:
    try:
        tree = json.loads(lsblk).get("blockdevices", [])
    except ValueError:
        return []
    flat: list[dict[str, Any]] = []
    todo = list(tree)
    while todo:
        device = todo.pop()
        flat.append(device)
        todo.extend(device.get("children") or [])
    return flat


def _mounts_summary(output: str, judged: list[str], not_judged: list[str]) -> str:
    """The judged mounts one per line, the others counted by type."""
    source = "findmnt" if output.startswith("# findmnt") else "/proc/mounts"
    lines = [f"from {source}; judged, as filesystems on a block device:"]
    lines += [f"  {line}" for line in dict.fromkeys(judged)] or ["  none"]
    if not_judged:
        kinds = ", ".join(dict.fromkeys(not_judged))
        lines.append(
            f"not judged: {len(not_judged)} kernel, memory, network or overlay "
            f"mounts ({kinds})"
        )
    return "\n".join(lines)


def _device_line(device: dict[str, Any]) -> str:
    words = [str(device.get("name")), str(device.get("type"))]
    if device.get("fstype"):
        words.append(str(device["fstype"]))
    if device.get("mountpoint"):
        words.append(f"at {device['mountpoint']}")
    return " ".join(words)


@policy(
    "FILESYSTEMS",
    needs_root=False,
    family=FAMILY,
    platforms=("linux",),
    summary=(
        "block filesystems are ext2/3/4, xfs or vfat (LVM allowed) and none is "
        "encrypted"
    ),
    remediation=(
        "Use ext4 or xfs, and leave encryption to EBS rather than LUKS, dm-crypt "
        "or fscrypt."
    ),
)
def check_filesystems(facts: Facts) -> Outcome:
    try:
        section = facts.section("mounts")
    except MissingFact as error:
        return undecided(f"mounts were not listed: {error.why}")
    if not section.ok:
        return undecided("mounts could not be listed", section.evidence())

    problems: list[str] = []
    notes: list[str] = []
    judged: list[str] = []
    not_judged: list[str] = []
    manager = container_manager(section.output)
    managers_mounts: list[str] = []
    hosts_disks: list[str] = []
    for mount in mounts(section.output):
        if manager and (mount.target + "/").startswith(CONTAINER_HOST_DIR + "/"):
            managers_mounts.append(mount.target)
            continue
        if mount.fstype == "overlay" and mount.target == "/":
            notes.append(
                "/ is an overlay, as in a container, not a block filesystem: the "
                "type rule does not apply to it, and the image's own disk layout "
                "is judged when it runs as an instance (--ami)"
            )
        if mount.fstype in STACKED_CRYPT_FS:
            problems.append(f"{mount.target} is encrypted ({mount.fstype})")
            continue
        on_disk = mount.source.startswith("/dev/") or mount.fstype in POOLED_FS
        if NOT_BLOCK.match(mount.fstype) or not on_disk:
            not_judged.append(mount.fstype)
            continue
        if manager:
            # A directory of the host's disk, bound into the container.
            hosts_disks.append(f"{mount.target} {mount.fstype} on {mount.source}")
            continue
        supported = mount.fstype in SUPPORTED_FS
        judged.append(
            f"{mount.target} {mount.fstype} on {mount.source}"
            + ("" if supported else ": not a supported type")
        )
        if not supported:
            problems.append(f"{mount.target} is {mount.fstype} on {mount.source}")

    evidence = [
        section.evidence(
            "mounted filesystems",
            _mounts_summary(section.output, judged, not_judged),
        )
    ]
    if managers_mounts:
        notes.append(
            f"not judged: {', '.join(dict.fromkeys(managers_mounts))}, which "
            f"{manager} mounted from "
            "the host it runs on; they are not part of the image"
        )
    if hosts_disks:
        notes.append(
            f"not judged: {', '.join(hosts_disks)}: in a {manager} container a "
            "mount from a block device is part of the host's disk, not a "
            "filesystem of the image"
        )
    if facts.has("lsblk"):
        lsblk = facts.section("lsblk")
        evidence.append(
            lsblk.evidence(
                "block devices (name, type, filesystem, mount point)",
                "\n".join(_device_line(d) for d in _block_devices(lsblk.output))
                or lsblk.output,
            )
        )
        if manager:
            # A container sees the host's disks, not disks of its own.
            notes.append(
                f"the block devices listed, and any dm-crypt target, are those of "
                f"the host that {manager} runs on, not the image's: not judged"
            )
        for device in [] if manager else _block_devices(lsblk.output):
            if device.get("fstype") == "crypto_LUKS" or device.get("type") == "crypt":
                how = device.get("fstype") or device.get("type")
                problems.append(f"{device.get('name')} is encrypted ({how})")
    if facts.has("dmcrypt") and not manager:
        dm = facts.section("dmcrypt")
        lines = [ln for ln in dm.output.splitlines() if " crypt " in ln]
        if dm.ok and lines:
            problems += [f"dm-crypt target {ln.split(':')[0]}" for ln in lines]
            evidence.append(dm.evidence("dm-crypt targets"))
    if facts.has("fscrypt"):
        fs = facts.section("fscrypt")
        rows = [
            ln
            for ln in fs.output.splitlines()
            if ln.startswith("/") and ln.split()[-1:] == ["Yes"]
        ]
        problems += [f"fscrypt is set up on {r.split()[0]}" for r in rows]

    if notes:
        evidence.append(Evidence("notes", output="\n".join(notes)))
    if problems:
        return failed(
            "; ".join(sorted(set(problems))),
            *evidence,
            findings=tuple(sorted(set(problems))),
        )
    if manager and not judged:
        # Nothing of the image's disk layout is in view: the rule cannot be
        # applied here, which is not a pass.
        return not_applicable(
            f"no block filesystem of the image is mounted in this {manager} "
            "container (none is encrypted with fscrypt); the disk layout is judged "
            "on an instance launched from the AMI (--ami)",
            *evidence,
        )
    return passed(
        "every block filesystem has a supported type and none is encrypted", *evidence
    )
