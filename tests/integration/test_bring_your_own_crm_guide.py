"""docs/bring_your_own_crm.md, followed as a user would: its files written as the page
shows them, its commands run in order through the real `crm` command line (Airflow, dbt,
DuckDB), and the figures it quotes checked against what the run built."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run_crm
from tests.conftest import warehouse_query as query

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "bring_your_own_crm.md"
BLOCK = re.compile(r"^```(\w+)(?: (\S+))?\n(.*?)^```", re.MULTILINE | re.DOTALL)


def guide_files() -> dict[str, str]:
    """The blocks the page names a file for: ```csv landing/x.csv"""
    return {path: body for _, path, body in BLOCK.findall(GUIDE.read_text()) if path}


def guide_commands() -> list[list[str]]:
    """The `crm` commands of the page's sh blocks, in order."""
    commands = []
    for lang, _, body in BLOCK.findall(GUIDE.read_text()):
        if lang == "sh":
            commands += [
                shlex.split(line.split("#")[0])
                for line in body.splitlines()
                if line.startswith("crm ")
            ]
    return commands


def test_the_guide_takes_a_deal_export_to_a_first_run(tmp_path):
    home = tmp_path / "crm-deals"
    for path, body in guide_files().items():
        (home / path).parent.mkdir(parents=True, exist_ok=True)
        (home / path).write_text(body, encoding="utf-8")
    commands = guide_commands()
    assert [c[:2] for c in commands] == [
        ["crm", "contract"],
        ["crm", "check"],
        ["crm", "run"],
        ["crm", "quarantine"],
    ]
    outputs = []
    for command in commands:
        args = [a.replace("$CRM_HOME", str(home)) for a in command[1:]]
        outputs.append(run_crm(*args, home=home, timeout=900).stdout)
    contract, check, _run, held = outputs
    assert "one of (pipelines file): Prospecting, Engaging, Won, Lost" in contract
    assert "'GTXPro' -> GTX Pro" in contract
    assert "4 would load completely, 0 with rows held back" in check
    assert "nothing is held back" in held

    # the figures the page quotes are what the run built
    guide = " ".join(GUIDE.read_text().split())
    said = re.search(
        r"gives (\d+) deals, (\d+) open, (\d+) won and (\d+) lost: a win rate of ([\d.]+)% "
        r"and ([\d,]+) won",
        guide,
    ).groups()
    built = query(
        home,
        "SELECT deals, open_deals, won_deals, lost_deals, round(100 * win_rate, 1), "
        "won_amount FROM marts.fct_deal_outcomes WHERE dimension = 'all'",
    )[0]
    assert [int(x) for x in said[:4]] == list(built[:4])
    assert float(said[4]) == built[4]
    assert int(said[5].replace(",", "")) == built[5]
    assert query(
        home,
        "SELECT won_deals, lost_deals FROM marts.fct_deal_outcomes "
        "WHERE dimension = 'owner' AND dimension_value = 'moses frase'",
    ) == [(2, 1)]
    report = (home / "reports" / "last_run.html").read_text(encoding="utf-8")
    assert "<td>Prospecting</td>" in report and "<td>Engaging</td>" in report
