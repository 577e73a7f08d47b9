"""The pytest-html report as evidence a seller can hand over.

Registered on the controller only, when ``--html`` is given and a target is
named. It adds Policy, Verdict and Summary columns to the results table, puts
each policy's reason, findings, evidence and fix in the row's details, fills
the Environment table with the checked image and the checking tools, and puts
above the table the verdict counts, the attestations to sign by hand and the
fact-gathering script whose commands the evidence names.

pytest-html keeps a reference to pytest-metadata's dictionary from session
start and serialises it only when it writes the report, so entries added to
that same dictionary later (what the workers learn about the targets) appear.
"""

from __future__ import annotations

import html
import importlib.resources
import logging
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_amipolicy.catalogue import POLICY_PAGE, all_policies
from pytest_amipolicy.evidence import (
    TARGET_LABELS,
    TargetLog,
    _now,
    fact_scripts,
    read_records,
    tool_versions,
)
from pytest_amipolicy.redaction import compile_patterns, redact
from pytest_amipolicy.standings import incomplete_html, partial_html, verdict_tables

if TYPE_CHECKING:
    from pytest_amipolicy.completeness import Completeness
    from pytest_amipolicy.settings import Settings

logger = logging.getLogger(__name__)

_UNSET = object()

# Result table columns added after pytest-html's Result column.
COLUMNS = (
    '<th class="sortable" data-column-type="policy">Policy</th>',
    '<th class="sortable" data-column-type="verdict">Verdict</th>',
    "<th>Requirement</th>",
)


class HtmlEvidence:
    """pytest-html hook implementations; one per session, on the controller."""

    def __init__(self, settings: Settings, completeness: Completeness) -> None:
        self.settings = settings
        self.completeness = completeness
        self.patterns = compile_patterns(settings.redact)
        self.log = TargetLog()
        self.started = _now()
        self.metadata: dict[str, Any] | None = None
        # What others (pytest-metadata, --metadata, CI variables) put in the
        # environment, as they gave it: redacted afresh on every rewrite, so
        # that nothing is redacted twice.
        self._foreign: dict[str, Any] = {}
        self._written: dict[str, Any] = {}
        # Whether pytest-html got as far as asking for the summary.
        self._summarised = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # pytest-html takes the dictionary at its (trylast) session start;
        # what is known now is in it even if the run later crashes.
        self.metadata = _metadata(session.config)
        self._fill_environment()

    def note_closed(self, lines: list[str]) -> None:
        """Take cleanup lines of targets closed at the session's end."""
        self.log.closed.extend(redact(lines, self.patterns))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.log.take(report)
        if record is None:
            return

        # Runs before pytest-html's (trylast) handler, which collects the
        # extras of every phase of the test into its row.
        extras = [*getattr(report, "extras", []), _html_extra(html_detail(record))]
        # The attribute pytest-html reads; pytest's own type does not declare it.
        report.extras = extras  # type: ignore[attr-defined]
        self._fill_environment()

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = "AWS Marketplace AMI policy check"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[1:1] = COLUMNS

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        record = read_records(report)
        if record is None:
            cells[1:1] = [
                '<td class="col-policy"></td>',
                '<td class="col-verdict"></td>',
                '<td class="col-summary"></td>',
            ]
            return

        policy = html.escape(str(record.get("policy", "")))
        verdict = html.escape(str(record.get("verdict", "")))
        summary = html.escape(str(record.get("summary", "")))
        cells[1:1] = [
            f'<td class="col-policy"><a href="{html.escape(POLICY_PAGE)}" '
            f'target="_blank" rel="noopener">{policy}</a></td>',
            f'<td class="col-verdict amipolicy-{verdict}">{verdict}</td>',
            f'<td class="col-summary">{summary}</td>',
        ]

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:
        if read_records(report) is None or not data:
            return

        # The verdict text pytest shows in the terminal repeats the detail
        # block above it; keep only what else was captured (logs, output).
        if report.longreprtext and data[0] == html.escape(report.longreprtext) + "\n":
            del data[0]

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self,
        prefix: list[str],
        summary: list[str],
        postfix: list[str],
        session: pytest.Session,
    ) -> None:
        # Called just before the report is written: the last moment to add
        # the finish time and what the last workers reported.
        self._summarised = True
        self._fill_environment(finished=_now())
        prefix.append(f"<style>{_stylesheet()}</style>")

        # Labels in records arrive redacted; the plugin's own are redacted
        # alike so that both name a target the same way.
        not_run = {
            redact(label, self.patterns): (
                policy_ids,
                self.completeness.expected_count(label),
            )
            for label, policy_ids in self.completeness.not_run().items()
        }
        partial = {
            redact(label, self.patterns): policy_ids
            for label, policy_ids in self.completeness.partial().items()
        }
        if not self.completeness.complete:
            prefix.append(
                incomplete_html(
                    not_run, self.completeness.interrupted, self.completeness.stopped
                )
            )
        if partial:
            prefix.append(
                partial_html(
                    partial,
                    self.completeness.catalogue,
                    redact(self.completeness.selected_by(), self.patterns),
                )
            )
        prefix.append(
            verdict_tables(
                self.log.records,
                not_run,
                {label: len(ids) for label, ids in partial.items()},
                self.completeness.catalogue,
                self.completeness.own_failures(),
            )
        )
        chosen = {i for ids in self.completeness.selected().values() for i in ids}
        prefix.append(attestations_html(chosen))
        if self.log.closed:
            prefix.append(cleanup_html(self.log.closed))
        prefix.append(scripts_html(self.log.platforms()))

    # Outside the completeness tracker's wrapper, which stops a second
    # interrupt: pytest-html writes the report in a finisher of its own (the
    # last), which never ran if that interrupt broke off an earlier one.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(
        self, session: pytest.Session
    ) -> Generator[None, list[object], list[object]]:
        result = yield
        if not self._summarised:
            writer = _html_writer(session.config)
            if writer is not None:
                writer.pytest_sessionfinish(session)
        return result

    def _fill_environment(self, finished: str | None = None) -> None:
        if self.metadata is None:
            return

        entries: dict[str, Any] = {
            "Check date": self.settings.check_date.isoformat(),
            "Started": self.started,
        }
        if finished:
            entries["Finished"] = finished
        entries["Policy page"] = POLICY_PAGE
        entries["Checked with"] = tool_versions(self.log.platforms())
        for label, details in self.log.targets.items():
            entries[f"Target {label}"] = {
                TARGET_LABELS.get(key, key): value for key, value in details.items()
            }
        ours = _escaped(redact(entries, self.patterns, keys=True))

        # An entry that is not the very object written last time was put there
        # by someone else since (an xdist worker's metadata arrives late).
        for key, value in self.metadata.items():
            if key not in ours and self._written.get(key, _UNSET) is not value:
                self._foreign[key] = value

        # Ours first, then the others' entries; the same dict object, since
        # that is the one pytest-html holds. Their values stay as they gave
        # them (pytest-html shows them as HTML) but redacted, keys included.
        foreign = redact(self._foreign, self.patterns, keys=True)
        self.metadata.clear()
        self.metadata.update(ours)
        self.metadata.update(
            {key: value for key, value in foreign.items() if key not in ours}
        )
        self._written = dict(self.metadata)


def html_detail(record: dict[str, Any]) -> str:
    """The details of one policy row: reason, findings, evidence and the fix."""
    verdict = str(record.get("verdict", ""))
    esc = html.escape
    parts = [
        f'<div class="amipolicy-detail amipolicy-{esc(verdict)}">',
        f'<p class="amipolicy-reason"><span class="amipolicy-badge">{esc(verdict)}'
        f"</span> {esc(str(record.get('policy', '')))} on "
        f"<code>{esc(str(record.get('target', '')))}</code>: "
        f"{esc(str(record.get('reason', '')))}</p>",
    ]

    findings = record.get("findings") or []
    if findings:
        parts.append('<h4>Findings</h4><ul class="amipolicy-findings">')
        parts.extend(f"<li>{esc(str(finding))}</li>" for finding in findings)
        parts.append("</ul>")

    evidence = record.get("evidence") or []
    if evidence:
        parts.append("<h4>Evidence</h4>")
        parts.extend(
            f'<pre class="amipolicy-evidence">{esc(str(block))}</pre>'
            for block in evidence
        )

    if verdict == "fail" and record.get("remediation"):
        parts.append(
            f'<p class="amipolicy-fix"><strong>Fix:</strong> '
            f"{esc(str(record['remediation']))}</p>"
        )
    if verdict == "manual":
        parts.append(
            '<p class="amipolicy-fix">Listed under <em>Attestations</em> above: '
            "confirm it by hand before you submit the image.</p>"
        )

    parts.append("</div>")
    return "".join(parts)


def attestations_html(chosen: set[str] | None = None) -> str:
    """The manual policies of the run (``chosen`` IDs), as a list to tick and sign."""
    esc = html.escape
    manual = [
        policy
        for policy in all_policies()
        if "manual" in policy.platforms and (chosen is None or policy.id in chosen)
    ]
    if not manual:
        return ""

    items = "".join(
        f'<li><span class="amipolicy-box">&#9744;</span> '
        f"<strong>{esc(policy.id)}</strong>: {esc(policy.summary)}"
        f"<br><small>{esc(policy.remediation)}</small></li>"
        for policy in manual
    )
    return (
        '<div class="amipolicy-attest"><h3>Attestations</h3>'
        "<p>No software can check these; the seller confirms each by hand "
        f'(see the <a href="{esc(POLICY_PAGE)}" target="_blank" rel="noopener">'
        "policy page</a>).</p>"
        f"<ul>{items}</ul>"
        '<p class="amipolicy-sign">Confirmed by: ____________________ '
        "Date: ____________</p></div>"
    )


def cleanup_html(lines: list[str]) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<div class="amipolicy-cleanup"><h3>Cleanup</h3><ul>{items}</ul></div>'


def scripts_html(platforms: Iterable[str]) -> str:
    """The fact-gathering script of each platform checked, shown in full.

    Evidence names the commands it ran by the script's section commands
    (``scan_secrets``, ``sshd_t root``); the script is what they mean.
    """
    esc = html.escape
    blocks = [
        f'<details class="amipolicy-script"><summary>{esc(script.platform)}: '
        f"<code>{esc(script.path)}</code>, {script.lines} lines, sha256 "
        f"<code>{script.sha256}</code></summary>"
        f"<pre>{esc(script.text)}</pre></details>"
        for script in fact_scripts(platforms)
    ]
    if not blocks:
        return ""

    return (
        '<div class="amipolicy-scripts"><h3>How the facts were gathered</h3>'
        "<p>Each machine ran the script of its platform once, as root where "
        "sudo allowed. A command after <code>$</code> in the evidence is one of "
        "its sections: a shell command, or a function defined in the script.</p>"
        f"{''.join(blocks)}</div>"
    )


def _escaped(value: Any) -> Any:
    # pytest-html inserts environment values (and nested keys) as HTML.
    if isinstance(value, dict):
        return {html.escape(str(k)): _escaped(v) for k, v in value.items()}
    return html.escape(str(value))


def _html_extra(content: str) -> dict[str, Any]:
    from pytest_html import extras

    extra: dict[str, Any] = extras.html(content)
    return extra


def _html_writer(config: pytest.Config) -> Any:
    """pytest-html's report object, registered without a name."""
    from pytest_html.basereport import BaseReport

    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, BaseReport):
            return plugin
    return None


def _metadata(config: pytest.Config) -> dict[str, Any] | None:
    try:
        from pytest_metadata.plugin import (
            metadata_key,
        )
    except ImportError:
        logger.debug("pytest-metadata is missing; no environment table")
        return None
    return config.stash.get(metadata_key, None)


def _stylesheet() -> str:
    resource = importlib.resources.files("pytest_amipolicy") / "data" / "report.css"
    return resource.read_text(encoding="utf-8")
