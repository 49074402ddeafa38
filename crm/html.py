"""Small helpers for the self-contained HTML pages the platform writes (run report,
validation results): one stylesheet, escaping, number formats, a table."""

from __future__ import annotations

import html

import pandas as pd

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d2430;
max-width:72rem}
h1{font-size:1.5rem}
h2{font-size:1.25rem;border-bottom:2px solid #d8dee9;padding-bottom:.3rem;margin-top:2.5rem}
h3{font-size:1rem;margin-bottom:.4rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #d8dee9;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;gap:2rem;flex-wrap:wrap} .muted{color:#6b7585}
svg text{font-size:11px;fill:#1d2430}
"""


def escape(value) -> str:
    return html.escape("" if value is None else str(value))


def pct(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.1%}"


def num(value, digits: int = 0) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:,.{digits}f}"


def table(headers: list[str], rows: list[list], numeric: set[int] = frozenset(), cls="") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(v)}</td>' if i in numeric else f"<td>{escape(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
