"""AMAZON-* policies: Amazon's own verdicts on the AMI, each opt-in.

The results are gathered in the AWS layer (:mod:`pytest_amipolicy.aws.amazon`)
into ``facts.settings["amazon"]``, one record per enabled feature; these checks
only read them. A feature that was not enabled has no record and its policy is
skipped, naming the option that enables it. A record with ``status: error``
(refused call, service not enabled, no result before the deadline) is an error
verdict: Amazon's silence is never a pass.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.verdicts import (
    Evidence,
    Outcome,
    Verdict,
    failed,
    not_applicable,
    passed,
    undecided,
)

FAMILY = "amazon"
PLATFORMS = ("ami",)

# Inspector's severities from lowest to highest. UNTRIAGED (the source has not
# rated the vulnerability yet) has no rank: it blocks when the threshold is the
# lowest severity, and otherwise leaves the verdict undecided unless a ranked
# finding already fails it.
SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
UNTRIAGED = "UNTRIAGED"
DEFAULT_SEVERITY = "HIGH"
# Findings listed in the evidence; the counts always cover all of them.
MAX_LISTED = 50


# What each policy reads, and the option that turns it on: each is off unless
# asked for, and only an --ami target (a registered AMI) has anything to read.
SOURCES = {
    "AMAZON-INSPECTOR": (
        "Amazon Inspector's findings on instances launched from an --ami target",
        "--ami-inspector",
    ),
    "AMAZON-ASSESSMENT": (
        "AWS Marketplace's scan of an --ami target added to the seller's product",
        "--ami-product=ENTITY_ID",
    ),
    "AMAZON-MALWARE": (
        "GuardDuty Malware Protection's scan of an --ami target",
        "--ami-guardduty",
    ),
}


def switched_off(policy_id: str) -> str:
    """Why an AMAZON-* policy was skipped: what it needs, and how to turn it on."""
    reads, option = SOURCES[policy_id]
    return f"{policy_id} is off: it reads {reads}; turn it on with {option}"


def _result(facts: Facts, feature: str) -> dict[str, Any] | None:
    results = facts.settings.get("amazon") or {}
    result = results.get(feature)
    return result if isinstance(result, dict) else None


def _image_id(facts: Facts) -> str:
    return str((facts.image or {}).get("ImageId", facts.target))


def _rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@policy(
    "AMAZON-INSPECTOR",
    family=FAMILY,
    platforms=PLATFORMS,
    summary=(
        "Amazon Inspector reports no active finding at or above the chosen "
        "severity on instances launched from the AMI."
    ),
    remediation=(
        "Update the packages Inspector names (the fixed-in versions are listed), "
        "rebuild the AMI and check it again."
    ),
)
def check_inspector(facts: Facts) -> Outcome:
    result = _result(facts, "inspector")
    if result is None:
        return not_applicable(switched_off("AMAZON-INSPECTOR"))
    if result.get("status") != "ok":
        return undecided(f"Amazon Inspector: {result.get('error', 'no result')}")

    image_id = _image_id(facts)
    threshold = str(result.get("threshold") or DEFAULT_SEVERITY)
    findings: list[dict[str, Any]] = result.get("findings", [])
    coverage: list[dict[str, Any]] = result.get("coverage", [])
    evidence = (_coverage_evidence(image_id, coverage), _findings_evidence(result))

    was_scanned = any(
        r.get("status") == "ACTIVE"
        and (r.get("reason") == "SUCCESSFUL" or r.get("last_scanned_at"))
        for r in coverage
    )
    if not findings and not was_scanned:
        states = ", ".join(
            f"{r.get('resource_id')} {r.get('status')}/{r.get('reason')}"
            for r in coverage
        )
        return undecided(
            f"Inspector has not scanned any instance launched from {image_id}"
            + (f" ({states})" if states else "")
            + ": turn on Inspector EC2 scanning and launch the AMI (an SSM-managed "
            "instance, or agentless scanning), then rerun",
            *evidence,
        )

    untriaged = [f for f in findings if _rank(f.get("severity")) < 0]
    blocking = [f for f in findings if _rank(f.get("severity")) >= _rank(threshold)]
    if _rank(threshold) <= 0:
        # At the lowest threshold every finding counts, rated or not.
        blocking.extend(untriaged)
        untriaged = []
    if blocking:
        counts = collections.Counter(str(f.get("severity")) for f in blocking)
        summary = ", ".join(
            f"{counts[s]} {s}" for s in reversed(SEVERITIES) if s in counts
        )
        return failed(
            f"{len(blocking)} active Inspector finding(s) at or above {threshold} "
            f"({summary})",
            *evidence,
            findings=tuple(
                f"{f.get('severity')} {f.get('vulnerability') or f.get('title')}"
                for f in blocking
            ),
        )

    if untriaged:
        return Outcome(
            Verdict.ERROR,
            f"{len(untriaged)} active Inspector finding(s) are {UNTRIAGED} (not "
            f"rated yet), so whether they reach {threshold} is unknown: review "
            "them in the evidence, or rerun once Inspector has rated them",
            evidence,
            tuple(
                f"{f.get('severity')} {f.get('vulnerability') or f.get('title')}"
                for f in untriaged
            ),
        )

    highest = max((f.get("severity") for f in findings), key=_rank, default=None)
    return passed(
        f"no active Inspector finding at or above {threshold} "
        f"({len(findings)} below it"
        + (f", highest {highest}" if highest else "")
        + ")",
        *evidence,
    )


def _coverage_evidence(image_id: str, coverage: list[dict[str, Any]]) -> Evidence:
    lines = [
        f"{r.get('resource_id')}: {r.get('status')} ({r.get('reason')}), "
        f"{r.get('scan_type')} {r.get('scan_mode') or ''}".rstrip()
        + f", last scanned {r.get('last_scanned_at') or 'never'}"
        for r in coverage
    ]
    return Evidence(
        label=f"Inspector coverage of instances launched from {image_id}",
        command=(
            "aws inspector2 list-coverage --filter-criteria "
            "'resourceType=[{comparison=EQUALS,value=AWS_EC2_INSTANCE}]' "
            f"--query \"coveredResources[?resourceMetadata.ec2.amiId=='{image_id}']\""
        ),
        output="\n".join(lines) or "(no instance of the AMI is covered)",
    )


def _findings_evidence(result: dict[str, Any]) -> Evidence:
    findings: list[dict[str, Any]] = result.get("findings", [])
    image_id = result.get("image_id", "")
    by_severity = collections.Counter(str(f.get("severity")) for f in findings)
    fixes = collections.Counter(
        str(f.get("fix_available") or "UNKNOWN") for f in findings
    )
    highest = max((f.get("severity") for f in findings), key=_rank, default=None)

    lines = [
        f"active findings: {len(findings)}, highest severity: {highest or '(none)'}",
        "per severity: "
        + (", ".join(f"{s} {n}" for s, n in sorted(by_severity.items())) or "none"),
        "fix available: "
        + (", ".join(f"{s} {n}" for s, n in sorted(fixes.items())) or "none"),
    ]
    ordered = sorted(findings, key=lambda f: _rank(f.get("severity")), reverse=True)
    for finding in ordered[:MAX_LISTED]:
        fixed = ", ".join(
            f"{p.get('name')} {p.get('version')} -> {p.get('fixed_in') or '?'}"
            for p in finding.get("packages", [])
        )
        lines.append(
            f"{finding.get('severity')} {finding.get('vulnerability') or ''} "
            f"{finding.get('title')} on {', '.join(finding.get('resources', []))}; "
            f"fix available {finding.get('fix_available')}"
            + (f" ({fixed})" if fixed else "")
            + f"; first seen {finding.get('first_observed_at')}"
            + (
                f", published {finding['vendor_created_at']}"
                if finding.get("vendor_created_at")
                else ""
            )
        )
    if len(ordered) > MAX_LISTED:
        lines.append(f"... and {len(ordered) - MAX_LISTED} more")

    return Evidence(
        label="Inspector findings",
        command=(
            "aws inspector2 list-findings --filter-criteria "
            f"'ec2InstanceImageId=[{{comparison=EQUALS,value={image_id}}}],"
            "resourceType=[{comparison=EQUALS,value=AWS_EC2_INSTANCE}],"
            "findingStatus=[{comparison=EQUALS,value=ACTIVE}]'"
        ),
        output="\n".join(lines),
    )


@policy(
    "AMAZON-ASSESSMENT",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="AWS Marketplace's own scan accepted the AMI for the seller's product.",
    remediation=(
        "Fix every problem the failed change set lists, build a new AMI and add it "
        "to the product again (AddDeliveryOptions; Intent VALIDATE scans without "
        "publishing)."
    ),
)
def check_assessment(facts: Facts) -> Outcome:
    result = _result(facts, "assessment")
    if result is None:
        return not_applicable(switched_off("AMAZON-ASSESSMENT"))
    if result.get("status") != "ok":
        return undecided(f"AWS Marketplace: {result.get('error', 'no result')}")

    image_id = _image_id(facts)
    product = result.get("entity_id", "")
    versions: list[dict[str, Any]] = result.get("versions", [])
    change_sets: list[dict[str, Any]] = result.get("change_sets", [])
    evidence = _assessment_evidence(product, versions, change_sets)

    if change_sets:
        newest = change_sets[0]
        status = newest.get("status")
        errors = [
            f"{error.get('code')}: {error.get('message')}"
            for change in newest.get("changes", [])
            for error in change.get("errors", [])
        ]
        if status == "FAILED":
            return failed(
                f"Marketplace rejected {image_id} in change set {newest.get('id')}: "
                + (
                    "; ".join(errors)
                    or str(
                        newest.get("failure_description") or newest.get("failure_code")
                    )
                ),
                *evidence,
                findings=tuple(errors) or (str(newest.get("failure_code")),),
            )
        if status == "SUCCEEDED":
            return passed(
                f"Marketplace accepted {image_id} in change set {newest.get('id')} "
                f"({newest.get('intent') or 'APPLY'})",
                *evidence,
            )
        return undecided(
            f"the newest change set naming {image_id}, {newest.get('id')}, ended "
            f"{status}: it gives no assessment",
            *evidence,
        )

    if versions:
        titles = ", ".join(str(v.get("title") or v.get("id")) for v in versions)
        return passed(
            f"{image_id} is the source of version(s) {titles} of {product}, which "
            "Marketplace publishes only after its scan passed",
            *evidence,
        )

    return undecided(
        f"Marketplace has not assessed {image_id} in {product}: no version uses it "
        "and no change set of the last 60 days names it; add it as a version "
        "(AddDeliveryOptions, Intent VALIDATE to scan only) and rerun",
        *evidence,
    )


def _assessment_evidence(
    product: str, versions: list[dict[str, Any]], change_sets: list[dict[str, Any]]
) -> tuple[Evidence, ...]:
    items = [
        Evidence(
            label=f"versions of {product} built from the AMI",
            command=(
                "aws marketplace-catalog describe-entity --catalog AWSMarketplace "
                f"--entity-id {product} --region us-east-1"
            ),
            output="\n".join(
                f"{v.get('title')} ({v.get('id')}), created {v.get('created')}"
                for v in versions
            )
            or "(none)",
        )
    ]
    for change_set in change_sets:
        lines = [
            f"{change_set.get('status')} ({change_set.get('intent') or 'APPLY'}), "
            f"{change_set.get('start')} .. {change_set.get('end') or ''}".rstrip()
        ]
        if change_set.get("failure_code"):
            lines.append(
                f"failure {change_set['failure_code']}: "
                f"{change_set.get('failure_description') or ''}".rstrip()
            )
        for change in change_set.get("changes", []):
            errors = change.get("errors", [])
            lines.append(
                f"{change.get('type')} {change.get('name') or ''}".rstrip()
                + (": passed" if not errors else f": {len(errors)} problem(s)")
            )
            lines.extend(f"  {e.get('code')}: {e.get('message')}" for e in errors)
        items.append(
            Evidence(
                label=(
                    f"change set {change_set.get('id')} {change_set.get('name') or ''}"
                ).rstrip(),
                command=(
                    "aws marketplace-catalog describe-change-set --catalog "
                    f"AWSMarketplace --change-set-id {change_set.get('id')} "
                    "--region us-east-1"
                ),
                output="\n".join(lines),
            )
        )
    return tuple(items)


@policy(
    "AMAZON-MALWARE",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="GuardDuty Malware Protection's scan of the AMI found no threat.",
    remediation=(
        "Remove the files GuardDuty names from the build, rebuild the AMI from "
        "clean sources and scan it again."
    ),
)
def check_malware(facts: Facts) -> Outcome:
    result = _result(facts, "malware")
    if result is None:
        return not_applicable(switched_off("AMAZON-MALWARE"))
    if result.get("status") != "ok":
        return undecided(f"GuardDuty: {result.get('error', 'no result')}")

    evidence = _malware_evidence(result)
    threats: list[dict[str, Any]] = result.get("threats", [])
    scan_status = result.get("scan_status")
    files = result.get("files", {})

    if threats or result.get("result") == "THREATS_FOUND":
        names = tuple(
            f"{t.get('name')} in {', '.join(t.get('paths', [])) or '(path not given)'}"
            for t in threats
        ) or ("THREATS_FOUND",)
        return failed(
            f"GuardDuty found {len(threats) or 'unnamed'} threat(s) in scan "
            f"{result.get('scan_id')}",
            evidence,
            findings=names,
        )

    if scan_status == "COMPLETED" and result.get("result") == "NO_THREATS_FOUND":
        return passed(
            f"GuardDuty scan {result.get('scan_id')} found no threat in "
            f"{files.get('total', '?')} files",
            evidence,
        )

    if scan_status == "COMPLETED_WITH_ISSUES":
        return undecided(
            f"GuardDuty scan {result.get('scan_id')} completed with issues: "
            f"{files.get('skipped') or 0} files skipped, {files.get('failed') or 0} "
            "failed; the image is not shown clean",
            evidence,
        )

    return undecided(
        f"GuardDuty scan {result.get('scan_id')} ended {scan_status}"
        + (f" ({result['status_reason']})" if result.get("status_reason") else "")
        + ": it gives no verdict",
        evidence,
    )


def _malware_evidence(result: dict[str, Any]) -> Evidence:
    files = result.get("files", {})
    lines = [
        f"scan {result.get('scan_id')} of {result.get('resource_arn')}"
        + (" (started by this run)" if result.get("started_by_run") else ""),
        f"status {result.get('scan_status')}"
        + (f" ({result['status_reason']})" if result.get("status_reason") else "")
        + f", result {result.get('result') or '(none)'}",
        f"started {result.get('started')}, completed {result.get('completed')}",
        "files: "
        + ", ".join(
            f"{key} {value}" for key, value in files.items() if value is not None
        ),
    ]
    for resource in result.get("resources", []):
        lines.append(
            f"{resource.get('type')} {resource.get('arn')}: {resource.get('status')}"
            + (f" ({resource['reason']})" if resource.get("reason") else "")
        )
    for threat in result.get("threats", []):
        lines.append(
            f"threat {threat.get('name')} ({threat.get('source')}), "
            f"{threat.get('count')} item(s): {json.dumps(threat.get('paths', []))}"
        )
    return Evidence(
        label="GuardDuty malware scan",
        command=f"aws guardduty get-malware-scan --scan-id {result.get('scan_id')}",
        output="\n".join(lines),
    )


# Policy ID -> check, for callers that judge recorded results without the catalogue.
CHECKS = {
    "AMAZON-INSPECTOR": check_inspector,
    "AMAZON-ASSESSMENT": check_assessment,
    "AMAZON-MALWARE": check_malware,
}
