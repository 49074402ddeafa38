"""Customer lifetime value: BG/NBD for how often a customer buys and whether they are still
active, Gamma-Gamma for how much they spend per purchase.

The models come from pymc-marketing (PyMC Labs), the maintained successor of `lifetimes`,
fitted by maximum a posteriori with flat priors, which is maximum likelihood: on the CDNOW
sample it gives Fader, Hardie and Lee's published parameters (tests/unit/ml/test_clv.py).
The mart gets point values only: expected purchase days in the next 90 days, probability
alive, expected spend per purchase day and the 12-month value (pymc-marketing's convention:
12 months of 30 days, discounted 1% a month). BG/NBD gives a one-time buyer a probability
alive of 1 by construction; the expected purchases are what separates them.

Input is the BTYD summary of `int_customers_purchases_summarised` (days; same-day purchases
merged). `fit` and `predict` are pure; `update_customer_lifetime_values` reads the summary
from the warehouse and writes `ml.customer_lifetime_values` for dbt's second phase.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from crm.settings import Settings, get_settings
from crm.tables import ensure_ml

#: Below this many repeat buyers the fit is not trusted and no values are written.
MIN_REPEAT_BUYERS = 30
HORIZON_DAYS = 90
CLV_MONTHS = 12
MONTHLY_DISCOUNT_RATE = 0.01

OUTPUT_COLUMNS = (
    "customer_id",
    "as_of_date",
    "expected_purchases_90d",
    "probability_alive",
    "expected_order_value",
    "clv_12m",
    "model_version",
)


class UnusableFit(Exception):
    """The models cannot be trusted; the caller records why and writes no values."""


class NotEnoughData(UnusableFit):
    """Too few buyers to fit the models."""


@dataclass
class CLVModels:
    purchases: object  # pymc_marketing.clv.BetaGeoModel
    spend: object  # pymc_marketing.clv.GammaGammaModel
    parameters: dict[str, float]
    fitted_customers: int
    fitted_repeat_buyers: int

    @property
    def version(self) -> str:
        digest = hashlib.sha256(json.dumps(self.parameters, sort_keys=True).encode()).hexdigest()
        return f"bgnbd-gg-{digest[:10]}"


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("pymc", "pytensor", "pymc_marketing", "arviz"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _flat_priors(*names: str) -> dict:
    """Flat priors on the positive reals: the MAP estimate is the maximum likelihood one."""
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in names}


def btyd_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary in pymc-marketing's column names (customer_id, frequency, recency, T,
    monetary_value). A customer whose first purchase is on the as-of date has T = 0, which
    the likelihood does not allow: such customers are given T = 1 day."""
    return pd.DataFrame(
        {
            "customer_id": summary["customer_id"].astype(str).to_numpy(),
            "frequency": summary["btyd_frequency"].astype(float).to_numpy(),
            "recency": summary["btyd_recency_days"].astype(float).to_numpy(),
            "T": np.maximum(summary["btyd_t_days"].astype(float).to_numpy(), 1.0),
            "monetary_value": summary["btyd_monetary_value"].astype(float).fillna(0).to_numpy(),
        }
    )


def fit(summary: pd.DataFrame) -> CLVModels:
    """Fit BG/NBD on every buyer and Gamma-Gamma on repeat buyers with positive spend."""
    data = btyd_frame(summary)
    repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
    if len(repeat) < MIN_REPEAT_BUYERS:
        raise NotEnoughData(
            f"{len(repeat)} repeat buyers; at least {MIN_REPEAT_BUYERS} are needed to fit"
        )
    _quiet()  # pymc's import is slow: only once there is something to fit
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    purchases = BetaGeoModel(
        data=data[["customer_id", "frequency", "recency", "T"]],
        model_config=_flat_priors("alpha", "r", "a", "b"),
    )
    purchases.fit(method="map", progressbar=False)
    spend = GammaGammaModel(
        data=repeat.reset_index(drop=True), model_config=_flat_priors("p", "q", "v")
    )
    spend.fit(method="map", progressbar=False)
    parameters = {
        **{k: float(purchases.fit_result[k].values.mean()) for k in ("r", "alpha", "a", "b")},
        **{f"gg_{k}": float(spend.fit_result[k].values.mean()) for k in ("p", "q", "v")},
    }
    # Gamma-Gamma's population mean spend is v p / (q - 1): it needs q > 1.
    if not all(np.isfinite(v) and v > 0 for v in parameters.values()) or parameters["gg_q"] <= 1:
        raise UnusableFit(f"the fit did not reach usable parameters: {parameters}")
    return CLVModels(purchases, spend, parameters, len(data), len(repeat))


def _point(values) -> np.ndarray:
    """A MAP fit has one draw: the point value per customer."""
    return np.asarray(values.mean(dim=("chain", "draw")).values, dtype=float)


def predict(models: CLVModels, summary: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Point predictions per customer of `summary`."""
    _quiet()
    data = btyd_frame(summary)
    expected = _point(models.purchases.expected_purchases(data=data, future_t=HORIZON_DAYS))
    alive = _point(models.purchases.expected_probability_alive(data=data))
    spend = _point(models.spend.expected_customer_spend(data=data))
    value = _point(
        models.spend.expected_customer_lifetime_value(
            transaction_model=models.purchases,
            data=data,
            future_t=CLV_MONTHS,
            discount_rate=MONTHLY_DISCOUNT_RATE,
            time_unit="D",
        )
    )
    return pd.DataFrame(
        {
            "customer_id": data["customer_id"],
            "as_of_date": pd.Timestamp(as_of).date(),
            "expected_purchases_90d": expected,
            "probability_alive": np.clip(alive, 0.0, 1.0),
            "expected_order_value": spend,
            "clv_12m": value,
            "model_version": models.version,
        },
        columns=list(OUTPUT_COLUMNS),
    )


SUMMARY_SQL = """
    SELECT customer_id, btyd_frequency, btyd_recency_days, btyd_t_days, btyd_monetary_value
    FROM intermediate.int_customers_purchases_summarised
    ORDER BY customer_id  -- the optimiser's sums in a fixed order: the same fit every time
"""


#: Change when the fit itself changes (priors, models, predictions): older fits are then
#: never reused.
FIT_VERSION = "1"


def input_checksum(summary: pd.DataFrame) -> str:
    """sha256 of what decides a fit: its input (the BTYD summary, in customer order), this
    code's FIT_VERSION and the pymc-marketing version."""
    from importlib.metadata import version

    ordered = summary.sort_values("customer_id").reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    digest = hashlib.sha256(f"{FIT_VERSION}|{version('pymc-marketing')}|".encode())
    digest.update(hashed.tobytes())
    return digest.hexdigest()


def _reusable_fit(con, as_of: date, checksum: str) -> dict | None:
    """The recorded fit for this date and input, when the table still holds its values."""
    fits = con.execute(
        "SELECT status, model_version, repeat_buyers, parameters, reason FROM ml.clv_fits "
        "WHERE as_of_date = ? AND input_checksum = ? ORDER BY fitted_at DESC LIMIT 1",
        [as_of, checksum],
    ).fetchall()
    if not fits or fits[0][0] not in ("fitted", "skipped"):
        return None
    status, version, repeat, parameters, reason = fits[0]
    held = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE as_of_date = ? AND model_version "
        "IS NOT DISTINCT FROM ?) FROM ml.customer_lifetime_values",
        [as_of, version],
    ).fetchall()[0]
    if status == "fitted" and (held[0] == 0 or held[0] != held[1]):
        return None
    if status == "skipped" and held[0] != 0:
        return None
    if status == "skipped":
        return {"status": status, "reason": reason}
    return {
        "status": status,
        "model_version": version,
        "parameters": json.loads(parameters) if parameters else None,
        "repeat_buyers": repeat,
    }


def update_customer_lifetime_values(as_of: date, settings: Settings | None = None) -> dict:
    """Fit on the run's BTYD summary and replace `ml.customer_lifetime_values`.

    With too few buyers the table is emptied (dim_customers then has null CLV columns) and
    the reason is returned for the run summary; the run goes on.
    """
    from crm.warehouse import session

    settings = settings or get_settings()
    started = time.perf_counter()
    with session(settings=settings) as con:
        ensure_ml(con)
        summary = con.execute(SUMMARY_SQL).df()
        checksum = input_checksum(summary)
        reused = _reusable_fit(con, as_of, checksum)
    result: dict = {"as_of": as_of.isoformat(), "customers": len(summary)}
    if reused is not None:
        # the same date with the same purchases again (a rerun): the table already holds
        # this fit's values; fitting again would only give the same numbers, slower
        result.update(reused, reused=True, seconds=round(time.perf_counter() - started, 3))
        return result
    try:
        models = fit(summary)
        predictions = predict(models, summary, as_of)
        result.update(
            status="fitted",
            model_version=models.version,
            parameters={k: round(v, 6) for k, v in models.parameters.items()},
            repeat_buyers=models.fitted_repeat_buyers,
        )
    except UnusableFit as exc:
        predictions = pd.DataFrame(columns=list(OUTPUT_COLUMNS))
        result.update(status="skipped", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a numerical failure must not stop the marts
        logging.getLogger(__name__).exception("CLV fit failed")
        predictions = pd.DataFrame(columns=list(OUTPUT_COLUMNS))
        result.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    with session(settings=settings) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM ml.customer_lifetime_values")
        if len(predictions):
            con.register("clv_predictions", predictions)
            con.execute("INSERT INTO ml.customer_lifetime_values SELECT * FROM clv_predictions")
            con.unregister("clv_predictions")
        con.execute("DELETE FROM ml.clv_fits WHERE as_of_date = ?", [as_of])
        con.execute(
            "INSERT INTO ml.clv_fits (as_of_date, status, model_version, customers, "
            "repeat_buyers, parameters, reason, fitted_at, input_checksum) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, now(), ?)",
            [
                as_of,
                result["status"],
                result.get("model_version"),
                len(summary),
                result.get("repeat_buyers"),
                json.dumps(result.get("parameters")),
                result.get("reason"),
                checksum,
            ],
        )
        con.execute("COMMIT")
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result
