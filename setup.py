from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="pytest-amipolicy",
    version="0.1.0",
    description=(
        "Check an Amazon Machine Image against the AWS Marketplace AMI security "
        "policies, with pytest, and keep the evidence."
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["pytest_amipolicy", "pytest_amipolicy.*"]),
    package_data={
        "pytest_amipolicy": ["py.typed", "data/*", "facts/*.sh", "facts/*.ps1"]
    },
    install_requires=[
        # config.get_verbosity() is pytest 8's.
        "pytest>=8",
        "pytest-testinfra>=10",
        "paramiko>=3",
        "boto3>=1.28",
        "cryptography>=41",
        "pytest-html>=4",
        # Reads the cloud-init configuration of --ami-image trees.
        "PyYAML>=5.1",
    ],
    extras_require={
        "windows": ["pywinrm>=0.4"],
        "xdist": ["pytest-xdist>=3"],
        "test": [
            # Tests use AMIs from the catalogue this moto release ships.
            "moto[server,ec2]==5.2.1",
            "pytest-xdist>=3",
            "pywinrm>=0.4",
            "ruff",
            "mypy",
            "types-PyYAML",
            # Parses the Windows fact script, since no PowerShell runs here.
            "tree-sitter>=0.22",
            "tree-sitter-powershell",
        ],
    },
    entry_points={"pytest11": ["amipolicy = pytest_amipolicy.plugin"]},
    classifiers=[
        "Framework :: Pytest",
        "Programming Language :: Python :: 3",
        "Topic :: Security",
        "Topic :: Software Development :: Testing",
    ],
)
