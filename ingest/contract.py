"""The source contract: what each landing entity must look like (ARCHITECTURE.md).

This module is data only and imports nothing heavy, because the pipeline DAG reads the
entity list and the reference graph at parse time to lay out one ingest task per entity.

Every row of a landing file is checked against its entity here: required columns present,
values castable to the column type, enums within their allowed values, amounts and dates in
a sane range, keys unique within the batch, references to parent entities that exist. Rows
that fail go to quarantine with the reason; see `ingest.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: Logical column types and the warehouse type each one lands as.
SQL_TYPES = {
    "text": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "money": "DECIMAL(18,2)",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
}

#: An amount above this is taken as a unit or typing error (a CRM export in cents, say).
MAX_AMOUNT = 10_000_000


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"
    required: bool = False
    personal: bool = False
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    #: Timestamps and dates that cannot lie after the moment the file is read.
    not_future: bool = False
    #: "email" or "phone": a contact field holds exactly one address or number. A value
    #: that is not one (two addresses, free text, too few digits) loads as NULL and the
    #: row is kept; audit.nulled_values records why (ingest/contacts.py).
    contact: str | None = None
    #: For a column computed at ingest, never read from a file: the column it comes from.
    derived_from: str | None = None
    #: Allowed values that come from configuration, not from this module: `stage` (every
    #: stage the pipelines file declares) or `pipeline` (its pipeline ids). `resolve`
    #: fills `allowed` from it.
    vocabulary: str | None = None
    description: str = ""

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class Reference:
    """`column` of this entity points at `parent`'s key (checked when the parent has rows)."""

    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class Entity:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    #: The column that says when the row became true; the as-of filter uses it.
    event_time: str | None = None
    #: The column ordering versions of one key (a later update of the same key).
    version_column: str | None = None
    references: tuple[Reference, ...] = ()
    required: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)
    #: Columns ingestion computes from the source columns (a keyed hash of the e-mail
    #: address); stored in raw beside them, never read from a file or mapped.
    derived_columns: tuple[Column, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.parent for r in self.references))


def _id(name: str, required: bool = False, description: str = "") -> Column:
    return Column(name, "text", required=required, description=description)


def _ts(name: str, required: bool = False, description: str = "") -> Column:
    return Column(name, "timestamp", required=required, not_future=True, description=description)


def _money(name: str, required: bool = False, description: str = "") -> Column:
    return Column(
        name, "money", required=required, minimum=0, maximum=MAX_AMOUNT, description=description
    )


CHANNELS = ("email", "sms", "phone", "web", "app", "store", "event", "social")
INTERACTION_TYPES = (
    "impression",
    "open",
    "click",
    "visit",
    "call",
    "inquiry",
    "complaint",
    "service_request",
    "unsubscribe",
)
TRANSACTION_STATUSES = ("completed", "refunded", "cancelled")
CAMPAIGN_STATUSES = ("draft", "pending_approval", "approved", "running", "completed", "cancelled")
#: `holdout` is accepted for `control`: it is what our audience releases call the group
MEMBER_GROUPS = ("target", "control", "holdout")
#: `open` and the ways a deal closes (crm.sales_pipelines.CLOSING_KINDS). The stages
#: themselves are configuration: the pipelines file (crm/sales_pipelines.py).
OPPORTUNITY_STATUSES = ("open", "won", "lost", "suspended", "terminated")

#: Every entity may carry a soft-delete time: a CRM database marks rows deleted rather than
#: removing them (ingest/database.py reads them like any update), and a file export may too.
#: Staging drops a key whose version true on the as-of date was deleted before its end.
DELETED_AT = "deleted_at"


def _with_deleted_at(entity: Entity) -> Entity:
    deleted = _ts(DELETED_AT, description="When the record was deleted in the CRM (soft delete).")
    return replace(entity, columns=(*entity.columns, deleted))


ENTITIES: dict[str, Entity] = {
    e.name: _with_deleted_at(e)
    for e in (
        Entity(
            "customers",
            key=("customer_id",),
            required=True,
            event_time="created_at",
            version_column="updated_at",
            description="People or companies who buy; personal data is hashed in marts.",
            columns=(
                _id("customer_id", required=True),
                _ts("created_at", description="When the customer record was created."),
                _ts("updated_at"),
                Column("full_name", personal=True),
                Column("email", personal=True, contact="email"),
                Column("phone", personal=True, contact="phone"),
                Column("birth_date", "date", not_future=True),
                Column("gender"),
                Column("marital_status"),
                Column("occupation"),
                Column("industry"),
                Column("monthly_income", "number", minimum=0, maximum=MAX_AMOUNT),
                Column("region"),
                Column("city"),
                Column("acquisition_channel"),
            ),
            derived_columns=(
                Column(
                    "email_hash",
                    derived_from="email",
                    description="HMAC-SHA256 of the trimmed, lower-cased address, keyed with "
                    "the personal-data key (CRM_PERSONAL_DATA_KEY): joins across tables "
                    "without the address, and cannot be reversed with a list of addresses.",
                ),
            ),
        ),
        Entity(
            "products",
            key=("product_id",),
            description="What is sold; `is_offer` marks the products campaigns promote.",
            columns=(
                _id("product_id", required=True),
                Column("name"),
                Column("category"),
                _money("list_price"),
                _money("unit_cost"),
                Column("is_offer", "boolean"),
            ),
        ),
        Entity(
            "sales_reps",
            key=("owner_id",),
            description="Owners of opportunities, with their team and quarterly quota.",
            columns=(
                _id("owner_id", required=True),
                Column("name", personal=True),
                Column("manager", description="The rep's manager (a name or an id)."),
                Column("team"),
                Column("region"),
                _money(
                    "quarterly_quota",
                    description="The rep's quota for a quarter without a row in sales_quotas.",
                ),
            ),
        ),
        Entity(
            "sales_quotas",
            key=("owner_id", "quarter_start"),
            version_column="updated_at",
            references=(Reference("owner_id", "sales_reps", "owner_id"),),
            description="Bookings quota per rep and quarter; a team's quota is the sum of "
            "its reps'. A quarter without a row falls back to sales_reps.quarterly_quota.",
            columns=(
                _id("owner_id", required=True),
                Column(
                    "quarter_start",
                    "date",
                    required=True,
                    description="The quarter's first day (any day of it names the quarter).",
                ),
                _money("quota", required=True),
                _ts(
                    "updated_at",
                    description="When the quota was set or revised: a run for an earlier "
                    "date uses the quota known then.",
                ),
            ),
        ),
        Entity(
            "campaigns",
            key=("campaign_id",),
            event_time=None,
            version_column="updated_at",
            references=(Reference("offer_product_id", "products", "product_id"),),
            description="Marketing campaigns with plan and actual budget and dates.",
            columns=(
                _id("campaign_id", required=True),
                Column("name"),
                Column("channel", allowed=CHANNELS),
                Column("region"),
                _id("offer_product_id"),
                Column("objective"),
                _money("planned_budget"),
                _money("actual_cost"),
                Column("planned_start", "date"),
                Column("planned_end", "date"),
                Column("actual_start", "date", not_future=True),
                Column("actual_end", "date"),
                Column("status", allowed=CAMPAIGN_STATUSES),
                _ts("approved_at"),
                _ts("updated_at"),
            ),
        ),
        Entity(
            "transactions",
            key=("transaction_id",),
            # not required: a B2B CRM's deal export has accounts and deals, no purchases
            event_time="occurred_at",
            version_column="updated_at",
            references=(
                Reference("customer_id", "customers", "customer_id"),
                Reference("product_id", "products", "product_id"),
            ),
            description="Purchases; a row without status is completed.",
            columns=(
                _id("transaction_id", required=True),
                _id("customer_id", required=True),
                _id("product_id"),
                _ts("occurred_at", required=True),
                Column("quantity", "integer", minimum=0, maximum=100_000),
                _money("amount", required=True),
                Column("status", allowed=TRANSACTION_STATUSES),
                _ts("updated_at"),
            ),
        ),
        Entity(
            "interactions",
            key=("interaction_id",),
            event_time="occurred_at",
            version_column="updated_at",
            references=(
                Reference("customer_id", "customers", "customer_id"),
                Reference("campaign_id", "campaigns", "campaign_id"),
            ),
            description="Contacts between the company and a customer, by channel and type.",
            columns=(
                _id("interaction_id", required=True),
                _id("customer_id", required=True),
                _ts("occurred_at", required=True),
                Column("channel", allowed=CHANNELS),
                Column("interaction_type", allowed=INTERACTION_TYPES),
                _id("campaign_id"),
                _ts("updated_at"),
            ),
        ),
        Entity(
            "campaign_members",
            key=("campaign_id", "customer_id"),
            event_time="added_at",
            references=(
                Reference("campaign_id", "campaigns", "campaign_id"),
                Reference("customer_id", "customers", "customer_id"),
            ),
            description="Who a campaign targeted, split into target and control groups.",
            columns=(
                _id("campaign_id", required=True),
                _id("customer_id", required=True),
                _ts("added_at"),
                Column("member_group", allowed=MEMBER_GROUPS),
                Column("source"),
                _ts("responded_at"),
            ),
        ),
        Entity(
            "opportunities",
            key=("opportunity_id",),
            event_time="created_at",
            version_column="updated_at",
            references=(
                Reference("customer_id", "customers", "customer_id"),
                Reference("campaign_id", "campaigns", "campaign_id"),
                Reference("owner_id", "sales_reps", "owner_id"),
                Reference("product_id", "products", "product_id"),
            ),
            description="Sales opportunities (deals). Their stage history is in "
            "opportunity_stage_history when the CRM exports it; `stage` is the stage the "
            "deal is in now, for exports with one row per deal.",
            columns=(
                _id("opportunity_id", required=True),
                _id(
                    "customer_id",
                    description="The customer or account; an early deal may have none yet.",
                ),
                _id("campaign_id"),
                _id("owner_id"),
                _id("product_id", description="What the deal sells, when the CRM records it."),
                Column(
                    "pipeline_id",
                    vocabulary="pipeline",
                    description="Which sales pipeline (pipelines file); empty: the default.",
                ),
                Column("stage", vocabulary="stage", description="The deal's current stage."),
                _ts("created_at", description="When the deal was created (or engaged)."),
                _money("amount"),
                Column(
                    "status",
                    allowed=OPPORTUNITY_STATUSES,
                    description="Empty: taken from the stage (a closing stage), else open.",
                ),
                _ts("closed_at"),
                Column("lost_to_competitor"),
                _ts("updated_at"),
            ),
        ),
        Entity(
            "opportunity_stage_history",
            key=("opportunity_id", "stage", "entered_at"),
            event_time="entered_at",
            references=(Reference("opportunity_id", "opportunities", "opportunity_id"),),
            description="One row each time an opportunity entered a stage.",
            columns=(
                _id("opportunity_id", required=True),
                Column("stage", required=True, vocabulary="stage"),
                _ts("entered_at", required=True),
            ),
        ),
        Entity(
            "contracts",
            key=("contract_id",),
            event_time="signed_at",
            version_column="updated_at",
            references=(
                Reference("opportunity_id", "opportunities", "opportunity_id"),
                Reference("customer_id", "customers", "customer_id"),
            ),
            description="Signed contracts, usually from a won opportunity.",
            columns=(
                _id("contract_id", required=True),
                _id("opportunity_id"),
                _id("customer_id", required=True),
                _ts("signed_at", required=True),
                _money("amount", required=True),
                _ts("updated_at"),
            ),
        ),
    )
}


def resolve(entity: Entity, stages: tuple[str, ...], pipeline_ids: tuple[str, ...] = ()) -> Entity:
    """`entity` with the allowed values that come from configuration filled in: `stages`
    is every stage value of the pipelines file (crm.sales_pipelines), `pipeline_ids` its
    pipelines."""
    vocabularies = {"stage": stages, "pipeline": pipeline_ids}
    columns = tuple(
        replace(c, allowed=vocabularies[c.vocabulary]) if c.vocabulary else c
        for c in entity.columns
    )
    return replace(entity, columns=columns)


#: Entities in an order where every parent comes before its children.
LOAD_ORDER: tuple[str, ...] = tuple(ENTITIES)


def _check_load_order() -> None:
    seen: set[str] = set()
    for name in LOAD_ORDER:
        missing = [p for p in ENTITIES[name].parents if p not in seen]
        if missing:
            raise AssertionError(f"{name} is listed before its parents {missing}")
        seen.add(name)


_check_load_order()
