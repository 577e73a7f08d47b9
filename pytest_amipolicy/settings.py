"""The validated settings of a run, built once from options and ini keys."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Settings:
    """Everything the targets and policies need from the command line and ini."""

    amis: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    region: Optional[str] = None
    user: Optional[str] = None
    key_file: Optional[Path] = None
    instance_type: Optional[str] = None
    subnet: Optional[str] = None
    ingress_cidr: Optional[str] = None
    connect: str = "public"
    keep: bool = False
    policies: tuple[str, ...] = ()
    check_date: datetime.date = field(default_factory=datetime.date.today)
    max_age_days: int = 730
    boot_timeout: float = 600.0
    ssh_timeout: float = 300.0
    evidence_path: Optional[Path] = None
    redact: tuple[str, ...] = ()
    image_cache: Optional[Path] = None
    # Amazon's own verdicts (AMAZON-* policies), each off unless asked for.
    inspector: bool = False
    inspector_severity: str = "HIGH"
    product: Optional[str] = None
    guardduty: bool = False
    guardduty_role: Optional[str] = None
    amazon_timeout: float = 900.0
    amazon_poll_delay: float = 15.0
