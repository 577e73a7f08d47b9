"""Redaction: what no report, log or evidence file may hold.

It happens once, at the source: the plugin's report filter (``EvidenceFilter``
in :mod:`pytest_amipolicy.evidence`) rewrites each test report on the process
that ran the item, xdist workers included, so the terminal, the JUnit XML, the
HTML report and the JSON document all get the same clean text; log records are
cleaned as they are created, for live logging and ``--log-file``. Two patterns
always apply (a private key block, an AWS access key id); the
``amipolicy_redact`` ini key adds more.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

LogRecordFactory = Callable[..., logging.LogRecord]

# Removed from every evidence output before it is trimmed, whatever the ini
# says: a private key (the launch key included) and anything shaped like an AWS
# access key id must never be kept. A key block whose END line is missing (the
# output was cut by the command that printed it) runs to the end of the text.
# The key id is bounded by characters that cannot continue it rather than by
# word boundaries: in a repr'd command output it follows an escaped tab ("\t").
BUILTIN_REDACTIONS = (
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
    r"(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[\s\S]*\Z)",
    r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])",
)
REDACTED = "[redacted]"

_ALWAYS = tuple(re.compile(pattern) for pattern in BUILTIN_REDACTIONS)


def scrub(text: str) -> str:
    """Remove what no evidence may ever hold (see BUILTIN_REDACTIONS)."""
    for pattern in _ALWAYS:
        text = pattern.sub(REDACTED, text)
    return text


@functools.cache
def compiled_patterns(redact: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """:func:`compile_patterns`, once per process for each list of patterns."""
    return tuple(compile_patterns(redact))


def compile_patterns(redact: tuple[str, ...]) -> list[re.Pattern[str]]:
    """Compile the built-in and the ``amipolicy_redact`` patterns."""
    patterns = [re.compile(pattern) for pattern in BUILTIN_REDACTIONS]

    for pattern in redact:
        try:
            patterns.append(re.compile(pattern))
        except re.error as error:
            raise pytest.UsageError(
                f"amipolicy_redact: {pattern!r} is not a regular expression "
                f"({error}); fix or remove it in the ini file."
            ) from None
    return patterns


def redact(
    value: Any,
    patterns: list[re.Pattern[str]] | tuple[re.Pattern[str], ...],
    keys: bool = False,
) -> Any:
    """Replace every match of the configured patterns in strings of ``value``.

    With ``keys``, the keys of dictionaries are redacted too: where a key is
    data (a target label, an environment variable's name) rather than a field
    name the reader relies on.
    """
    if not patterns:
        return value
    if isinstance(value, str):
        for pattern in patterns:
            value = pattern.sub(REDACTED, value)
        return value
    if isinstance(value, dict):
        return {
            (redact(key, patterns) if keys else key): redact(item, patterns, keys)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item, patterns, keys) for item in value)
    return value


def redacting_factory(
    make: LogRecordFactory, patterns: list[re.Pattern[str]]
) -> LogRecordFactory:
    """Wrap a log record factory so that its records carry redacted text only."""

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)

        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed call; logging reports it when a handler formats it.
            return record
        clean = redact(message, patterns)
        if clean != message:
            record.msg, record.args = clean, None

        # A formatter caches the traceback text here and reuses it.
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            clean = redact(text, patterns)
            if clean != text:
                record.exc_text = clean
        return record

    return factory
