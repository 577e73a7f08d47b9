"""What each target can be said to be, in the words of the reports.

The standing phrase of a target (compliant, not compliant, incomplete, on a
partial check, with own checks that failed), the counts tables above the HTML
report's results, and the banners of a run that was cut short or checked
part of the catalogue only. The terminal summary uses the same phrases.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from typing import Any

VERDICTS = ("pass", "fail", "error", "skip", "manual")


# Target label -> (IDs of the policies that were not run, policies collected).
NotRun = dict[str, tuple[list[str], int]]


def incomplete_html(not_run: NotRun, interrupted: bool, stopped: str | None) -> str:
    """The banner of a run that did not judge every policy it collected."""
    esc = html.escape
    if interrupted:
        why = "The run was interrupted"
    elif stopped:
        why = f"The run stopped early ({esc(stopped)})"
    else:
        why = "The run ended"
    missing = sum(len(policy_ids) for policy_ids, _ in not_run.values())

    items = "".join(
        f"<li><code>{esc(label)}</code>: {len(policy_ids)} of {expected} not run: "
        f"{esc(', '.join(policy_ids))}</li>"
        for label, (policy_ids, expected) in not_run.items()
    )
    if interrupted and not missing:
        # Every verdict is in; the teardown or the reporting was cut short.
        when = " while it finished, after every policy was checked"
    else:
        when = " before every policy was checked" + (
            f": {missing} were not run" if missing else ""
        )
    return (
        '<div class="amipolicy-incomplete"><h3>Incomplete evidence</h3>'
        f"<p>{why}{when}. This report shows no target as compliant; check again "
        "with a complete run before you hand it over.</p>"
        + (f"<ul>{items}</ul>" if items else "")
        + "</div>"
    )


def partial_html(
    partial: dict[str, list[str]], catalogue: int, selected_by: list[str]
) -> str:
    """The banner of a run that checked targets on part of the catalogue only."""
    esc = html.escape
    items = "".join(
        f"<li><code>{esc(label)}</code>: {len(policy_ids)} of the catalogue's "
        f"{catalogue} policies checked"
        + (f": {esc(', '.join(policy_ids))}" if policy_ids else "")
        + "</li>"
        for label, policy_ids in partial.items()
    )
    return (
        '<div class="amipolicy-partial"><h3>Partial check</h3>'
        "<p>Only some of the catalogue's policies were selected, by "
        f"{esc(' and '.join(selected_by))}. This report is evidence for those "
        "policies only; check again without that selection before you hand it "
        "over as evidence that a target meets every policy.</p>"
        f"<ul>{items}</ul></div>"
    )


def verdict_tables(
    records: list[dict[str, Any]],
    not_run: NotRun | None = None,
    partial: dict[str, int] | None = None,
    catalogue: int = 0,
    own_failures: dict[str, Counter[str]] | None = None,
) -> str:
    """Counts per family and verdict, and one line per target with its standing.

    ``partial`` maps the targets checked on part of the catalogue to how many
    of its ``catalogue`` policies were selected for them; ``own_failures`` the
    targets some of the user's own tests of which failed or ended in an error.
    """
    not_run = not_run or {}
    partial = partial or {}
    own_failures = own_failures or {}
    families: dict[str, Counter[str]] = defaultdict(Counter)
    targets: dict[str, Counter[str]] = defaultdict(Counter)
    commands: Counter[str] = Counter()
    for record in records:
        verdict = str(record.get("verdict", ""))
        target = str(record.get("target", ""))
        families[str(record.get("family", ""))][verdict] += 1
        targets[target][verdict] += 1

        # Each record holds the count when its verdict was reached; the
        # largest is what the whole check of the target took.
        commands[target] = max(commands[target], int(record.get("remote_commands", 0)))

    # A target interrupted before its first verdict, or checked by the user's
    # own tests only, still has a row.
    for label in [*not_run, *own_failures]:
        targets[label] += Counter()

    esc = html.escape
    head = "".join(f'<th class="amipolicy-{v}">{v}</th>' for v in VERDICTS)

    rows = []
    for label, counts in targets.items():
        cells = "".join(_count_cell(counts[v], v) for v in VERDICTS)
        missing, expected = not_run.get(label, ([], 0))
        phrase = standing(
            counts,
            len(missing),
            expected,
            checked=partial.get(label, catalogue),
            catalogue=catalogue,
            own=own_failures.get(label),
        )
        rows.append(
            f"<tr><th><code>{esc(label)}</code></th>{cells}"
            f'<td class="amipolicy-standing">{esc(phrase)}</td>'
            f'<td class="amipolicy-number">{commands[label]}</td></tr>'
        )
    by_target = (
        '<table class="amipolicy-counts"><caption>Targets</caption>'
        f"<tr><th>target</th>{head}<th>standing</th><th>remote commands</th></tr>"
        f"{''.join(rows)}</table>"
    )

    rows = []
    for family in sorted(families):
        counts = families[family]
        cells = "".join(_count_cell(counts[v], v) for v in VERDICTS)
        rows.append(f"<tr><th>{esc(family)}</th>{cells}</tr>")
    by_family = (
        '<table class="amipolicy-counts"><caption>Policies by family</caption>'
        f"<tr><th>family</th>{head}</tr>{''.join(rows)}</table>"
    )
    return f'<div class="amipolicy-summary">{by_target}{by_family}</div>'


def standing(
    counts: Counter[str],
    not_run: int = 0,
    expected: int = 0,
    *,
    checked: int = 0,
    catalogue: int = 0,
    own: Counter[str] | None = None,
) -> str:
    """One phrase for a target: what a seller can say about it.

    A target some of whose policies were not run, or some of whose own tests
    (``own``: failed and error counts) did not pass, is never called
    compliant; one checked on part of the catalogue (``checked`` of its
    ``catalogue`` policies) is compliant on those only.
    """
    partial = checked < catalogue
    own = own or Counter()
    parts = []
    if counts["fail"]:
        parts.append(f"not compliant: {counts['fail']} policy failure(s)")
    if not_run:
        parts.append(f"incomplete: {not_run} of {expected} policies not run")
    elif counts["error"] and not counts["fail"]:
        parts.append(f"undecided: {counts['error']} check(s) could not decide")
    parts.extend(own_phrases(own))

    if parts or not counts["pass"]:
        parts = parts or ["nothing checked"]
        if partial:
            parts.append(f"partial check: {checked} of {catalogue} policies")
        return "; ".join(parts)

    if partial:
        parts.append(
            f"compliant on the {checked} checked "
            f"polic{'y' if checked == 1 else 'ies'} of {catalogue}; partial check"
        )
    else:
        parts.append("compliant on every checked policy")
    if counts["skip"]:
        # A skip is no pass: some policies cannot be checked on every kind of
        # target (MALWARE without a scanner, the disk layout in a container).
        parts.append(f"{counts['skip']} skipped (see each reason)")
    if counts["manual"]:
        parts.append(f"{counts['manual']} attestation(s) to sign")
    return "; ".join(parts)


def own_phrases(own: Counter[str]) -> list[str]:
    """What the user's own tests of a target that did not pass amount to."""
    phrases = []
    if own["failed"]:
        phrases.append(f"{own['failed']} of your own checks failed")
    if own["error"]:
        phrases.append(f"{own['error']} of your own checks ended in an error")
    return phrases


def _count_cell(count: int, verdict: str) -> str:
    if not count:
        return '<td class="amipolicy-zero">0</td>'
    return f'<td class="amipolicy-{verdict}">{count}</td>'
