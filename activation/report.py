"""The run report: one self-contained HTML page per run, readable without a server.

It shows the sales funnel of each pipeline (how far deals got, conversion, days in stage,
win rate), the forecast by close period and category, every campaign's verdict (gross and
margin ROI beside the incremental ROI from its holdout), then per offer the champion's
segment rules, the gains chart of its holdout, the list that went out (size, target and
holdout, suppression counts per reason, the diff against the previous release), and the
lift of the offer's finished campaigns. Charts are inline SVG drawn here, so the page
needs no script, font or file from anywhere else.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from crm.html import STYLE
from crm.html import escape as _e
from crm.html import num as _num
from crm.html import pct as _pct
from crm.html import table as _table


def gains_chart(gains: pd.DataFrame, width: int = 420, height: int = 240) -> str:
    """Cumulative capture by decile against the diagonal of a random list, with the
    decile's lift as bars."""
    left, bottom, top, right = 40, 30, 10, 10
    w, h = width - left - right, height - top - bottom
    n = len(gains)
    points = [(left, top + h)] + [
        (left + w * (i + 1) / n, top + h - h * float(c))
        for i, c in enumerate(gains["cumulative_capture"])
    ]
    max_lift = max(float(gains["lift"].max()), 1.0)
    bars = "".join(
        f'<rect class="lift-bar" x="{left + w * i / n + 2:.1f}" '
        f'y="{top + h - h * 0.5 * float(lift) / max_lift:.1f}" width="{w / n - 4:.1f}" '
        f'height="{h * 0.5 * float(lift) / max_lift:.1f}" fill="#c9d6ea"/>'
        for i, lift in enumerate(gains["lift"])
    )
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    ticks = "".join(
        f'<text x="{left + w * (i + 0.5) / n:.1f}" y="{top + h + 14}" text-anchor="middle">'
        f"{int(d)}</text>"
        for i, d in enumerate(gains["decile"])
    )
    return (
        f'<svg class="chart gains" width="{width}" height="{height}" role="img" '
        f'aria-label="gains chart" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafbfd" stroke="#d8dee9"/>'
        f"{bars}"
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top}" stroke="#9aa5b5" '
        f'stroke-dasharray="4 3"/>'
        f'<polyline class="capture" points="{line}" fill="none" stroke="#2b6cb0" '
        f'stroke-width="2.5"/>'
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end">100%</text>'
        f'<text x="{left - 6}" y="{top + h}" text-anchor="end">0</text>'
        f"{ticks}"
        f'<text x="{left + w / 2}" y="{height - 2}" text-anchor="middle">decile of the '
        f"holdout ranking (line: adopters captured; bars: lift)</text></svg>"
    )


def lift_chart(lift: pd.DataFrame, width: int = 420) -> str:
    """Adoption rate of target and control for each finished campaign, with the interval of
    the difference as a whisker on the target bar."""
    rows = lift.head(12)
    bar_h, gap, left = 12, 10, 150
    height = max(len(rows), 1) * (2 * bar_h + gap) + 30
    scale = max(float(rows[["adoption_rate_target", "adoption_rate_control"]].max().max()), 1e-9)
    scale = max(scale, float((rows["adoption_rate_control"] + rows["adoption_lift_high"]).max()))
    w = width - left - 20
    parts = []
    for i, r in enumerate(rows.itertuples()):
        y = 10 + i * (2 * bar_h + gap)
        t = w * r.adoption_rate_target / scale
        c = w * r.adoption_rate_control / scale
        lo = w * (r.adoption_rate_control + r.adoption_lift_low) / scale
        hi = w * (r.adoption_rate_control + r.adoption_lift_high) / scale
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_h + 2}" text-anchor="end">'
            f"{_e(r.campaign_id)}</text>"
            f'<rect class="target-bar" x="{left}" y="{y}" width="{t:.1f}" height="{bar_h}" '
            f'fill="#2b6cb0"/>'
            f'<rect class="control-bar" x="{left}" y="{y + bar_h}" width="{c:.1f}" '
            f'height="{bar_h}" fill="#a0aec0"/>'
            f'<line x1="{left + max(lo, 0):.1f}" y1="{y + bar_h / 2}" x2="{left + hi:.1f}" '
            f'y2="{y + bar_h / 2}" stroke="#1d2430" stroke-width="1.5"/>'
        )
    legend = (
        f'<text x="{left}" y="{height - 6}">blue: target adoption, grey: control; whisker: '
        f"95% interval of the lift</text>"
    )
    return (
        f'<svg class="chart lift" width="{width}" height="{height}" role="img" '
        f'aria-label="campaign lift chart" xmlns="http://www.w3.org/2000/svg">'
        f"{''.join(parts)}{legend}</svg>"
    )


#: Campaigns drawn in the verdict chart (the latest first); the table lists every one.
VERDICT_CHART_ROWS = 24


def verdict_chart(
    verdicts: pd.DataFrame, width: int = 560, floor: float = -2.0, ceiling: float = 5.0
) -> str:
    """Per measured campaign, gross ROI (grey bar) beside incremental ROI from the holdout
    (blue dot, whisker: its 95% interval), on one axis with break-even at 0. ROIs beyond
    `floor` (-200%) or `ceiling` (500%) are drawn at the edge and marked with a triangle;
    the table has them."""
    rows = verdicts.head(VERDICT_CHART_ROWS)
    bar_h, gap, left, right = 10, 12, 90, 20
    height = max(len(rows), 1) * (2 * bar_h + gap) + 40
    values = rows[["roi", "incremental_roi_low", "incremental_roi_high"]].astype(float)
    low = max(min(float(values.min().min()), -1.0), floor)
    high = min(max(float(values.max().max()), 1.0), ceiling)
    w = width - left - right

    def x(v) -> float:
        v = min(max(float(v), low), high)
        return left + w * (v - low) / (high - low)

    parts = [
        f'<line class="break-even" x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" '
        f'y2="{height - 30}" stroke="#1d2430" stroke-dasharray="3,3"/>'
    ]
    for i, r in enumerate(rows.itertuples()):
        y = 8 + i * (2 * bar_h + gap)
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_h + 3}" text-anchor="end">{_e(r.campaign_id)}</text>'
        )
        if pd.notna(r.roi):
            a, b = sorted((x(0), x(r.roi)))
            parts.append(
                f'<rect class="gross-roi" x="{a:.1f}" y="{y}" width="{max(b - a, 1):.1f}" '
                f'height="{bar_h}" fill="#a0aec0"/>'
            )
            if r.roi > high:
                parts.append(_clip_mark(x(high), y + bar_h / 2))
            elif r.roi < low:
                parts.append(_clip_mark(x(low), y + bar_h / 2, left_side=True))
        if pd.notna(r.incremental_roi):
            cy = y + bar_h * 1.5
            if pd.notna(r.incremental_roi_low) and pd.notna(r.incremental_roi_high):
                parts.append(
                    f'<line class="incremental-interval" x1="{x(r.incremental_roi_low):.1f}" '
                    f'y1="{cy}" x2="{x(r.incremental_roi_high):.1f}" y2="{cy}" '
                    f'stroke="#2b6cb0" stroke-width="1.5"/>'
                )
            parts.append(
                f'<circle class="incremental-roi" cx="{x(r.incremental_roi):.1f}" cy="{cy}" '
                f'r="4" fill="#2b6cb0"/>'
            )
            if r.incremental_roi_high > high:
                parts.append(_clip_mark(x(high), cy))
            if r.incremental_roi_low < low:
                parts.append(_clip_mark(x(low), cy, left_side=True))
    axis = (
        f'<text x="{x(0):.1f}" y="{height - 18}" text-anchor="middle">break-even</text>'
        f'<text x="{left}" y="{height - 18}">{_pct(low)}</text>'
        f'<text x="{width - right}" y="{height - 18}" text-anchor="end">{_pct(high)}</text>'
        f'<text x="{left}" y="{height - 4}">grey: gross ROI (attributed revenue); blue: '
        f"incremental ROI from the holdout, whisker its 95% interval</text>"
    )
    return (
        f'<svg class="chart verdicts" width="{width}" height="{height}" role="img" '
        f'aria-label="campaign verdict chart" xmlns="http://www.w3.org/2000/svg">'
        f"{''.join(parts)}{axis}</svg>"
    )


def _clip_mark(x: float, y: float, left_side: bool = False) -> str:
    """A triangle at the chart's edge, pointing out: the value goes on beyond it."""
    tip = x - 6 if left_side else x + 6
    return (
        f'<polygon class="clipped" points="{x:.1f},{y - 4} {tip:.1f},{y} {x:.1f},{y + 4}" '
        f'fill="#1d2430"/>'
    )


def funnel_chart(stages: pd.DataFrame, width: int = 640) -> str:
    """One pipeline's stages top to bottom: a bar of the deals that reached each, labelled
    with the conversion out of the stage and the median days spent in it."""
    bar_h, gap, left, right = 18, 8, 110, 250
    height = len(stages) * (bar_h + gap) + 24
    top = max(float(stages["deals_reached"].max()), 1.0)
    w = width - left - right
    parts = []
    for i, r in enumerate(stages.to_dict("records")):
        y = 6 + i * (bar_h + gap)
        size = w * float(r["deals_reached"]) / top
        facts = [f"{_num(r['deals_reached'])} deals"]
        if pd.notna(r.get("conversion_rate")):
            facts.append(f"{_pct(r['conversion_rate'])} convert")
        if pd.notna(r.get("median_days_in_stage")):
            facts.append(f"median {_num(r['median_days_in_stage'], 1)} days")
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_h - 5}" text-anchor="end">{_e(r["stage"])}</text>'
            f'<rect class="stage-bar" x="{left}" y="{y}" width="{max(size, 1):.1f}" '
            f'height="{bar_h}" fill="#2b6cb0"/>'
            f'<text x="{left + size + 6:.1f}" y="{y + bar_h - 5}">{_e(", ".join(facts))}</text>'
        )
    return (
        f'<svg class="chart funnel" width="{width}" height="{height}" role="img" '
        f'aria-label="sales funnel chart" xmlns="http://www.w3.org/2000/svg">'
        f"{''.join(parts)}</svg>"
    )


#: Forecast categories from the surest to the least sure, and how each is drawn.
FORECAST_CATEGORIES = {
    "closed": "#22543d",
    "commit": "#2b6cb0",
    "best case": "#63b3ed",
    "pipeline": "#c9d6ea",
}


def forecast_chart(forecast: pd.DataFrame, width: int = 560, height: int = 240) -> str:
    """The amount of each close period stacked by forecast category (closed at the bottom,
    pipeline at the top), with the period's expected amount written above its bar."""
    forecast = forecast[forecast["period_start"].notna()]
    periods = sorted(forecast["period_start"].unique())[:8]
    left, bottom, top_pad = 60, 44, 18
    h = height - bottom - top_pad
    totals = forecast.groupby("period_start")["amount"].sum().astype(float)
    top = max(float(totals.max()) if len(totals) else 0.0, 1.0)
    slot = (width - left - 10) / max(len(periods), 1)
    parts = []
    for i, period in enumerate(periods):
        rows = forecast[forecast["period_start"] == period].set_index("forecast_category")
        x = left + i * slot + slot * 0.15
        y = top_pad + h
        for category, colour in FORECAST_CATEGORIES.items():
            if category not in rows.index:
                continue
            size = h * float(rows.loc[category, "amount"]) / top
            y -= size
            parts.append(
                f'<rect class="forecast-{category.replace(" ", "-")}" x="{x:.1f}" '
                f'y="{y:.1f}" width="{slot * 0.7:.1f}" height="{size:.1f}" fill="{colour}"/>'
            )
        expected = float(rows["expected_amount"].astype(float).sum())
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
            f"{_num(expected)}</text>"
            f'<text x="{x + slot * 0.35:.1f}" y="{top_pad + h + 14}" text-anchor="middle">'
            f"{_e(pd.Timestamp(period).strftime('%b %Y'))}</text>"
        )
    legend = " ".join(
        f'<tspan fill="{colour}">\u25a0</tspan> {_e(category)}'
        for category, colour in FORECAST_CATEGORIES.items()
    )
    return (
        f'<svg class="chart forecast" width="{width}" height="{height}" role="img" '
        f'aria-label="forecast by category and period" xmlns="http://www.w3.org/2000/svg">'
        f"{''.join(parts)}"
        f'<text x="{left}" y="{height - 18}">amount by category; above each bar the '
        f"expected amount</text>"
        f'<text x="{left}" y="{height - 4}">{legend}</text></svg>'
    )


def cost_curve_chart(curve: pd.DataFrame, width: int = 420, height: int = 220) -> str:
    """Expected return and contact cost over the list's size (best scores first), with
    the cut as a vertical line: where the return stops growing is where value stops."""
    left, bottom, top, right = 56, 30, 10, 10
    w, h = width - left - right, height - top - bottom
    sizes = curve["list_size"].astype(float)
    has_return = bool(curve["expected_return"].notna().any())
    values = curve[["expected_return", "cost"]].astype(float)
    low, high = min(float(values.min().min()), 0.0), max(float(values.max().max()), 1.0)
    span_x = max(float(sizes.max()), 1.0)

    def x(v: float) -> float:
        return left + w * v / span_x

    def y(v: float) -> float:
        return top + h - h * (v - low) / (high - low)

    def line(column: str, cls: str, colour: str) -> str:
        points = " ".join(
            f"{x(a):.1f},{y(b):.1f}"
            for a, b in zip(sizes, curve[column].astype(float), strict=True)
        )
        return (
            f'<polyline class="{cls}" points="{points}" fill="none" stroke="{colour}" '
            f'stroke-width="2"/>'
        )

    cut = curve[curve["is_cut"]]
    marker = ""
    if len(cut):
        cx = x(float(cut["list_size"].iloc[0]))
        marker = (
            f'<line class="cut" x1="{cx:.1f}" y1="{top}" x2="{cx:.1f}" y2="{top + h}" '
            f'stroke="#c53030" stroke-dasharray="4 3"/>'
        )
    return (
        f'<svg class="chart cost-curve" width="{width}" height="{height}" role="img" '
        f'aria-label="cost curve" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafbfd" stroke="#d8dee9"/>'
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{left + w}" y2="{y(0):.1f}" stroke="#9aa5b5"/>'
        # an offer without a margin has a cost but no expected return to draw
        f"{line('expected_return', 'return', '#2b6cb0') if has_return else ''}"
        f"{line('cost', 'cost', '#a0aec0')}"
        f"{marker}"
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end">{_num(high)}</text>'
        f'<text x="{left - 6}" y="{top + h}" text-anchor="end">{_num(low)}</text>'
        f'<text x="{left + w}" y="{top + h + 14}" text-anchor="end">{_num(span_x)}</text>'
        f'<text x="{left + w / 2}" y="{height - 2}" text-anchor="middle">list size '
        f"(blue: return, grey: cost, red: the cut)</text></svg>"
    )


def _cost_part(curve: pd.DataFrame | None, selection: str | None) -> str:
    """The list's expected responders, cost and return over its size, and the cut."""
    if curve is None or curve.empty:
        return ""
    cut = curve[curve["is_cut"]]
    at_cut = cut.iloc[0] if len(cut) else None
    summary = ""
    if at_cut is not None:
        summary = (
            f"<p>Cut at {_num(at_cut['list_size'])} customers ({_e(selection or '')}): "
            f"{_num(at_cut['expected_responders'], 1)} expected responders, cost "
            f"{_num(at_cut['cost'])}, expected return {_num(at_cut['expected_return'])}. "
            f"Everyone scored: {_num(curve['list_size'].max())} customers, "
            f"{_num(curve['expected_responders'].max(), 1)} responders, return "
            f"{_num(curve['expected_return'].iloc[-1])}.</p>"
        )
    return f"<h3>Size, cost and return</h3>{summary}{cost_curve_chart(curve)}"


def _holdout_rate(rule: dict) -> str:
    """The holdout adoption rate with its interval (rules of older models have none)."""
    low, high = rule.get("rate_holdout_low"), rule.get("rate_holdout_high")
    if low is None or high is None:
        return _pct(rule.get("rate_holdout"))
    return f"{_pct(rule['rate_holdout'])} ({_pct(low)}-{_pct(high)})"


def _offer_section(
    offer: str,
    published: dict,
    model_dir: Path | None,
    lift: pd.DataFrame,
    curve: pd.DataFrame | None = None,
) -> str:
    parts = [f'<section class="offer" id="{_e(offer)}"><h2>{_e(offer)}</h2>']
    if model_dir is not None:
        metrics = json.loads((model_dir / "metrics.json").read_text())["holdout"]
        rules = json.loads((model_dir / "rules.json").read_text())
        gains = pd.read_csv(model_dir / "gains.csv")
        parts.append(
            f'<p class="muted">model {_e(model_dir.name)}: holdout ROC AUC '
            f"{metrics['roc_auc']:.3f}, lift in the top 10% {metrics['lift_at_10']:.2f}, "
            f"base rate {_pct(metrics['base_rate'])}</p>"
        )
        parts.append(_ranking_part(model_dir))
        parts.append('<div class="grid"><div>')
        if (model_dir / "points.json").exists():
            parts.append(_points_part(json.loads((model_dir / "points.json").read_text())))
        else:
            parts.append("<h3>Segment rules</h3>")
        parts.append(
            _table(
                [
                    "rule",
                    "segment",
                    "score",
                    "customers",
                    "adopt (train)",
                    "adopt (holdout, 95% interval)",
                    "lift (holdout)",
                ],
                [
                    [
                        r["rule_id"],
                        r["words"],
                        _pct(r.get("score")),
                        _num(r["support_train"]),
                        _pct(r["rate_train"]),
                        _holdout_rate(r),
                        _num(r["lift"], 2),
                    ]
                    for r in rules[:10]
                ],
                numeric={2, 3, 4, 5, 6},
                cls="rules",
            )
            if rules
            else ""
        )
        parts.append(f"</div><div><h3>Gains on the holdout</h3>{gains_chart(gains)}</div></div>")
        parts.append(_calibration_part(model_dir))
    else:
        parts.append('<p class="muted">No champion model: nothing scored.</p>')
    manifest = (published or {}).get("manifest")
    if manifest:
        parts.append("<h3>The list</h3>")
        suppressed = manifest.get("suppressed", {})
        parts.append(
            _table(
                ["scored", "suppressed", "released", "target", "holdout", "selection"],
                [
                    [
                        _num(manifest["scored_list"]),
                        _num(manifest["suppressed_total"]),
                        _num(manifest["row_count"]),
                        _num(manifest["target"]),
                        _num(manifest["holdout"]),
                        manifest.get("selection_rule"),
                    ]
                ],
                numeric={0, 1, 2, 3, 4},
                cls="list-size",
            )
        )
        parts.append('<div class="grid"><div><h3>Suppressed, by reason</h3>')
        parts.append(
            _table(
                ["reason", "customers"],
                [[k.replace("_", " "), _num(v)] for k, v in suppressed.items()],
                numeric={1},
                cls="suppression",
            )
        )
        diff = manifest.get("diff", {})
        parts.append(
            f"</div><div><h3>Against the previous release</h3>"
            f'<p class="muted">{_e(manifest.get("previous_release_id") or "first release")}</p>'
        )
        parts.append(
            _table(
                ["change", "customers"],
                [[k.replace("_", " "), _num(v)] for k, v in diff.items()],
                numeric={1},
                cls="diff",
            )
        )
        parts.append(f'</div></div><p class="muted">release {_e(manifest["release_id"])}</p>')
        parts.append(_arbitration_part(manifest.get("arbitration") or {}))
        parts.append(_fairness_part(manifest.get("fairness") or {}))
    if curve is not None and len(curve):
        parts.append(_cost_part(curve, (manifest or {}).get("selection_rule")))
    finished = lift[lift["offer_product_id"] == offer] if len(lift) else lift
    if len(finished):
        parts.append("<h3>Finished campaigns: what they changed</h3>")
        parts.append(lift_chart(finished))
        parts.append(
            _table(
                [
                    "campaign",
                    "target",
                    "control",
                    "adoption target",
                    "adoption control",
                    "lift (95% interval)",
                    "incremental revenue",
                    "cost",
                    "verdict",
                ],
                [
                    [
                        r.campaign_id,
                        _num(r.members_target),
                        _num(r.members_control),
                        _pct(r.adoption_rate_target),
                        _pct(r.adoption_rate_control),
                        f"{_pct(r.adoption_lift)} ({_pct(r.adoption_lift_low)} to "
                        f"{_pct(r.adoption_lift_high)})",
                        _num(r.incremental_revenue),
                        _num(r.actual_cost),
                        getattr(r, "verdict", None)
                        or ("covers the cost" if r.is_paid_back else "does not cover the cost"),
                    ]
                    for r in finished.itertuples()
                ],
                numeric={1, 2, 3, 4, 6, 7},
                cls="campaign-lift",
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _lift_cell(compared: dict, side: str) -> str:
    found = compared.get(side)
    if not found:
        return ""
    if "low" not in found:
        return _num(found["lift"], 2)
    return f"{_num(found['lift'], 2)} ({_num(found['low'], 2)}-{_num(found['high'], 2)})"


def _ranking_part(model_dir: Path) -> str:
    """Why this model is the champion: the gate's reason, and its ranking at the top 10%
    and 20% of the holdout against what it was compared with (a tree with the logistic
    baseline, a scorecard with the tree), with 95% intervals."""
    champion = model_dir.parent / "champion.json"
    reason = json.loads(champion.read_text()).get("reason") if champion.exists() else None
    ranking = json.loads((model_dir / "metrics.json").read_text()).get("ranking") or {}
    parts = [
        '<h3>Why this model</h3><p class="muted">'
        + ("a points scorecard" if (model_dir / "points.json").exists() else "a decision tree")
        + (f": {_e(reason)}" if reason else "")
        + "</p>"
    ]
    rows = []
    for top in ("lift_at_10", "lift_at_20"):
        compared = ranking.get(top)
        if compared and "difference" in compared:
            rows.append(
                [
                    f"top {round(compared['share'] * 100)}%",
                    _lift_cell(compared, "first"),
                    _lift_cell(compared, "second"),
                    _lift_cell(compared, "difference"),
                ]
            )
    if rows:
        other = str(ranking.get("against", "")).replace("_", " ")
        parts.append(
            _table(
                ["holdout", "lift (95% interval)", f"lift of the {other}", "difference"],
                rows,
                numeric={1, 2, 3},
                cls="ranking",
            )
        )
    return "".join(parts)


def _points_part(points: list[dict]) -> str:
    """A scorecard champion's table: each feature's bins and their points."""
    return "<h3>Scorecard: add the points of each feature's bin</h3>" + _table(
        ["feature", "bin", "points", "customers (train)"],
        [[p["feature"], p["bin"], _num(p["points"]), _num(p["customers_train"])] for p in points],
        numeric={2, 3},
        cls="scorecard",
    )


def _calibration_part(model_dir: Path) -> str:
    """Whether a score means what it says: predicted against observed adoption on the
    holdout by tenth of the ranking (out-of-fold scores, ml/calibration.py), and the Brier
    score beside the tree's uncalibrated training rates and the base rate."""
    path = model_dir / "calibration.csv"
    summary = json.loads((model_dir / "metrics.json").read_text()).get("calibration")
    if not path.exists() or not summary:
        return ""  # a model saved before scores were calibrated
    table = pd.read_csv(path)
    return (
        '<h3>Do the scores hold?</h3><p class="muted">Holdout customers by tenth of the '
        "ranking: the mean score against the share that adopted (each scored by a calibration "
        "fitted on the other folds). Calibration error "
        f"{_pct(summary['calibration_error'])} (training rates: "
        f"{_pct(summary['calibration_error_training_rates'])}); Brier score "
        f"{summary['brier']:.4f} (training rates {summary['brier_training_rates']:.4f}, "
        f"base rate {summary['brier_base_rate']:.4f}).</p>"
        + _table(
            ["tenth", "customers", "score", "adopted", "95% interval"],
            [
                [
                    int(r["group"]),
                    _num(r["customers"]),
                    _pct(r["predicted"]),
                    _pct(r["observed"]),
                    f"{_pct(r['observed_low'])}-{_pct(r['observed_high'])}",
                ]
                for r in table.to_dict("records")
            ],
            numeric={1, 2, 3},
            cls="calibration",
        )
    )


def _arbitration_part(arbitration: dict) -> str:
    """What the contact policy took from the list (activation/arbitration.py): customers
    excluded, lost to another offer (and to which), over the channel's daily capacity."""
    if not arbitration:
        return ""
    by_reason = arbitration.get("by_reason", {})
    rows = [[k.replace("_", " "), _num(v)] for k, v in by_reason.items()]
    rows += [[f"lost to {o}", _num(v)] for o, v in arbitration.get("lost_to", {}).items()]
    return (
        f'<h3>The contact policy</h3><p class="muted">channel '
        f"{_e(arbitration.get('channel') or '')}; at most {_num(arbitration.get('max_offers'))} "
        f"offer(s) per customer in {_num(arbitration.get('window_days'))} days</p>"
        + _table(["taken off the list", "customers"], rows, numeric={1}, cls="arbitration")
    )


def _fairness_part(fairness: dict) -> str:
    """Selection rate per group of each protected attribute; a ratio to the overall rate
    below the four-fifths line is flagged (activation/fairness.py)."""
    if not fairness:
        return ""
    parts = [
        '<h3>Selection rate by group</h3><p class="muted">Customers to contact per '
        "customer scored, by protected attribute (never a model feature); a group below "
        "0.8 times the overall rate is flagged. Reported, not enforced.</p>"
    ]
    for attribute, groups in fairness.items():
        parts.append(
            _table(
                [attribute.replace("_", " "), "scored", "selected", "rate", "ratio", ""],
                [
                    [
                        g["group"],
                        _num(g["scored"]),
                        _num(g["selected"]),
                        _pct(g["selection_rate"]),
                        _num(g["ratio_to_overall"], 2),
                        "below 0.8" if g["flagged"] else "",
                    ]
                    for g in groups
                ],
                numeric={1, 2, 3, 4},
                cls="fairness",
            )
        )
    return "".join(parts)


def _forecast_section(forecast: pd.DataFrame | None) -> str:
    """The forecast by close month (chart) and quarter (table), by category
    (fct_forecast_by_period, dimension all)."""
    if forecast is None or forecast.empty:
        return ""
    months = forecast[forecast["period_type"] == "month"]
    quarters = forecast[forecast["period_type"] == "quarter"].sort_values(
        ["period_start", "forecast_category"], na_position="last"
    )
    rows = [
        [
            "no close date"
            if pd.isna(r["period_start"])
            else pd.Timestamp(r["period_start"]).strftime("%Y-%m-%d"),
            r["forecast_category"],
            _num(r["deals"]),
            _num(r["amount"]),
            _num(r["expected_amount"]),
        ]
        for r in quarters.to_dict("records")
    ]
    return (
        '<section id="forecast"><h2>Forecast</h2>'
        "<p>Open deals by the month they are expected to close, by category: commit, best "
        "case and pipeline by win probability (measured stage rates; a stalled deal at the "
        "conversion measured on deals that stalled in its stage before), and what was won "
        "so far this period (closed).</p>"
        + forecast_chart(months)
        + _table(
            ["quarter", "category", "deals", "amount", "expected amount"],
            rows,
            numeric={2, 3, 4},
            cls="forecast",
        )
        + "</section>"
    )


def _funnel_section(reach: pd.DataFrame | None, outcomes: pd.DataFrame | None) -> str:
    """Per sales pipeline: how many deals reached each stage (fct_stage_reach, with the
    conversion out of the stage and its median days), and the pipeline's win rate and won
    amount (fct_deal_outcomes, dimension all)."""
    if reach is None or reach.empty:
        return ""
    parts = ['<section id="funnel"><h2>Sales funnel</h2>']
    overall = {} if outcomes is None else {r["pipeline_id"]: r for r in outcomes.to_dict("records")}
    for pipeline_id, stages in reach.sort_values(["pipeline_id", "stage_order"]).groupby(
        "pipeline_id", sort=True
    ):
        summary = overall.get(pipeline_id)
        parts.append(f"<h3>{_e(pipeline_id)}</h3>")
        if summary is not None:
            parts.append(
                f"<p>{_num(summary['deals'])} deals, {_num(summary['open_deals'])} open; "
                f"win rate {_pct(summary['win_rate'])}, won {_num(summary['won_amount'])}</p>"
            )
        parts.append(funnel_chart(stages))
        parts.append(
            _table(
                [
                    "stage",
                    "deals reached",
                    "of them by history",
                    "share of deals",
                    "from the stage before",
                ],
                [
                    [
                        r["stage"],
                        _num(r["deals_reached"]),
                        _num(r["deals_reached_by_history"]),
                        _pct(r["reach_rate"]),
                        _pct(r["reached_from_previous_stage"]),
                    ]
                    for r in stages.to_dict("records")
                ],
                numeric={1, 2, 3, 4},
                cls="funnel",
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _campaigns_section(verdicts: pd.DataFrame | None) -> str:
    """Every campaign that has started, with one verdict (fct_campaign_verdicts): the gross
    and margin ROI beside the incremental ROI from the holdout, and the reason."""
    if verdicts is None or verdicts.empty:
        return ""
    # the chart: campaigns whose figures are final (not those still in their lift window)
    measured = verdicts[
        ~verdicts["verdict"].isin(["not started", "too early"])
        & (verdicts["roi"].notna() | verdicts["incremental_roi"].notna())
    ]
    counts = verdicts["verdict"].value_counts()
    summary = ", ".join(f"{n} {_e(v)}" for v, n in counts.items())
    parts = [
        '<section id="campaigns"><h2>Campaigns: the verdict</h2>',
        f"<p>{_num(len(verdicts))} campaigns: {summary}. A campaign is paid back only when "
        "the lower end of its incremental revenue's 95% interval, measured against its "
        "holdout, exceeds its cost; gross ROI also credits sales that would have happened "
        "anyway.</p>",
    ]
    if len(measured):
        parts.append(verdict_chart(measured))
        if len(measured) > VERDICT_CHART_ROWS:
            parts.append(
                f'<p class="muted">The chart shows the {VERDICT_CHART_ROWS} latest of '
                f"{len(measured)} measured campaigns; the table has them all.</p>"
            )
    parts.append(
        _table(
            [
                "campaign",
                "offer",
                "channel",
                "region",
                "cost",
                "gross ROI",
                "margin ROI",
                "incremental ROI (95% interval)",
                "verdict",
                "why",
            ],
            [
                [
                    r.campaign_id,
                    r.offer_product_id,
                    r.channel,
                    r.region,
                    _num(r.actual_cost),
                    _pct(r.roi),
                    _pct(r.margin_roi),
                    ""
                    if pd.isna(r.incremental_roi)
                    else f"{_pct(r.incremental_roi)} ({_pct(r.incremental_roi_low)} to "
                    f"{_pct(r.incremental_roi_high)})",
                    r.verdict,
                    r.verdict_reason,
                ]
                for r in verdicts.itertuples()
            ],
            numeric={4, 5, 6, 7},
            cls="campaign-verdicts",
        )
    )
    parts.append("</section>")
    return "".join(parts)


def render(
    as_of: date,
    run_id: str | None,
    offers: list[str],
    published: dict,
    model_dirs: dict[str, Path | None],
    lift: pd.DataFrame,
    validation: dict | None = None,
    funnel: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    curves: pd.DataFrame | None = None,
    verdicts: pd.DataFrame | None = None,
    forecast: pd.DataFrame | None = None,
) -> str:
    """The page as a string (pure: everything it shows is passed in). `funnel` is
    (fct_stage_reach, fct_deal_outcomes' overall rows); `curves` the date's ml.list_curves;
    `verdicts` fct_campaign_verdicts' started campaigns; `forecast` fct_forecast_by_period's
    overall rows."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = "".join(
        _offer_section(
            o,
            published.get(o, {}),
            model_dirs.get(o),
            lift,
            None if curves is None or curves.empty else curves[curves["offer_id"] == o],
        )
        for o in offers
    )
    toc = " · ".join(f'<a href="#{_e(o)}">{_e(o)}</a>' for o in offers)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>crm-analytics run {_e(as_of)}</title><style>{STYLE}</style></head><body>"
        f"<h1>crm-analytics: the run for {_e(as_of)}</h1>"
        f'<p class="muted">run {_e(run_id)} · generated {generated} · offers: {toc}</p>'
        f"{_funnel_section(*(funnel or (None, None)))}"
        f"{_forecast_section(forecast)}"
        f"{_campaigns_section(verdicts)}"
        f"{sections}{_validation_section(validation)}</body></html>"
    )


def _validation_section(validation: dict | None) -> str:
    """The audience checkpoint's verdict, its warnings, and a link to every result."""
    if not validation:
        return ""
    page = validation.get("page")
    link = f' <a href="../validation/{_e(Path(page).name)}">every result</a>' if page else ""
    warnings = "".join(f"<li>{_e(w)}</li>" for w in validation.get("warnings", []))
    return (
        '<section id="data-quality"><h2>Data quality</h2>'
        f"<p>The audience checkpoint: {validation['passed']} of "
        f"{validation['expectations']} expectations met on {validation['suites']} "
        f"release(s).{link}</p>" + (f"<ul>{warnings}</ul>" if warnings else "") + "</section>"
    )


def write_report(
    as_of: date, run_id: str | None, published: dict, validation: dict | None = None, settings=None
) -> Path:
    """Gather what the page shows from the registry and the warehouse and write it to
    `reports/runs/<as-of>_<run id>.html`, then copy it to `reports/last_run.html`."""
    from crm.files import atomic_write, safe_name
    from crm.settings import get_settings
    from crm.warehouse import session, table_exists
    from ml.registry import Registry

    settings = settings or get_settings()
    registry = Registry(settings.models)
    with session(read_only=True, settings=settings) as con:
        from ml import features

        offers = features.offers(con)
        has_verdicts = table_exists(con, "marts", "fct_campaign_verdicts")
        lift = (
            con.execute(
                "SELECT l.*"
                + (", v.verdict" if has_verdicts else "")
                + " FROM marts.fct_campaign_lift AS l"
                + (
                    " LEFT JOIN marts.fct_campaign_verdicts AS v USING (campaign_id)"
                    if has_verdicts
                    else ""
                )
                + " WHERE l.is_window_closed ORDER BY l.actual_start DESC"
            ).df()
            if table_exists(con, "marts", "fct_campaign_lift")
            else pd.DataFrame(columns=["offer_product_id"])
        )
        forecast = (
            con.execute(
                "SELECT * FROM marts.fct_forecast_by_period WHERE dimension = 'all' "
                "ORDER BY period_type, period_start"
            ).df()
            if table_exists(con, "marts", "fct_forecast_by_period")
            else None
        )
        verdicts = (
            con.execute(
                "SELECT * FROM marts.fct_campaign_verdicts WHERE actual_start IS NOT NULL "
                "ORDER BY actual_start DESC, campaign_id"
            ).df()
            if has_verdicts
            else None
        )
        funnel = None
        if table_exists(con, "marts", "fct_stage_reach"):
            funnel = (
                con.execute(
                    "SELECT r.*, c.conversion_rate, c.median_days_in_stage "
                    "FROM marts.fct_stage_reach AS r LEFT JOIN marts.fct_funnel_stage_conversion "
                    "AS c ON c.dimension = 'all' AND c.pipeline_id = r.pipeline_id "
                    "AND c.stage = r.stage"
                ).df(),
                con.execute("SELECT * FROM marts.fct_deal_outcomes WHERE dimension = 'all'").df(),
            )
        curves = (
            con.execute(
                "SELECT * FROM ml.list_curves WHERE as_of_date = ? ORDER BY offer_id, list_size",
                [as_of],
            ).df()
            if table_exists(con, "ml", "list_curves")
            else None
        )
    model_dirs = {offer: registry.champion_dir(offer) for offer in offers}
    page = render(
        as_of,
        run_id,
        offers,
        published,
        model_dirs,
        lift,
        validation,
        funnel,
        curves,
        verdicts,
        forecast,
    )
    folder = settings.reports / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{as_of.isoformat()}_{safe_name(run_id or 'manual')}.html"
    atomic_write(path, page)
    # the copy one folder up links to the validation pages from there
    one_up = page.replace('href="../validation/', 'href="validation/')
    atomic_write(settings.reports / "last_run.html", one_up)
    return path
