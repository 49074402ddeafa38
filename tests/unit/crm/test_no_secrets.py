"""No secret in the repository: connection strings carry no password, no key files or
tokens are committed; connections come from the environment (`.env.example` documents
them without values that work anywhere but a local trust-auth server)."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

PATTERNS = {
    # (a placeholder is no password: ${VARIABLE}, CHANGE-ME, *** as `crm config` masks)
    "password in a URL": re.compile(
        r"\b[a-z][a-z0-9+]*://[^\s:/@'\"]+:(?!\$\{[A-Z_]+\}@|CHANGE-ME@|\*\*\*@)[^\s@/'\"]+@"
    ),
    "password setting": re.compile(
        r"(?i)\b(password|passwd|secret|api_key|token)\s*[:=]\s*['\"][^'\"{$<]{4,}"
    ),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
}


def tracked_files() -> list:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in listed if not name.endswith((".parquet", ".png", ".csv"))]


def test_no_secret_is_committed():
    found = []
    for path in tracked_files():
        if path.name == "test_no_secrets.py" or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for what, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(REPO)}: {what}: {match.group(0)[:60]}")
    assert found == []


def test_the_patterns_do_catch_secrets():
    assert PATTERNS["password in a URL"].search("postgresql://crm:hunter22@db:5432/crm")
    assert not PATTERNS["password in a URL"].search("postgresql://postgres@127.0.0.1:5432/test")
    for placeholder in ("${DB_PASSWORD}", "CHANGE-ME", "***"):
        assert not PATTERNS["password in a URL"].search(f"postgresql://crm:{placeholder}@db/crm")
    assert PATTERNS["password setting"].search('password = "hunter22"')
    assert not PATTERNS["password setting"].search("password: \"{{ env_var('PG_PASSWORD') }}\"")
