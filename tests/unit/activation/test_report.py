"""The run report page from small inputs: every part is there and user text is escaped."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from activation.report import gains_chart, render


def _model_dir(tmp_path):
    folder = tmp_path / "v1"
    folder.mkdir()
    calibration = {
        "brier": 0.04,
        "brier_training_rates": 0.045,
        "brier_base_rate": 0.05,
        "calibration_error": 0.004,
        "calibration_error_training_rates": 0.02,
    }
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "holdout": {"roc_auc": 0.8, "lift_at_10": 4.2, "base_rate": 0.05},
                "calibration": calibration,
                "ranking": {
                    "against": "logistic_regression",
                    "lift_at_10": {
                        "share": 0.1,
                        "first": {"lift": 4.2, "low": 3.6, "high": 4.8},
                        "second": {"lift": 3.9, "low": 3.3, "high": 4.5},
                        "difference": {"lift": 0.3, "low": -0.1, "high": 0.7},
                    },
                },
            }
        )
    )
    pd.DataFrame(
        {
            "group": range(1, 11),
            "customers": [10] * 10,
            "predicted": [0.9, 0.5, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01, 0.01],
            "adopters": [9, 5, 2, 1, 0, 0, 0, 0, 0, 0],
            "observed": [0.9, 0.5, 0.2, 0.1, 0, 0, 0, 0, 0, 0],
            "observed_low": [0.6, 0.2, 0.05, 0.02, 0, 0, 0, 0, 0, 0],
            "observed_high": [0.98, 0.8, 0.5, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
        }
    ).to_csv(folder / "calibration.csv", index=False)
    rules = [
        {
            "rule_id": "R1",
            "words": "age <= 30 and occupation = <sales>",
            "score": 0.87,
            "support_train": 300,
            "rate_train": 0.9,
            "rate_holdout": 0.88,
            "lift": 18.0,
        }
    ]
    (folder / "rules.json").write_text(json.dumps(rules))
    gains = pd.DataFrame(
        {
            "decile": range(1, 11),
            "cumulative_capture": [0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99, 1.0],
            "lift": [5, 2, 1, 0.5, 0.5, 0.3, 0.2, 0.2, 0.2, 0.1],
        }
    )
    gains.to_csv(folder / "gains.csv", index=False)
    (tmp_path / "champion.json").write_text(
        json.dumps({"version": "v1", "reason": "challenger: the tree. Gate: no champion yet"})
    )
    return folder


def test_the_page_has_rules_gains_list_suppression_diff_and_lift(tmp_path):
    manifest = {
        "release_id": "OFFER-X:2026-06-01:abc",
        "scored_list": 120,
        "suppressed_total": 20,
        "row_count": 100,
        "target": 90,
        "holdout": 10,
        "selection_rule": "expected_value",
        "suppressed": {"opted_out": 5, "cooling_off": 15},
        "diff": {"added": 7, "removed": 3},
        "previous_release_id": None,
        "arbitration": {
            "by_reason": {"excluded": 1, "lost_to_other_offer": 7, "over_channel_capacity": 0},
            "lost_to": {"OFFER-Y": 7},
            "channel": "email",
            "max_offers": 1,
            "window_days": 7,
        },
        "fairness": {
            "gender": [
                {
                    "group": "female",
                    "scored": 60,
                    "selected": 50,
                    "selection_rate": 0.8333,
                    "ratio_to_overall": 1.11,
                    "flagged": False,
                },
                {
                    "group": "<other>",
                    "scored": 60,
                    "selected": 40,
                    "selection_rate": 0.6667,
                    "ratio_to_overall": 0.7407,
                    "flagged": True,
                },
            ]
        },
    }
    lift = pd.DataFrame(
        {
            "offer_product_id": ["OFFER-X"],
            "campaign_id": ["CMP1"],
            "members_target": [900],
            "members_control": [100],
            "adoption_rate_target": [0.07],
            "adoption_rate_control": [0.02],
            "adoption_lift": [0.05],
            "adoption_lift_low": [0.01],
            "adoption_lift_high": [0.08],
            "incremental_revenue": [5000.0],
            "actual_cost": [2000.0],
            "is_paid_back": [True],
        }
    )
    from ml.score import cost_curve

    curve = cost_curve(pd.DataFrame({"score": [0.5, 0.3, 0.2, 0.05] * 30}), 10.0, 2.0, 60)
    curve.insert(0, "offer_id", "OFFER-X")
    page = render(
        date(2026, 6, 1),
        "run-1",
        ["OFFER-X", "OFFER-Y"],
        {"OFFER-X": {"manifest": manifest}},
        {"OFFER-X": _model_dir(tmp_path), "OFFER-Y": None},
        lift,
        curves=curve,
    )
    for marker in (
        'class="rules"',
        'class="chart gains"',
        'class="list-size"',
        'class="suppression"',
        'class="diff"',
        'class="chart lift"',
        'class="campaign-lift"',
        'class="fairness"',
        'class="calibration"',
        'class="ranking"',
        'class="arbitration"',
        'class="chart cost-curve"',
    ):
        assert marker in page, marker
    assert "<td>lost to OFFER-Y</td>" in page
    # the cut: the 60 best of 120 (30 at 0.5, 30 at 0.3): 24 responders, cost 120
    assert "Cut at 60 customers (expected_value): 24.0 expected responders, cost 120" in page
    assert page.count('class="cut"') == 1
    why = page[page.index("Why this model") :]
    assert "a decision tree: challenger: the tree. Gate: no champion yet" in why
    assert "4.20 (3.60-4.80)" in why and "lift of the logistic regression" in why
    calibration = page[page.index("Do the scores hold?") :]
    assert "Calibration error 0.4% (training rates: 2.0%)" in calibration
    assert calibration.count("<tr>") >= 11  # a header and ten tenths
    fairness = page[page.index('class="fairness"') :]
    assert "<td>&lt;other&gt;</td>" in fairness and fairness.count("below 0.8") == 1
    assert "occupation = &lt;sales&gt;" in page  # escaped, not markup
    assert "No champion model" in page  # OFFER-Y
    assert "cooling off" in page and "first release" in page
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_the_gains_line_climbs_to_everyone_at_the_last_decile():
    gains = pd.DataFrame({"decile": [1, 2], "cumulative_capture": [0.6, 1.0], "lift": [1.2, 0.8]})
    svg = gains_chart(gains, width=240, height=140)
    points = svg.split('points="')[1].split('"')[0].split()
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys, reverse=True)  # y grows downwards: the line only climbs
    assert ys[-1] == 10.0  # the top of the plot area: 100% captured


def test_the_funnel_section_shows_each_pipelines_stages_in_order_escaped():
    reach = pd.DataFrame(
        {
            "pipeline_id": ["renewal", "new", "new", "new"],
            "stage": ["review", "<lead>", "bid", "won"],
            "stage_order": [1, 1, 2, 3],
            "stage_kind": ["open", "open", "open", "won"],
            "deals_reached": [5, 40, 20, 8],
            "deals_reached_by_history": [5, 10, 5, 2],
            "reach_rate": [1.0, 1.0, 0.5, 0.2],
            "reached_from_previous_stage": [None, None, 0.5, 0.4],
            "conversion_rate": [0.6, 0.5, 0.4, None],
            "median_days_in_stage": [3.0, 12.5, 7.0, None],
        }
    )
    outcomes = pd.DataFrame(
        {
            "pipeline_id": ["new"],
            "deals": [40],
            "open_deals": [12],
            "win_rate": [0.25],
            "won_amount": [12345.0],
        }
    )
    page = render(date(2026, 6, 1), "r", [], {}, {}, pd.DataFrame(), None, (reach, outcomes))
    funnel = page[page.index('<section id="funnel">') :]
    assert (
        funnel.index("<td>&lt;lead&gt;</td>")
        < funnel.index("<td>bid</td>")
        < funnel.index("<td>won</td>")
    )
    assert funnel.index("<h3>new</h3>") < funnel.index("<h3>renewal</h3>")
    assert "40 deals, 12 open; win rate 25.0%, won 12,345" in funnel
    # one chart per pipeline: a bar per stage, widest for the stage most deals reached
    assert funnel.count('class="chart funnel"') == 2
    assert funnel.count('class="stage-bar"') == 4
    assert "40 deals, 50.0% convert, median 12.5 days" in funnel
    assert "8 deals</text>" in funnel  # won: no rate or days out of it
    assert render(date(2026, 6, 1), "r", [], {}, {}, pd.DataFrame()).count("funnel") == 0


def test_a_scorecard_champion_shows_its_points_table(tmp_path):
    folder = _model_dir(tmp_path)
    (folder / "rules.json").write_text("[]")
    points = [
        {"feature": "age", "bin": "age up to 30", "points": 0, "customers_train": 500},
        {"feature": "age", "bin": "age over 30", "points": 25, "customers_train": 700},
    ]
    (folder / "points.json").write_text(json.dumps(points))
    page = render(date(2026, 6, 1), "run-1", ["OFFER-X"], {}, {"OFFER-X": folder}, pd.DataFrame())
    assert 'class="scorecard"' in page and "age over 30" in page
    assert 'class="rules"' not in page and "a points scorecard" in page


def test_the_campaigns_section_shows_each_verdict_beside_both_returns():
    verdicts = pd.DataFrame(
        {
            "campaign_id": ["CMP1", "CMP2", "CMP3"],
            "offer_product_id": ["OFFER-X", "OFFER-X", None],
            "channel": ["email", "sms", "email"],
            "region": ["North", "National", "South"],
            "actual_cost": [1000.0, 1000.0, 500.0],
            "roi": [7.0, 40.0, 1.0],
            "margin_roi": [2.5, None, None],
            "incremental_roi": [-0.8, 2.0, None],
            "incremental_roi_low": [-1.5, 1.2, None],
            "incremental_roi_high": [-0.1, 9.0, None],
            "verdict": ["gross only", "paid back", "not measurable"],
            "verdict_reason": ["the buyers would <most likely> have bought anyway", "x", "y"],
        }
    )
    page = render(date(2026, 6, 1), "r", [], {}, {}, pd.DataFrame(), verdicts=verdicts)
    section = page[page.index('id="campaigns"') :]
    assert "3 campaigns: 1 gross only, 1 paid back, 1 not measurable" in section
    assert 'class="chart verdicts"' in section and 'class="campaign-verdicts"' in section
    # a gross bar for every campaign with a gross ROI, a dot and whisker for each measured one
    assert section.count('class="gross-roi"') == 3
    assert section.count('class="incremental-roi"') == 2
    assert section.count('class="incremental-interval"') == 2
    # 700%, 4000% and 900% run past the 500% axis: marked, not drawn off the chart
    assert section.count('class="clipped"') == 3
    assert "<td>700.0%</td>" not in section  # numbers are right-aligned cells
    assert '<td class="num">700.0%</td>' in section
    assert '<td class="num">-80.0% (-150.0% to -10.0%)</td>' in section
    assert "&lt;most likely&gt;" in section
    # no verdicts mart (an older warehouse): no section
    assert 'id="campaigns"' not in render(date(2026, 6, 1), "r", [], {}, {}, pd.DataFrame())


def test_the_forecast_section_stacks_each_period_by_category():
    rows = [
        ("month", "2026-06-01", "closed", 3, 300.0, 300.0),
        ("month", "2026-06-01", "commit", 2, 1000.0, 800.0),
        ("month", "2026-07-01", "pipeline", 4, 2000.0, 400.0),
        ("month", None, "pipeline", 1, 50.0, None),
        ("quarter", "2026-04-01", "commit", 2, 1000.0, 800.0),
        ("quarter", "2026-04-01", "closed", 3, 300.0, 300.0),
        ("quarter", "2026-07-01", "pipeline", 4, 2000.0, 400.0),
    ]
    forecast = pd.DataFrame(
        rows,
        columns=[
            "period_type",
            "period_start",
            "forecast_category",
            "deals",
            "amount",
            "expected_amount",
        ],
    )
    forecast["period_start"] = pd.to_datetime(forecast["period_start"])
    page = render(date(2026, 6, 15), "r", [], {}, {}, pd.DataFrame(), forecast=forecast)
    section = page[page.index('id="forecast"') :]
    assert section.count('class="chart forecast"') == 1
    # two dated months: closed and commit stacked in June, pipeline in July
    assert section.count('class="forecast-closed"') == 1
    assert section.count('class="forecast-commit"') == 1
    assert section.count('class="forecast-pipeline"') == 1
    assert ">1,100</text>" in section and ">400</text>" in section  # expected per month
    assert "Jun 2026" in section and "Jul 2026" in section
    table = section[section.index('class="forecast"') :]
    assert table.index("2026-04-01") < table.index("2026-07-01")
    assert 'id="forecast"' not in render(date(2026, 6, 15), "r", [], {}, {}, pd.DataFrame())
