"""Options that only an ``--ami`` run reads: checked early, and flagged when idle.

The shape of an instance type or a region is checked before any AWS call (for
``--ami-cleanup`` too, which runs instead of a session); an option that only
changes how an instance is launched warns, once, when no ``--ami`` is given.
"""

from __future__ import annotations

import pytest

AMI = "--ami=ami-0123456789abcdef0"

BAD_SHAPES = [
    pytest.param(
        [AMI, "--ami-instance-type=t3.nano!"],
        "--ami-instance-type='t3.nano!' is not an EC2 instance type: write the "
        "family and the size joined by a dot, in lower case, such as t3.micro*",
        id="punctuation",
    ),
    pytest.param(
        [AMI, "--ami-instance-type=T3 nano"],
        "--ami-instance-type='T3 nano' is not an EC2 instance type*(did you mean "
        "t3.nano?)*",
        id="case-and-space",
    ),
    pytest.param(
        [AMI, "--ami-instance-type=t3"],
        "--ami-instance-type='t3' is not an EC2 instance type*",
        id="family-only",
    ),
    pytest.param(
        [AMI, "--ami-region=mars-1"],
        "--ami-region='mars-1' is not an AWS region name: write it like us-east-1*",
        id="region",
    ),
    pytest.param(
        ["--ami-cleanup", "--ami-region=mars-1"],
        "--ami-region='mars-1' is not an AWS region name: write it like us-east-1*",
        id="cleanup-region",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_SHAPES)
def test_a_badly_shaped_value_is_refused_before_any_aws_call(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    # Any AWS call would go here and fail differently.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    result = pytester.runpytest(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()


def test_a_badly_shaped_instance_type_in_the_ini_file_is_named_by_its_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    pytester.makeini("[pytest]\namipolicy_instance_type = t3_micro\n")

    result = pytester.runpytest(AMI)

    result.stderr.fnmatch_lines(
        ["ERROR: amipolicy_instance_type='t3_micro' is not an EC2 instance type*"]
    )


@pytest.mark.parametrize(
    "value", ["t3.micro", "m7i-flex.large", "u-6tb1.metal", "r7iz.metal-16xl"]
)
def test_real_instance_type_shapes_are_accepted(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    result = pytester.runpytest(
        "--collect-only", AMI, f"--ami-instance-type={value}", "--ami-policy=AMI-HVM"
    )

    assert result.ret == pytest.ExitCode.OK


EC2_ONLY = [
    "--ami-region=us-east-1",
    "--ami-instance-type=t3.micro",
    "--ami-subnet=subnet-0123456789abcdef0",
    "--ami-ingress-cidr=203.0.113.7/32",
    "--ami-connect=private",
    "--ami-boot-timeout=60",
    "--ami-keep",
]


@pytest.mark.parametrize("option", EC2_ONLY)
def test_an_ec2_only_option_without_an_ami_warns_once_that_it_has_no_effect(
    pytester: pytest.Pytester, option: str
) -> None:
    name = option.split("=")[0]

    result = pytester.runpytest("--collect-only", "--ami-host=ssh://h", option)

    result.stdout.fnmatch_lines(
        [f"*{name} applies to --ami only, and no --ami was given: it has no effect*"]
    )
    assert result.stdout.str().count(f"{name} applies") == 1


def test_each_idle_ec2_option_gets_its_own_warning(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--collect-only", "--ami-host=ssh://h", "--ami-region=us-east-1", "--ami-keep"
    )

    result.stdout.fnmatch_lines(
        ["*--ami-region applies to --ami only*", "*--ami-keep applies to --ami only*"]
    )


def test_the_ssh_timeout_with_hosts_only_warns_that_a_host_spec_sets_it(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--collect-only", "--ami-host=ssh://h", "--ami-ssh-timeout=30"
    )

    result.stdout.fnmatch_lines(
        ["*--ami-ssh-timeout applies to --ami and --ami-image only*?timeout=*"]
    )


def test_ec2_options_with_an_ami_do_not_warn(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = pytester.runpytest(
        "--collect-only",
        AMI,
        "--ami-host=ssh://h",
        "--ami-region=us-east-1",
        "--ami-keep",
        "--ami-instance-type=t3.micro",
    )

    assert "applies to --ami only" not in result.stdout.str()


def test_a_region_botocore_does_not_know_warns_but_is_not_refused(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--collect-only", "-q", AMI, "--ami-region=us-east-9")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*--ami-region='us-east-9' is not an EC2 region that this botocore knows*"]
    )


def test_a_known_region_does_not_warn(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--collect-only", "-q", AMI, "--ami-region=eu-west-2")

    assert "botocore knows" not in result.stdout.str()


def test_a_target_given_with_the_cleanup_is_refused_as_it_would_be_ignored(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--ami-cleanup", "--ami-image=demo")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ami-cleanup runs on its own and checks nothing, so "
            "--ami-image='demo' would be ignored; *"
        ]
    )
