"""The CRM database destination: each campaign's audience as rows of one PostgreSQL table.

Publishing a release makes the campaign's rows equal to the release in one transaction:
new members are inserted, changed ones updated, members who left the segment deleted. The
current rows are read first and only the differences are written, so publishing the same
release twice writes nothing. A failure anywhere rolls the transaction back and leaves the
previous audience whole; readers never see a mix (they read committed rows only).

A row the database refuses (a constraint of the destination table: a foreign key to the
CRM's customers, a check) does not sink the release: the batch is retried row by row under
savepoints, refused rows are recorded with the database's reason in `<table>_failures`,
and the rest commits.

The connection comes from `CRM_DB_URL`, or else the Airflow connection `crm_db` (looked
up by the DAG task); without either this destination is off.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass

import pandas as pd

from activation.release import Release
from crm.errors import BadInputError, RetryableError
from crm.sql import quote_identifier

VALUE_COLUMNS = (
    "offer_id",
    "score",
    "band",
    "decile",
    "rule_id",
    "rule",
    "group",
    "list_rank",
    "model_version",
)


@dataclass(frozen=True)
class Destination:
    url: str
    schema: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.table)}"

    @property
    def failures(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.table + '_failures')}"

    @property
    def log(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.table + '_releases')}"

    def connect(self):
        import psycopg2

        try:
            return psycopg2.connect(self.url, connect_timeout=10)
        except psycopg2.OperationalError as exc:
            raise RetryableError(f"cannot reach the CRM database: {exc}".strip()) from exc


def ensure_tables(dest: Destination, contact_fields: tuple[str, ...]) -> None:
    """The audience table, its failure log and its publication log (created on first use)."""
    contacts = "".join(f", {quote_identifier(c)} TEXT" for c in contact_fields)
    with closing(dest.connect()) as conn, conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(dest.schema)}")
        cur.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {dest.qualified} (
                campaign_id TEXT NOT NULL, customer_id TEXT NOT NULL, offer_id TEXT,
                score DOUBLE PRECISION, band TEXT, decile INTEGER, rule_id TEXT, rule TEXT,
                "group" TEXT NOT NULL, list_rank BIGINT, model_version TEXT,
                release_id TEXT NOT NULL, as_of_date DATE NOT NULL{contacts},
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (campaign_id, customer_id)
            )
            """
        )
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [dest.schema, dest.table],
        )
        present = {row[0] for row in cur.fetchall()}
        for column in contact_fields:  # a field added to the config later
            if column not in present:
                cur.execute(
                    f"ALTER TABLE {dest.qualified} ADD COLUMN {quote_identifier(column)} TEXT"
                )
        cur.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {dest.failures} (
                campaign_id TEXT NOT NULL, customer_id TEXT NOT NULL, release_id TEXT NOT NULL,
                operation TEXT NOT NULL, reason TEXT NOT NULL,
                failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (campaign_id, customer_id, release_id)
            )
            """
        )
        cur.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {dest.log} (
                campaign_id TEXT NOT NULL, release_id TEXT NOT NULL, run_id TEXT,
                inserted INTEGER, updated INTEGER, deleted INTEGER, failed INTEGER,
                published_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """
        )


def _comparable(frame: pd.DataFrame, columns) -> pd.DataFrame:
    out = frame[list(columns)].copy()
    out["score"] = out["score"].astype(float).round(12)
    for column in ("decile", "list_rank"):
        out[column] = out[column].astype("Int64")
    return out.astype({c: object for c in out.columns if c not in ("score", "decile", "list_rank")})


def plan(current: pd.DataFrame, wanted: pd.DataFrame, columns) -> dict[str, pd.DataFrame]:
    """Which customers to insert, update and delete to turn `current` into `wanted`."""
    cur = _comparable(current.set_index("customer_id"), columns)
    new = _comparable(wanted.set_index("customer_id"), columns)
    inserts = new.loc[new.index.difference(cur.index)]
    deletes = cur.loc[cur.index.difference(new.index)]
    both = new.index.intersection(cur.index)
    left, right = new.loc[both].sort_index(), cur.loc[both].sort_index()
    same = (left == right).astype("boolean").fillna(False) | (left.isna() & right.isna())
    differs = ~same.all(axis=1)
    updates = left[differs]
    return {"insert": inserts, "update": updates, "delete": deletes}


def publish(
    release: Release,
    dest: Destination,
    contact_fields: tuple[str, ...],
    run_id: str | None = None,
    fail_after_rows: int | None = None,
) -> dict:
    """Make the campaign's rows equal the release, in one transaction.

    `fail_after_rows` is for tests: raise after writing that many rows, inside the
    transaction, to show that a failure half-way leaves the previous audience intact.
    """
    import psycopg2

    started = time.perf_counter()
    ensure_tables(dest, contact_fields)
    columns = (*VALUE_COLUMNS, *contact_fields)
    wanted = release.rows[["customer_id", *columns]].copy()
    counts = {"inserted": 0, "updated": 0, "deleted": 0, "failed": 0}
    failures: list[tuple[str, str, str]] = []
    with closing(dest.connect()) as conn:
        try:
            with conn.cursor() as cur:
                # one publisher per campaign at a time (a CLI run beside the DAG, a zombie task)
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [release.campaign_id])
                cur.execute(
                    f"SELECT customer_id, {', '.join(quote_identifier(c) for c in columns)} "
                    f"FROM {dest.qualified} WHERE campaign_id = %s",
                    [release.campaign_id],
                )
                current = pd.DataFrame(cur.fetchall(), columns=["customer_id", *columns])
                # rows the database refused for this release are not tried again on a re-run
                cur.execute(
                    f"SELECT customer_id FROM {dest.failures} WHERE release_id = %s",
                    [release.release_id],
                )
                refused_before = {row[0] for row in cur.fetchall()}
                cur.execute(f"SELECT 1 FROM {dest.log} WHERE release_id = %s", [release.release_id])
                logged = cur.fetchone() is not None
                todo = plan(current, wanted[~wanted.customer_id.isin(refused_before)], columns)
                todo["delete"] = todo["delete"].loc[~todo["delete"].index.isin(wanted.customer_id)]
                if logged and not any(len(frame) for frame in todo.values()):
                    conn.rollback()
                    return {
                        **counts,
                        "unchanged": True,
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                written = 0

                def tick(n: int) -> None:
                    nonlocal written
                    written += n
                    if fail_after_rows is not None and written >= fail_after_rows:
                        raise RuntimeError(f"injected failure after {written} rows")

                if len(todo["delete"]):
                    cur.execute(
                        f"DELETE FROM {dest.qualified} WHERE campaign_id = %s "
                        f"AND customer_id = ANY(%s)",
                        [release.campaign_id, list(todo["delete"].index)],
                    )
                    counts["deleted"] = cur.rowcount
                    tick(cur.rowcount)
                names = ["campaign_id", "customer_id", *columns, "release_id", "as_of_date"]
                column_sql = ", ".join(quote_identifier(c) for c in names)
                assignments = ", ".join(
                    f"{quote_identifier(c)} = EXCLUDED.{quote_identifier(c)}" for c in names[2:]
                )
                statement = (
                    f"INSERT INTO {dest.qualified} ({column_sql}) VALUES %s "
                    f"ON CONFLICT (campaign_id, customer_id) DO UPDATE SET {assignments}, "
                    f"updated_at = now()"
                )
                for operation in ("insert", "update"):
                    frame = todo[operation]
                    records = [
                        (
                            release.campaign_id,
                            customer,
                            *[_plain(v) for v in values],
                            release.release_id,
                            release.as_of,
                        )
                        for customer, values in zip(
                            frame.index, frame.itertuples(index=False), strict=True
                        )
                    ]
                    for start in range(0, len(records), 5000):
                        chunk = records[start : start + 5000]
                        done, refused = _write_chunk(cur, statement, chunk)
                        counts["inserted" if operation == "insert" else "updated"] += done
                        failures += [(customer, operation, reason) for customer, reason in refused]
                        tick(done)
                if failures:
                    from psycopg2.extras import execute_values

                    execute_values(
                        cur,
                        f"INSERT INTO {dest.failures} (campaign_id, customer_id, release_id, "
                        f"operation, reason) VALUES %s ON CONFLICT DO NOTHING",
                        [
                            (release.campaign_id, c, release.release_id, op, reason)
                            for c, op, reason in failures
                        ],
                    )
                counts["failed"] = len(failures)
                cur.execute(
                    f"INSERT INTO {dest.log} (campaign_id, release_id, run_id, inserted, "
                    f"updated, deleted, failed) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        release.campaign_id,
                        release.release_id,
                        run_id,
                        counts["inserted"],
                        counts["updated"],
                        counts["deleted"],
                        counts["failed"],
                    ],
                )
            conn.commit()
        except psycopg2.OperationalError as exc:
            conn.rollback()
            raise RetryableError(f"the CRM database went away while publishing: {exc}") from exc
        except Exception:
            conn.rollback()
            raise
    return {
        **counts,
        "unchanged": False,
        "failures": [{"customer_id": c, "operation": o, "reason": r} for c, o, r in failures[:20]],
        "seconds": round(time.perf_counter() - started, 3),
    }


def _plain(value):
    """numpy and pandas scalars as plain Python values psycopg2 can adapt."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _write_chunk(cur, statement: str, records: list[tuple]) -> tuple[int, list[tuple[str, str]]]:
    """Write a chunk in one statement; if the database refuses it, find the refused rows
    one by one under savepoints and write the others. Returns (rows written, refused)."""
    import psycopg2
    from psycopg2.extras import execute_values

    if not records:
        return 0, []
    cur.execute("SAVEPOINT chunk")
    try:
        execute_values(cur, statement, records, page_size=len(records))
        cur.execute("RELEASE SAVEPOINT chunk")
        return len(records), []
    except (psycopg2.IntegrityError, psycopg2.DataError):
        cur.execute("ROLLBACK TO SAVEPOINT chunk")
    written, refused = 0, []
    for record in records:
        cur.execute("SAVEPOINT one_row")
        try:
            execute_values(cur, statement, [record])
            cur.execute("RELEASE SAVEPOINT one_row")
            written += 1
        except (psycopg2.IntegrityError, psycopg2.DataError) as exc:
            cur.execute("ROLLBACK TO SAVEPOINT one_row")
            refused.append((record[1], (exc.diag.message_primary or str(exc)).strip()))
    cur.execute("RELEASE SAVEPOINT chunk")
    return written, refused


def destination_from_config(config, settings) -> Destination | None:
    """Where the audiences go in the CRM database, or None when none is configured. An
    Airflow connection's URI says `postgres://`, which libpq reads as it reads
    `postgresql://`."""
    url = settings.db_url
    if url is None:
        return None
    if not config.crm_db_schema or not config.crm_db_table:
        raise BadInputError("activation config: crm_db.schema and crm_db.table are required")
    return Destination(url, config.crm_db_schema, config.crm_db_table)
