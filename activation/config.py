"""The activation settings (activation/config.yml), read once into a dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from crm.errors import BadInputError

CONFIG_PATH = Path(__file__).with_name("config.yml")
#: Contact fields a destination may be given (from the customer record).
CONTACT_FIELDS = ("full_name", "email", "phone")
#: Destinations that can be switched off (the files are always written).
DESTINATIONS = ("warehouse", "crm_db")


@dataclass(frozen=True)
class ContactPolicy:
    """Which offer a customer gets when several lists want them (activation/arbitration.py)."""

    max_offers: int = 1
    window_days: int = 7
    default_channel: str = "email"
    offer_channels: dict = field(default_factory=dict)
    #: channel -> customers to contact per day (None or absent: no limit)
    capacity_per_day: dict = field(default_factory=dict)

    def channel(self, offer: str) -> str:
        return str(self.offer_channels.get(offer, self.default_channel))


@dataclass(frozen=True)
class ActivationConfig:
    campaigns: dict[str, str]
    holdout_share: float
    holdout_protect_days: int
    cooling_off_days: int
    contact_fields: dict[str, tuple[str, ...]]
    crm_db_schema: str
    crm_db_table: str
    destinations: tuple[str, ...] = DESTINATIONS
    contact_policy: ContactPolicy = ContactPolicy()

    def campaign_for(self, offer: str) -> str:
        """The campaign an offer's audience goes out as (the offer id unless configured)."""
        return self.campaigns.get(offer, offer)


def load_config(path: Path = CONFIG_PATH) -> ActivationConfig:
    doc = yaml.safe_load(path.read_text())
    share = float(doc["holdout"]["share"])
    if not 0 <= share < 1:
        raise BadInputError(f"{path}: holdout share must be in [0, 1), not {share}")
    fields = {dest: tuple(doc["contact_fields"].get(dest) or ()) for dest in ("files", "crm_db")}
    for dest, names in fields.items():
        unknown = set(names) - set(CONTACT_FIELDS)
        if unknown:
            raise BadInputError(
                f"{path}: contact_fields.{dest} names unknown field(s) {sorted(unknown)}; "
                f"allowed: {', '.join(CONTACT_FIELDS)}"
            )
    destinations = tuple(doc.get("destinations", DESTINATIONS) or ())
    unknown = set(destinations) - set(DESTINATIONS)
    if unknown:
        raise BadInputError(
            f"{path}: unknown destination(s) {sorted(unknown)}; allowed: {', '.join(DESTINATIONS)}"
        )
    policy = doc.get("contact_policy") or {}
    max_offers = int(policy.get("max_offers", 1))
    if max_offers < 1:
        raise BadInputError(f"{path}: contact_policy.max_offers must be at least 1")
    contact_policy = ContactPolicy(
        max_offers=max_offers,
        window_days=int(policy.get("window_days", 7)),
        default_channel=str(policy.get("default_channel", "email")),
        offer_channels={str(k): str(v) for k, v in (policy.get("offer_channels") or {}).items()},
        capacity_per_day={
            str(k): None if v is None else int(v)
            for k, v in (policy.get("capacity_per_day") or {}).items()
        },
    )
    negative = {k: v for k, v in contact_policy.capacity_per_day.items() if v is not None and v < 0}
    if negative or contact_policy.window_days < 0:
        raise BadInputError(
            f"{path}: contact_policy capacities and window_days must be 0 or more "
            f"({negative or contact_policy.window_days})"
        )
    return ActivationConfig(
        campaigns={str(k): str(v) for k, v in (doc.get("campaigns") or {}).items()},
        holdout_share=share,
        holdout_protect_days=int(doc["holdout"]["protect_days"]),
        cooling_off_days=int(doc["suppression"]["cooling_off_days"]),
        contact_fields=fields,
        crm_db_schema=str(doc["crm_db"]["schema"]),
        crm_db_table=str(doc["crm_db"]["table"]),
        destinations=destinations,
        contact_policy=contact_policy,
    )
