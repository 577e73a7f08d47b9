"""The secrets scan's patterns in linux.sh, each tried both ways on a small file.

Each pattern must find what it is for (a secret typed on a command line, set
for a service, a token, a PuTTY key) and report only its fingerprint, and must
not take ordinary commands and settings for secrets.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_amipolicy.facts import linux

pytestmark = pytest.mark.skipif(
    shutil.which("sh") is None or shutil.which("sha256sum") is None,
    reason="runs parts of linux.sh: needs a POSIX sh and sha256sum",
)


def function(name: str) -> str:
    start = linux.SCRIPT.index(f"\n{name}() {{\n") + 1
    end = linux.SCRIPT.index("\n}\n", start) + 3
    return linux.SCRIPT[start:end]


def assignment(name: str) -> str:
    """The line of linux.sh that starts ``name=`` (or ``name``, given its end)."""
    start = name if name.endswith(" ") else f"{name}="
    return next(
        line + "\n" for line in linux.SCRIPT.splitlines() if line.startswith(start)
    )


def run(program: str, tmp_path: Path) -> list[list[str]]:
    prelude = (
        f"tmpd={tmp_path}\n"
        + "tab=$(printf '\\t')\n"
        + assignment("fp() ")
        + "".join(
            assignment(name)
            for name in ("token_pattern", "secret_name", "literal", "glued")
        )
    )
    result = subprocess.run(
        ["sh", "-c", prelude + program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line.split("\t") for line in result.stdout.splitlines()]


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def history(line: str, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / ".bash_history"
    path.write_text(f"cd /srv\n{line}\nls\n")

    found = run(
        function("history_rule")
        + function("history_secrets")
        + f"history_secrets {path}\n",
        tmp_path,
    )

    assert line not in "".join(map("".join, found))
    return found


@pytest.mark.parametrize(
    ("line", "secret", "label"),
    [
        ("export DB_PASSWORD=hunter2x", "hunter2x", "DB_PASSWORD"),
        ("export GITHUB_TOKEN=abc123def", "abc123def", "GITHUB_TOKEN"),
        ("export db_password='p w 9'", "p w 9", "db_password"),
        ("PGPASSWORD=pgpw psql -h db", "pgpw", "PGPASSWORD"),
        ("MYSQL_PWD=mpw3 mysql", "mpw3", "MYSQL_PWD"),
        (
            "kubectl create secret generic x --from-literal=password=hunter3",
            "hunter3",
            "password",
        ),
        ("sshpass -p 'pw-123' ssh admin@host", "pw-123", "sshpass -p"),
        ("sshpass -ppw9 ssh host", "pw9", "sshpass -p"),
        ("sshpass -v -p pw7 scp f host:", "pw7", "sshpass -p"),
        ("docker login -u bob -p s3cret registry.example.com", "s3cret", None),
        ("docker login registry.example.com --password s4cret", "s4cret", None),
        ("podman login -u bob -p s5cret quay.io", "s5cret", None),
        ("curl -u admin:pw1 https://example.test", "pw1", "curl -u"),
        ("curl -s --user 'admin:p w2' https://example.test", "p w2", "curl -u"),
        ("mysql -uroot -pSecret db", "Secret", "mysql -p"),
        ("mysqldump -u root -p'dump pw' db", "dump pw", "mysql -p"),
        ("git clone https://user:tok123@github.com/org/repo.git", "tok123", None),
        ("psql postgres://app:dbpw4@db/app", "dbpw4", "credentials in a URL"),
        ("openssl req -passout pass:changeit -new", "changeit", "-pass pass:"),
        ("wget --http-password=wgetpw http://x", "wgetpw", None),
        ("app --token abcdef12 --verbose", "abcdef12", "--option"),
        (
            'curl -H "Authorization: Bearer abcdefgh12345678" https://api',
            "abcdefgh12345678",
            "authorization header",
        ),
        ("curl -H 'X-API-Key: k3y5ecret99' https://api", "k3y5ecret99", None),
        (
            "mysql -e \"CREATE USER 'a'@'%' IDENTIFIED BY 'sqlpw';\"",
            "sqlpw",
            "SQL password",
        ),
        (
            "CREATE\\040USER\\040'b'@'%'\\040IDENTIFIED\\040BY\\040'sqlpw2';",
            "sqlpw2",
            None,
        ),
        (": 1700000000:0;export API_KEY=zshkey1", "zshkey1", "API_KEY"),
    ],
)
def test_a_secret_typed_in_a_shell_history_is_found_by_its_fingerprint(
    line: str, secret: str, label: str | None, tmp_path: Path
) -> None:
    found = history(line, tmp_path)

    assert [(f[0], f[2], f[3]) for f in found] == [
        ("history-secret", "2", fingerprint(secret))
    ], found
    if label is not None:
        assert found[0][5] == label


@pytest.mark.parametrize(
    "line",
    [
        "ssh -p2222 host",
        "ssh -p 2222 admin@host",
        "tar -pzxvf f.tgz",
        "scp -P 2222 -p file host:",
        "sshpass -f ~/.pw ssh -p 2222 host",
        "sshpass -e ssh -p2222 host",
        "mysql -u root -p db",
        "mysql -h db -P3306 -u app -p",
        "docker login --password-stdin -u bob",
        "docker run -p 8080:80 nginx",
        "curl -u admin https://example.test",
        "curl --negotiate -u : https://example.test",
        "export DB_PASSWORD=$(cat /run/secrets/db)",
        'export API_TOKEN="$VAULT_TOKEN"',
        "export TOKEN=$TOKEN",
        "ssh -o PasswordAuthentication=no host",
        "git clone git@github.com:org/repo.git",
        "passwd",
        "BYPASS=1 make",
        "TOKEN_TTL=3600 ./run",
        "PASSWORD_FILE=/run/secrets/pw ./app",
        "grep -ri password= /etc",
        'curl -H "Authorization: Bearer $TOKEN" https://api',
        "echo 'admin ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/admin",
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "app --password-file /etc/app/pw",
        "useradd -m -p '!' deploy",
    ],
)
def test_ordinary_commands_in_a_history_are_not_secrets(
    line: str, tmp_path: Path
) -> None:
    assert history(line, tmp_path) == []


def service(kind: str, text: str, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / ("app.service" if kind == "unit" else "app.env")
    path.write_text(text)

    return run(
        function("service_secrets") + f"service_secrets {kind} {path}\n", tmp_path
    )


@pytest.mark.parametrize(
    ("kind", "text", "secret", "name"),
    [
        (
            "unit",
            "[Service]\nEnvironment=API_TOKEN=tok-abc123\n",
            "tok-abc123",
            "API_TOKEN",
        ),
        (
            "unit",
            '[Service]\nEnvironment=LOG=info "DB_PASSWORD=pw 1" X=2\n',
            "pw 1",
            "DB_PASSWORD",
        ),
        (
            "unit",
            '[Service]\nEnvironment="CLIENT_SECRET=cs123"\n',
            "cs123",
            "CLIENT_SECRET",
        ),
        ("env", "# app settings\nexport DB_PASSWORD=envpw1\n", "envpw1", "DB_PASSWORD"),
        ("env", '# app settings\nREDIS_PASS="rpw2"\n', "rpw2", "REDIS_PASS"),
        (
            "env",
            "# app settings\n  SMTP_PASSWORD='s m t p'\n",
            "s m t p",
            "SMTP_PASSWORD",
        ),
    ],
)
def test_a_secret_set_for_a_service_is_found_by_its_fingerprint(
    kind: str, text: str, secret: str, name: str, tmp_path: Path
) -> None:
    found = service(kind, text, tmp_path)

    assert [(f[0], f[2], f[3], f[5]) for f in found] == [
        ("service-secret", "2", fingerprint(secret), name)
    ]


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("unit", "[Service]\nEnvironment=TOKEN_TTL=3600 LOG=debug\n"),
        ("unit", "[Service]\nEnvironment=PASSWORD_FILE=/run/credentials/app/pw\n"),
        ("unit", "[Service]\nEnvironment=API_TOKEN=%d/token\n"),
        ("unit", "[Service]\nExecStart=/usr/bin/app --config /etc/app.conf\n"),
        ("unit", "[Service]\n# Environment=API_TOKEN=commented-out\n"),
        ("env", "# DB_PASSWORD=commented\n"),
        ("env", "API_KEY=${API_KEY}\n"),
        ("env", "USE_TOKEN=yes\nREQUIRE_PASSWORD=false\n"),
        ("env", "PASS_MAX_DAYS=99999\n"),
        ("env", "AWS_SECRET_ACCESS_KEY=abcdefghij\n"),
        ("env", "DB_PASSWORD=\n"),
    ],
)
def test_ordinary_service_settings_are_not_secrets(
    kind: str, text: str, tmp_path: Path
) -> None:
    assert service(kind, text, tmp_path) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ghp_" + "a1B2" * 9, True),
        ("github_pat_" + "A1b2C3d4E5f6G7h8I9j0K1" + "_" + "x" * 59, True),
        ("glpat-" + "Ab3_dE6-gH9jK2mN5pQ8", True),
        ("xoxb-1234567890-abcdefghij", True),
        ("github_pat_tooshort", False),
        ("glpat-short", False),
        ("the glpat- prefix marks GitLab tokens", False),
    ],
)
def test_token_formats_are_recognised_and_their_lookalikes_are_not(
    text: str, found: bool, tmp_path: Path
) -> None:
    path = tmp_path / "config"
    path.write_text(f"token = {text}\n")

    hits = run(
        function("report_matches")
        + f'report_matches token {path} "$token_pattern" 0\n',
        tmp_path,
    )

    assert bool(hits) is found
    if found:
        assert hits[0][3] == fingerprint(text)


PPK = """\
PuTTY-User-Key-File-3: ssh-ed25519
Encryption: {encryption}
Comment: deploy@build
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIHFhbAgu/sbKF+2fCgNvEa9Da49nOj+/B1CqxJd03YWb
Private-Lines: 1
AAAAIGRvbm90dXNlIHRoaXMga2V5IGFueXdoZXJlIGF0IGFsbCBwbGVhc2Ug
Private-MAC: 7d3c1fb4f6d06ea3e2b5e2f5f1b9c0c2a1e0f3d4c5b6a7980e1f2a3b4c5d6e7f
"""


@pytest.mark.parametrize(
    ("encryption", "kind"),
    [("none", "private-key"), ("aes256-cbc", "encrypted-private-key")],
)
def test_a_putty_private_key_is_a_private_key(
    encryption: str, kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "deploy.ppk"
    path.write_text(PPK.format(encryption=encryption))

    found = run(function("putty_key") + f"putty_key {path}\n", tmp_path)

    assert [(f[0], f[2], f[5]) for f in found] == [(kind, "1", "PuTTY")]
    assert "AAAAIGRvbm90" not in "".join(map("".join, found))


def test_prose_about_putty_key_files_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "README"
    path.write_text("Keys start with PuTTY-User-Key-File-3: and a key type.\n")

    assert run(function("putty_key") + f"putty_key {path}\n", tmp_path) == []
