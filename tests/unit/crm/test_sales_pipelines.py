"""The pipelines file: a CRM's funnel as configuration."""

from __future__ import annotations

import pytest
import yaml

from crm import sales_pipelines
from crm.errors import BadInputError
from crm.settings import Settings

TWO_PIPELINES = """
default_pipeline: renewal
pipelines:
  new_business:
    name: New business
    stages: [潜在客户跟踪, {项目投标: 0.3}, 商务洽谈]
    closing: {won: 签订合同, lost: [丢单, 无决定], suspended: 暂停, terminated: 终止}
  renewal:
    stages: [review, {quote: 0.6}]
    closing: {won: renewed, lost: churned}
"""


def test_stages_are_ordered_and_closing_stages_come_after_the_last_open_one():
    pipelines = sales_pipelines.parse(yaml.safe_load(TWO_PIPELINES))
    assert pipelines.default_pipeline == "renewal"
    new = pipelines.pipelines[0]
    assert [(s.name, s.order, s.kind, s.crm_probability, s.next_stage) for s in new.stages] == [
        ("潜在客户跟踪", 1, "open", None, "项目投标"),
        ("项目投标", 2, "open", 0.3, "商务洽谈"),
        ("商务洽谈", 3, "open", None, "签订合同"),
        ("签订合同", 4, "won", None, None),
        ("丢单", 4, "lost", None, None),
        ("无决定", 4, "lost", None, None),
        ("暂停", 4, "suspended", None, None),
        ("终止", 4, "terminated", None, None),
    ]
    assert new.name == "New business"
    assert pipelines.pipelines[1].name == "renewal"  # the id when no name is given
    assert "renewed" in pipelines.stage_values and "签订合同" in pipelines.stage_values
    defaults = {row[0]: row[2] for row in pipelines.rows()}
    assert defaults == {"new_business": False, "renewal": True}


def test_the_built_in_file_is_the_demo_funnel():
    pipelines = sales_pipelines.load(Settings().pipelines_path)
    (sales,) = pipelines.pipelines
    assert [s.name for s in sales.open_stages] == ["lead", "qualified", "proposal", "negotiation"]
    assert pipelines.stage_values[-2:] == ("won", "lost")


def test_a_pipelines_file_in_landing_is_picked_up(crm_home):
    (crm_home / "landing" / "pipelines.yml").write_text(TWO_PIPELINES, encoding="utf-8")
    assert sales_pipelines.load(Settings().pipelines_path).pipeline_ids == (
        "new_business",
        "renewal",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: [a]\n", "expected 'pipelines:'"),
        ("pipelines: {}\n", "declares no pipeline"),
        ("pipelines:\n  p: {stages: [a]}\n", "must say which stage value means won"),
        ("pipelines:\n  p: {stages: [], closing: {won: w}}\n", "needs a list of stages"),
        ("pipelines:\n  p: {stages: [a, {b: 1.5}], closing: {won: w}}\n", "from 0 to 1"),
        ("pipelines:\n  p: {stages: [a, A], closing: {won: w}}\n", r"\['A', 'a'\] more than once"),
        ("pipelines:\n  p: {stages: [a], closing: {won: w, paused: x}}\n", "'paused'"),
        ("pipelines:\n  p: {stages: [a], closing: {won: w}, order: 1}\n", "unknown settings"),
        (
            "default_pipeline: q\npipelines:\n  p: {stages: [a], closing: {won: w}}\n",
            "default_pipeline 'q' is not one of the pipelines",
        ),
        ("pipelines: [\n", "not valid YAML"),
        ("pipelines:\n  p: {stages: [a], closing: {won: []}}\n", "names no won stage value"),
        ("pipelines:\n  p: {stages: [a], closing: {won: w, lost: ''}}\n", "without a name"),
        ("pipelines:\n  p: {stages: [a, yes], closing: {won: w}}\n", "quote yes, no"),
        ("pipelines:\n  p: {stages: [a], closing: {won: {x: 1}}}\n", "is a name, not"),
        (
            "pipelines:\n  Sales: {stages: [a], closing: {won: w}}\n"
            "  sales: {stages: [a], closing: {won: w}}\n",
            "differ other than by case",
        ),
    ],
)
def test_mistakes_in_the_pipelines_file_are_reported(tmp_path, text, message):
    path = tmp_path / "pipelines.yml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        sales_pipelines.load(path)


def test_stage_values_and_pipeline_ids_are_checked_against_the_pipelines_file(crm_home):
    from ingest.load import load_entity
    from tests.conftest import warehouse_query as query

    (crm_home / "landing" / "pipelines.yml").write_text(TWO_PIPELINES, encoding="utf-8")
    (crm_home / "landing" / "opportunities").mkdir()
    (crm_home / "landing" / "opportunities" / "deals.csv").write_text(
        "opportunity_id,pipeline_id,stage\nD1,new_business,项目投标\nD2,RENEWAL,Quote\n"
        "D3,renewal,Closed\nD4,upsell,review\n",
        encoding="utf-8",
    )
    assert load_entity("opportunities").rows_loaded == 2
    assert query(crm_home, "SELECT pipeline_id, stage FROM raw.opportunities ORDER BY 1") == [
        ("new_business", "项目投标"),
        ("renewal", "quote"),  # in the file's spelling
    ]
    assert query(crm_home, "SELECT reason FROM audit.quarantine ORDER BY row_number") == [
        (
            "stage 'Closed' is not one of "
            + ", ".join(sales_pipelines.parse(yaml.safe_load(TWO_PIPELINES)).stage_values),
        ),
        ("pipeline_id 'upsell' is not one of new_business, renewal",),
    ]
