"""The structure planted in the demo CRM, stated once so generator, docs and tests agree.

Everything here is a promise the generator keeps and a later stage is expected to find:

* Two offers launch `OFFER_LAUNCH_DAYS_BEFORE_END` (180) days before the end of the
  history. Adoption is decided in two 90-day windows: at the start T of each window, among
  the customers known then who have not adopted yet, those matching the rule on day T adopt
  within the window at the segment rate, the others at the base rate. So a model trained on
  the first window (features on T = end - 180, labels in the next 90 days) can be checked on
  the second (T = end - 90), and the planted rate holds in both. The rules:

  - **OFFER-PREM** (premium membership), the classic: age 20 to 30, occupation ``sales``,
    monthly spend 150 to 200 -> 90% adopt; other customers active at launch -> 5%.
  - **OFFER-INS** (home insurance): married, monthly income at least 5,000 and a customer
    for at least a year -> 60% adopt; other customers active at launch -> 4%.

  Customers who have churned before the launch adopt at a tenth of the base rate.

* Campaigns promote the other offers. Within 30 days of a campaign's start, target-group
  members adopt its offer at `CAMPAIGN_TARGET_ADOPTION` and control-group members at
  `CAMPAIGN_CONTROL_ADOPTION`; target members respond (click, inquire, visit) several
  times more often than control members.

* Sales opportunities move lead -> qualified -> proposal -> negotiation -> won with the
  stage conversion rates in `STAGE_CONVERSION` (lead -> proposal 50%, proposal ->
  negotiation 80%, negotiation -> won 90%) and median days in stage `STAGE_MEDIAN_DAYS`;
  a deal stalled in a stage (beyond its 80th percentile of days) advances at 0.6 times
  the stage's rate (`STALLED_ADVANCE_FACTOR`).

Feature definitions the rules use (the feature mart must compute them the same way):

* ``age`` on date T: whole years, ``floor((T - birth_date) in days / 365.25)``.
* ``monthly spend`` over the last 6 months on date T: the amount of transactions that
  occurred on a day in (T - 180 days, T] and were completed as of T (a refund or a
  cancellation recorded after T still counts), divided by 6.
* ``tenure`` on date T: days from ``created_at`` to T.
"""

from __future__ import annotations

from dataclasses import dataclass

OFFER_LAUNCH_DAYS_BEFORE_END = 180
ADOPTION_WINDOW_DAYS = 90
ADOPTION_WINDOWS = 2
SPEND_WINDOW_DAYS = 180
SPEND_WINDOW_MONTHS = 6
CHURNED_RATE_FACTOR = 0.1


@dataclass(frozen=True)
class PlantedOffer:
    product_id: str
    name: str
    rule: str
    segment_rate: float
    base_rate: float


PREMIUM = PlantedOffer(
    product_id="OFFER-PREM",
    name="Premium membership",
    rule="age 20-30 and occupation = sales and monthly spend (6 months) 150-200",
    segment_rate=0.90,
    base_rate=0.05,
)
PREMIUM_AGE = (20, 30)  # inclusive
PREMIUM_OCCUPATION = "sales"
PREMIUM_SPEND = (150.0, 200.0)  # [low, high)

INSURANCE = PlantedOffer(
    product_id="OFFER-INS",
    name="Home insurance",
    rule="marital status = married and monthly income >= 5000 and tenure >= 365 days",
    segment_rate=0.60,
    base_rate=0.04,
)
INSURANCE_MIN_INCOME = 5000.0
INSURANCE_MIN_TENURE_DAYS = 365

PLANTED_OFFERS = (PREMIUM, INSURANCE)

#: Offers that campaigns promote, with their price.
CAMPAIGN_OFFERS = {
    "OFFER-CARD": ("Store credit card", 29.0),
    "OFFER-WARR": ("Extended warranty", 49.0),
    "OFFER-TRAV": ("Travel package", 899.0),
}
OFFER_PRICES = {PREMIUM.product_id: 149.0, INSURANCE.product_id: 35.0} | {
    k: v[1] for k, v in CAMPAIGN_OFFERS.items()
}

CAMPAIGN_TARGET_ADOPTION = 0.07
CAMPAIGN_CONTROL_ADOPTION = 0.02
CAMPAIGN_ADOPTION_WINDOW_DAYS = 30
CAMPAIGN_CONTROL_SHARE = 0.10
#: sales_quotas leaves out the first rep's first quarters: the quota falls back to
#: sales_reps.quarterly_quota there.
QUOTA_FALLBACK_QUARTERS = 2

#: Probability of moving from each stage to the next (the rest is lost).
STAGE_CONVERSION = {
    "lead": 0.70,  # -> qualified
    "qualified": 0.715,  # -> proposal (lead -> proposal ~ 50%)
    "proposal": 0.80,  # -> negotiation
    "negotiation": 0.90,  # -> won
}
STAGE_MEDIAN_DAYS = {"lead": 4.0, "qualified": 9.0, "proposal": 14.0, "negotiation": 10.0}
#: Days in a stage are log-normal around the stage's median with this spread.
STAGE_DAYS_SIGMA = 0.55
#: A deal that stays in a stage beyond the stage's 80th percentile of days (median x
#: exp(0.8416 x sigma), about 1.59 x the median) is stalled: it advances at this share of
#: the stage's rate, and the deals that move on time at the rate that keeps the stage's
#: overall rate at STAGE_CONVERSION. So a stalled deal is won about 0.6 times as often as
#: the stage rates say, which the forecast's stalled-deal rule should measure.
STALLED_ADVANCE_FACTOR = 0.6
STALLED_QUANTILE_Z = 0.8416
COMPETITORS = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli")
