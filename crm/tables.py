"""Every warehouse table the Python stages write, created in one place.

dbt owns `staging`, `intermediate` and `marts`: their shape is the dbt project. The other
schemas are written by Python, and their CREATE TABLE statements, with the migrations of
tables an older version made, live here, so the whole warehouse outside dbt reads in one
file:

- `raw`: one table per source-contract entity (columns from `ingest/contract.py`, passed in
  by ingestion, which owns the contract), and `raw.sales_pipeline_stages`, the pipelines
  file as a table (crm/sales_pipelines.py, written before each dbt build);
- `audit`: load batches, quarantine, nulled values, resubmissions, validation results and
  pipeline runs;
- `ml`: CLV predictions and fits, scores, scored lists and their cost curves, training
  runs (the model registry's tables, `ml.model_versions`, `ml.segment_rules`,
  `ml.scorecard_points`, `ml.model_gains` and `ml.model_calibration`, are copies of the
  registry replaced whole by `ml/warehouse.py`);
- `activation`: the audience releases, their members, diffs and holdout assignments, and
  what the suppression rule reads from activation (campaign settings, same-day holdouts).

dbt reads `ml.customer_lifetime_values`, `ml.offer_audiences` and the `activation` tables
as sources (`models/staging/*/_*__sources.yml`); `ensure_dbt_sources` makes them before a
dbt build, since a view that reads them cannot be made without them. Tables outside the
warehouse (the CRM database's audience tables, `activation/crm_db.py`) belong to their
writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crm.sql import quote_identifier

#: Activation's release tables, in the order a release writes them.
ACTIVATION_TABLES = (
    "campaign_audience_groups",
    "campaign_audiences",
    "campaign_audience_diffs",
    "campaign_audience_releases",
)


def ensure_raw(con, entities: Mapping[str, Iterable[tuple[str, str]]]) -> None:
    """One `raw` table per entity (name -> (column, SQL type) pairs); columns the contract
    gained since the table was made are added."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for entity, columns in entities.items():
        columns = list(columns)
        body = ", ".join(f"{quote_identifier(n)} {t}" for n, t in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{entity} ({body})")
        existing = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'raw' AND table_name = ?",
                [entity],
            ).fetchall()
        }
        for name, sql_type in columns:
            if name not in existing:
                con.execute(
                    f"ALTER TABLE raw.{entity} ADD COLUMN {quote_identifier(name)} {sql_type}"
                )


def ensure_audit(con) -> None:
    """The audit trail: what was loaded, quarantined, nulled, resubmitted and validated,
    and every pipeline run."""
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.load_batches (
            batch_id VARCHAR PRIMARY KEY,
            entity VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            file_format VARCHAR,
            file_size BIGINT,
            file_mtime_ns BIGINT,
            checksum VARCHAR NOT NULL,
            rows_read BIGINT NOT NULL,
            rows_loaded BIGINT NOT NULL,
            rows_quarantined BIGINT NOT NULL,
            ignored_columns VARCHAR,
            loaded_at TIMESTAMP NOT NULL,
            run_id VARCHAR,
            note VARCHAR
        )
        """
    )
    con.execute("ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS note VARCHAR")
    # 'rejected' when the landing checkpoint (expectations/landing.py) took the batch back out
    con.execute("ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS status VARCHAR")
    # database extracts (ingest/database.py): which source, and the newest updated_at read
    con.execute("ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS source_id VARCHAR")
    con.execute(
        "ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS source_watermark TIMESTAMP"
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.quarantine (
            entity VARCHAR NOT NULL,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            row_number BIGINT,
            reason_code VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            raw_row VARCHAR,
            quarantined_at TIMESTAMP NOT NULL,
            run_id VARCHAR
        )
        """
    )
    # values set to NULL on rows that loaded (a contact field that is not one address)
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.nulled_values (
            entity VARCHAR NOT NULL,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            row_number BIGINT NOT NULL,
            reason VARCHAR NOT NULL,
            nulled_at TIMESTAMP NOT NULL,
            run_id VARCHAR
        )
        """
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS audit.quarantine_resubmissions (entity VARCHAR, "
        "source VARCHAR, landing_file VARCHAR, rows BIGINT, resubmitted_at TIMESTAMP)"
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.validation_results (
            run_id VARCHAR, as_of DATE, checkpoint VARCHAR NOT NULL, suite VARCHAR NOT NULL,
            batch VARCHAR NOT NULL, expectation VARCHAR NOT NULL, column_name VARCHAR,
            description VARCHAR, severity VARCHAR NOT NULL, success BOOLEAN NOT NULL,
            observed VARCHAR, unexpected_count BIGINT, unexpected_percent DOUBLE,
            examples VARCHAR, validated_at TIMESTAMP NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.pipeline_runs (
            run_id VARCHAR NOT NULL,
            as_of DATE NOT NULL,
            status VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            summary VARCHAR
        )
        """
    )


def ensure_ml(con) -> None:
    """What the ML stages write: CLV (read back by dbt as a source), scores, scored lists
    and the training log."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS ml.customer_lifetime_values (
            customer_id VARCHAR, as_of_date DATE, expected_purchases_90d DOUBLE,
            probability_alive DOUBLE, expected_order_value DOUBLE, clv_12m DOUBLE,
            model_version VARCHAR
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS ml.clv_fits (
            as_of_date DATE, status VARCHAR, model_version VARCHAR, customers BIGINT,
            repeat_buyers BIGINT, parameters VARCHAR, reason VARCHAR, fitted_at TIMESTAMP
        )
        """
    )
    con.execute("ALTER TABLE ml.clv_fits ADD COLUMN IF NOT EXISTS input_checksum VARCHAR")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS ml.customer_scores (
            customer_id VARCHAR, offer_id VARCHAR, score DOUBLE, band VARCHAR,
            decile INTEGER, rule_id VARCHAR, rule VARCHAR, model_version VARCHAR,
            as_of_date DATE, run_id VARCHAR
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS ml.offer_audiences (
            customer_id VARCHAR, offer_id VARCHAR, score DOUBLE, band VARCHAR,
            decile INTEGER, rule_id VARCHAR, rule VARCHAR, model_version VARCHAR,
            list_rank BIGINT, expected_value DOUBLE, selected_by VARCHAR,
            as_of_date DATE, run_id VARCHAR
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS ml.list_curves (
            offer_id VARCHAR, list_size BIGINT, expected_responders DOUBLE, cost DOUBLE,
            expected_return DOUBLE, is_cut BOOLEAN, as_of_date DATE, run_id VARCHAR
        )
        """
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS ml.training_runs (as_of_date DATE, trained_at TIMESTAMP, "
        "summary VARCHAR)"
    )


def ensure_activation(con) -> None:
    """The audience releases: holdout assignments (kept for good, so a campaign's control
    group never changes), members with masked contacts, diffs, manifests, and the view of
    each campaign's newest release. Tables an older version kept in `marts` move here."""
    con.execute("CREATE SCHEMA IF NOT EXISTS activation")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS activation.campaign_audience_groups (
            campaign_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, "group" VARCHAR NOT NULL,
            assigned_as_of DATE NOT NULL, assigned_release VARCHAR NOT NULL,
            PRIMARY KEY (campaign_id, customer_id)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS activation.campaign_audiences (
            release_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, offer_id VARCHAR,
            campaign_id VARCHAR, score DOUBLE, band VARCHAR, decile INTEGER, rule_id VARCHAR,
            rule VARCHAR, "group" VARCHAR, list_rank BIGINT, expected_value DOUBLE,
            model_version VARCHAR, as_of_date DATE, email_masked VARCHAR, phone_masked VARCHAR,
            revision INTEGER, run_id VARCHAR, published_at TIMESTAMP
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS activation.campaign_audience_diffs (
            release_id VARCHAR NOT NULL, previous_release_id VARCHAR, customer_id VARCHAR,
            change VARCHAR, old_band VARCHAR, new_band VARCHAR, old_score DOUBLE,
            new_score DOUBLE, campaign_id VARCHAR, as_of_date DATE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS activation.campaign_audience_releases (
            release_id VARCHAR PRIMARY KEY, campaign_id VARCHAR, offer_id VARCHAR,
            as_of_date DATE, revision INTEGER, row_count BIGINT, target BIGINT, holdout BIGINT,
            suppressed_total BIGINT, previous_release_id VARCHAR, run_id VARCHAR,
            published_at TIMESTAMP, manifest VARCHAR
        )
        """
    )
    # what the suppression rule (dbt: audience_candidates) reads besides the marts, both
    # written by activation before a release reads the rule
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS activation.campaign_settings (
            offer_id VARCHAR PRIMARY KEY, campaign_id VARCHAR NOT NULL,
            cooling_off_days INTEGER NOT NULL, holdout_protect_days INTEGER NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS activation.same_day_holdouts (
            as_of_date DATE NOT NULL, offer_id VARCHAR NOT NULL, campaign_id VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL
        )
        """
    )
    _move_activation_out_of_marts(con)
    # the members of each campaign's newest release (latest as-of date, then revision); a
    # release of no one leaves the campaign empty here, as in the files
    con.execute(
        """
        CREATE OR REPLACE VIEW activation.campaign_audience_latest AS
        SELECT a.*
        FROM activation.campaign_audiences AS a
        JOIN (
            SELECT release_id FROM activation.campaign_audience_releases
            QUALIFY row_number() OVER (
                PARTITION BY campaign_id ORDER BY as_of_date DESC, revision DESC
            ) = 1
        ) AS newest USING (release_id)
        """
    )


def _move_activation_out_of_marts(con) -> None:
    """Releases made before activation had its own schema sit in `marts`: copy them over
    (holdout assignments must survive) and drop the old tables, in one transaction."""
    old = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "AND table_type = 'BASE TABLE' AND table_name IN "
            f"({', '.join('?' for _ in ACTIVATION_TABLES)})",
            list(ACTIVATION_TABLES),
        ).fetchall()
    }
    if not old:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DROP VIEW IF EXISTS marts.campaign_audience_latest")
        for name in ACTIVATION_TABLES:
            if name in old:
                con.execute(f"INSERT INTO activation.{name} SELECT * FROM marts.{name}")
                con.execute(f"DROP TABLE marts.{name}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


#: Tables dbt once built in `marts` and now builds elsewhere (the target-customer features
#: moved to `features`): left in `marts` they would go stale and reach BI, with the
#: customers' demographics, through the snapshot and the PostgreSQL grant.
MOVED_OUT_OF_MARTS = ("fct_customer_features", "fct_offer_labels")


def ensure_sales_pipeline_stages(con) -> None:
    """The configured sales pipelines, one row per stage (crm/sales_pipelines.py)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS raw.sales_pipeline_stages (
            pipeline_id VARCHAR NOT NULL,
            pipeline_name VARCHAR NOT NULL,
            is_default_pipeline BOOLEAN NOT NULL,
            stage VARCHAR NOT NULL,
            stage_order INTEGER NOT NULL,
            stage_kind VARCHAR NOT NULL,
            crm_probability DOUBLE,
            next_stage VARCHAR,
            PRIMARY KEY (pipeline_id, stage)
        )
        """
    )


def ensure_dbt_sources(con) -> None:
    """The tables Python writes that dbt models read, made before a dbt build (a first
    build on a new home comes before any of them was written); tables an older version
    left in `marts` are dropped."""
    ensure_sales_pipeline_stages(con)
    ensure_ml(con)
    ensure_activation(con)
    for name in MOVED_OUT_OF_MARTS:
        con.execute(f"DROP TABLE IF EXISTS marts.{name}")
