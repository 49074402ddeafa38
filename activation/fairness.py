"""Selection rates by group of each protected attribute, for one released list.

The models never see a protected attribute (ml/config.yml `protected_attributes`), but a
list can still select one group far more than another through what it does use. So every
release reports, per protected attribute present in the data, each group's selection rate
(customers released to be contacted / customers scored) and its ratio to the overall rate;
a ratio below FLAG_BELOW is flagged. It is reported, not enforced: a marketer reads it
beside the list, and decides.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

#: The four-fifths rule of thumb for adverse impact: a group selected at less than 80% of
#: the overall rate is flagged.
FLAG_BELOW = 0.8
#: A group without a value of the attribute.
MISSING = "(missing)"


def selection_rates(scored: pd.DataFrame, selected: set[str], attribute: str) -> list[dict]:
    """Per group of `attribute` in `scored` (customer_id and the attribute): customers
    scored, selected, selection rate, its ratio to the overall rate, and whether it is
    flagged. Groups in order of size."""
    if scored.empty:
        return []
    groups = scored[attribute].astype(object).where(scored[attribute].notna(), MISSING)
    is_selected = scored["customer_id"].isin(selected)
    overall = float(is_selected.mean())
    table = (
        pd.DataFrame({"group": groups.astype(str), "selected": is_selected})
        .groupby("group")["selected"]
        .agg(scored="size", selected="sum")
        .reset_index()
        .sort_values(["scored", "group"], ascending=[False, True])
    )
    found = []
    for row in table.itertuples(index=False):
        rate = row.selected / row.scored
        ratio = rate / overall if overall > 0 else None
        found.append(
            {
                "group": row.group,
                "scored": int(row.scored),
                "selected": int(row.selected),
                "selection_rate": round(rate, 6),
                "ratio_to_overall": None if ratio is None else round(ratio, 4),
                "flagged": ratio is not None and ratio < FLAG_BELOW,
            }
        )
    return found


def fairness_report(
    con, offer: str, as_of: date, selected: set[str], attributes: tuple[str, ...]
) -> dict:
    """{attribute: selection_rates} for the offer's customers scored on `as_of`, for each
    protected attribute `marts.dim_customers` has and that has a value for someone."""
    present = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'marts' AND table_name = 'dim_customers'"
        ).fetchall()
    }
    wanted = [a for a in attributes if a in present]
    if not wanted:
        return {}
    columns = ", ".join(f'customers."{a}"' for a in wanted)
    scored = con.execute(
        f"SELECT scores.customer_id, {columns} FROM ml.customer_scores AS scores "
        "LEFT JOIN marts.dim_customers AS customers USING (customer_id) "
        "WHERE scores.offer_id = ? AND scores.as_of_date = ?",
        [offer, as_of],
    ).df()
    return {
        attribute: selection_rates(
            _grouped(scored[["customer_id", attribute]]), selected, attribute
        )
        for attribute in wanted
        if scored[attribute].notna().any()
    }


def _grouped(scored: pd.DataFrame) -> pd.DataFrame:
    """A numeric attribute (age) in bands of ten ("30-39"); others as they are."""
    attribute = scored.columns[1]
    values = scored[attribute]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return scored
    low = (values // 10 * 10).astype("Int64")
    bands = low.astype(str) + "-" + (low + 9).astype(str)
    return scored.assign(**{attribute: bands.where(values.notna(), None)})
