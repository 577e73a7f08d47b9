"""Check an Amazon Machine Image against the AWS Marketplace AMI policies."""

from __future__ import annotations

__version__ = "0.1.0"
