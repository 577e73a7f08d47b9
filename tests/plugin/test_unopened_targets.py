"""A target that cannot be opened costs one attempt and one message, not one per policy.

Real runs of the plugin in a subprocess: an SSH host on a closed port of this
machine, and an AMI whose EC2 endpoint (``AWS_ENDPOINT_URL``) is a closed port.
Each policy of such a target is still an error (nothing was decided), but the
reason is shown in full once, the other policies point to it in one line, the
summary says the target was not checked, and Amazon's checks that were not
asked for and the manual attestations keep their own verdicts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tarfile

import pytest

# pytester's runs are slower than a plain one; a run that formats every
# policy's error with a long traceback took over 13 s on an idle machine.
FEW_SECONDS = 8.0

AMI = "ami-0123456789abcdef0"
AMAZON_OPTIONS = {
    "AMAZON-INSPECTOR": "--ami-inspector",
    "AMAZON-ASSESSMENT": "--ami-product",
    "AMAZON-MALWARE": "--ami-guardduty",
}


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def run_plugin(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # -rN: no short summary, whose truncated lines would repeat the message.
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-p",
        "no:hypothesispytest",
        "-rN",
        "--ami-evidence=evidence.json",
        *args,
    )


def session_seconds(result: pytest.RunResult) -> float:
    found = re.search(r" in (\d+\.\d+)s", result.stdout.lines[-1])
    assert found, result.stdout.lines[-1]
    return float(found.group(1))


def verdicts(pytester: pytest.Pytester) -> dict[str, str]:
    document = json.loads((pytester.path / "evidence.json").read_text())
    return {result["policy"]: result["verdict"] for result in document["results"]}


def test_a_refused_ssh_host_is_reported_once_and_quickly(
    pytester: pytest.Pytester, closed_port: int
) -> None:
    target = f"ssh://admin@127.0.0.1:{closed_port}"
    reason = f"connection to 127.0.0.1:{closed_port} refused"

    result = run_plugin(pytester, f"--ami-host={target}")

    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Once in the first policy's error, once in the summary.
    assert output.count(reason) == 2
    result.stdout.fnmatch_lines(
        [
            f"SSH-PASSWORD: {target}: {reason}; check the address and port*",
            f"SSH-ROOT: not checked, {target} could not be opened (the reason is "
            "shown under SSH-PASSWORD)",
            f"{target}: not checked: {reason}; check the address and port*",
        ]
    )
    assert "Traceback" not in output
    assert "During handling" not in output
    assert session_seconds(result) < FEW_SECONDS

    found = verdicts(pytester)
    assert found["SSH-PASSWORD"] == found["SUDO"] == found["WIN-GUEST"] == "error"
    assert found["MANUAL-CONSENT"] == "manual"


def test_an_unreachable_ec2_endpoint_is_asked_once_and_amazons_checks_skip(
    pytester: pytest.Pytester, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    reason = "cannot reach the EC2 endpoint of us-east-1"

    result = run_plugin(pytester, f"--ami={AMI}", "--ami-region=us-east-1", "-rs")

    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert output.count(reason) == 2
    assert f"(AWS_ENDPOINT_URL is set to http://127.0.0.1:{closed_port}; unset " in (
        output
    )
    result.stdout.fnmatch_lines(
        [
            f"AMI-ARCH: {reason}: *",
            f"AMI-HVM: not checked, {AMI} could not be opened (the reason is shown "
            "under AMI-ARCH)",
            f"SUDO: not checked, {AMI} could not be opened *",
            f"{AMI}: not checked: {reason}: *",
        ]
    )
    for option in AMAZON_OPTIONS.values():
        result.stdout.fnmatch_lines([f"SKIPPED * not applicable: * {option}*"])
    assert session_seconds(result) < FEW_SECONDS

    found = verdicts(pytester)
    assert {policy: found[policy] for policy in AMAZON_OPTIONS} == dict.fromkeys(
        AMAZON_OPTIONS, "skip"
    )
    assert found["AMI-ARCH"] == found["AMI-REGION"] == found["SUDO"] == "error"
    assert found["MANUAL-NO-UPSELL"] == "manual"


def test_a_local_image_that_cannot_be_opened_is_reported_once(
    pytester: pytest.Pytester,
) -> None:
    if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
        pytest.skip("--ami-image needs root and systemd-nspawn")

    # An archive of an OS tree by its release file, so that its listing passes
    # the checks made before the run, but with neither init, sshd nor
    # cloud-init: opening it fails.
    tree = pytester.path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    image = pytester.path / "tree.tar"
    with tarfile.open(image, "w") as archive:
        archive.add(tree, arcname=".")

    result = run_plugin(pytester, f"--ami-image={image}")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "SSH-PASSWORD: image:*",
            "SSH-ROOT: not checked, image:* could not be opened (the reason is shown "
            "under SSH-PASSWORD)",
            "image:*: not checked: *",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert session_seconds(result) < FEW_SECONDS
