"""Publishing audience releases into a real PostgreSQL CRM database: first release,
unchanged re-run (zero writes), changed release (exact adds, updates, deletes), a failure
injected mid-write, a concurrent reader, rows the database refuses, an unreachable server."""

from __future__ import annotations

import threading
import uuid
from datetime import date

import numpy as np
import pandas as pd
import psycopg2
import pytest

from activation.crm_db import Destination, publish
from activation.release import Release
from crm.errors import RetryableError

URL = "postgresql://postgres@127.0.0.1:5432/test"
CONTACTS = ("email", "phone")


@pytest.fixture
def dest():
    schema = f"crm_activation_test_{uuid.uuid4().hex[:8]}"
    yield Destination(URL, schema, "campaign_audience")
    with psycopg2.connect(URL) as conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def release(ids, scores=None, tag="r1", campaign="CAMP-1") -> Release:
    n = len(ids)
    scores = np.linspace(0.9, 0.1, n) if scores is None else np.asarray(scores)
    rows = pd.DataFrame(
        {
            "customer_id": ids,
            "offer_id": "OFFER-X",
            "campaign_id": campaign,
            "score": scores,
            "band": np.where(scores >= 0.5, "50%-90%", "5%-50%"),
            "decile": np.arange(n) * 10 // max(n, 1) + 1,
            "rule_id": "R1",
            "rule": "age <= 30",
            "group": np.where(np.arange(n) % 10 == 0, "holdout", "target"),
            "list_rank": np.arange(1, n + 1),
            "expected_value": 1.0,
            "model_version": "v1",
            "as_of_date": date(2026, 6, 1),
            "full_name": [f"Name {c}" for c in ids],
            "email": [f"{c.lower()}@example.com" for c in ids],
            "phone": "+44 20 7946 0000",
        }
    )
    manifest = {"release_id": f"{campaign}:{tag}", "revision": 1}
    return Release("OFFER-X", campaign, date(2026, 6, 1), rows, pd.DataFrame(), manifest)


def table(dest: Destination, campaign="CAMP-1") -> pd.DataFrame:
    with psycopg2.connect(URL) as conn, conn.cursor() as cur:
        cur.execute(
            f'SELECT customer_id, score, band, "group", release_id, email, xmin::text '
            f"FROM {dest.qualified} WHERE campaign_id = %s ORDER BY customer_id",
            [campaign],
        )
        out = pd.DataFrame(
            cur.fetchall(),
            columns=["customer_id", "score", "band", "group", "release_id", "email", "xmin"],
        )
    conn.close()
    return out


IDS = [f"C{i:05d}" for i in range(1000)]


def test_first_release_then_an_unchanged_rerun_writes_nothing(dest):
    first = publish(release(IDS), dest, CONTACTS, run_id="run-1")
    assert (first["inserted"], first["updated"], first["deleted"]) == (1000, 0, 0)
    before = table(dest)
    assert len(before) == 1000 and before.email.str.endswith("@example.com").all()
    assert (before["group"] == "holdout").sum() == 100
    again = publish(release(IDS), dest, CONTACTS, run_id="run-2")
    assert again["unchanged"] is True
    assert (again["inserted"], again["updated"], again["deleted"]) == (0, 0, 0)
    after = table(dest)
    assert after.xmin.tolist() == before.xmin.tolist()  # not one row version rewritten
    with psycopg2.connect(URL) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {dest.log}")
        assert cur.fetchone()[0] == 1
    conn.close()


def test_a_changed_release_applies_exactly_its_adds_updates_and_deletes(dest):
    publish(release(IDS), dest, CONTACTS)
    scores = np.linspace(0.9, 0.1, 1000)
    new_ids = IDS[100:] + [f"N{i:03d}" for i in range(50)]
    new_scores = np.concatenate([scores[100:], np.full(50, 0.3)])
    new_scores[:20] = 0.99  # 20 kept customers change score (and band)
    new = release(new_ids, new_scores, tag="r2")
    # the same customers keep their group and rank meaning: copy them from the old release
    old = release(IDS).rows.set_index("customer_id")
    kept = new.rows.customer_id.isin(old.index)
    for column in ("group", "list_rank", "decile"):
        new.rows.loc[kept, column] = old.loc[new.rows.customer_id[kept], column].to_numpy()
    done = publish(new, dest, CONTACTS)
    assert (done["inserted"], done["updated"], done["deleted"]) == (50, 20, 100)
    after = table(dest)
    assert set(after.customer_id) == set(new_ids)
    assert (after.set_index("customer_id").loc[new_ids[:20], "score"] == 0.99).all()


def test_a_failure_half_way_leaves_the_previous_audience_and_the_next_run_completes(dest):
    publish(release(IDS), dest, CONTACTS)
    before = table(dest)
    changed = release(IDS[500:] + [f"N{i:04d}" for i in range(800)], tag="r2")
    with pytest.raises(RuntimeError, match="injected failure"):
        publish(changed, dest, CONTACTS, fail_after_rows=600)
    pd.testing.assert_frame_equal(table(dest), before)
    done = publish(changed, dest, CONTACTS)
    assert (done["inserted"], done["deleted"]) == (800, 500)
    assert set(table(dest).customer_id) == set(changed.rows.customer_id)


def test_a_concurrent_reader_never_sees_a_partial_audience(dest):
    big_old = [f"A{i:06d}" for i in range(30_000)]
    big_new = big_old[10_000:] + [f"B{i:06d}" for i in range(15_000)]
    publish(release(big_old, tag="old"), dest, CONTACTS)
    seen: list[tuple] = []
    stop = threading.Event()

    def reader():
        conn = psycopg2.connect(URL)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE customer_id LIKE 'B%%'), "
                    f"count(DISTINCT release_id) FROM {dest.qualified}"
                )
                seen.append(cur.fetchone())
        conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        publish(release(big_new, tag="new"), dest, CONTACTS)
    finally:
        stop.set()
        thread.join()
    # the update rewrites the release id of kept rows too, so the whole table changes at once
    assert len(seen) > 3
    assert set(seen) <= {(30_000, 0, 1), (35_000, 15_000, 1)}, set(seen)
    assert (35_000, 15_000, 1) in set(seen) or table(dest).shape[0] == 35_000


def test_rows_the_database_refuses_are_recorded_and_the_rest_commits(dest):
    publish(release(IDS[:10]), dest, CONTACTS)
    with psycopg2.connect(URL) as conn, conn.cursor() as cur:
        # the CRM's own rule, unknown to us: no audience row for a blocked customer
        cur.execute(
            f"ALTER TABLE {dest.qualified} ADD CONSTRAINT not_blocked "
            f"CHECK (customer_id NOT IN ('C00500', 'C00700'))"
        )
    conn.close()
    done = publish(release(IDS, tag="r2"), dest, CONTACTS)
    assert done["failed"] == 2 and done["inserted"] == 988
    assert {f["customer_id"] for f in done["failures"]} == {"C00500", "C00700"}
    assert all("not_blocked" in f["reason"] for f in done["failures"])
    with psycopg2.connect(URL) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT customer_id, operation, reason FROM {dest.failures}")
        recorded = cur.fetchall()
    conn.close()
    assert {r[0] for r in recorded} == {"C00500", "C00700"}
    assert len(table(dest)) == 998
    # the same release again tries nothing and writes nothing: the refusals are on record
    before = table(dest)
    again = publish(release(IDS, tag="r2"), dest, CONTACTS)
    assert again["unchanged"] is True
    assert table(dest).xmin.tolist() == before.xmin.tolist()


def test_an_unreachable_database_is_a_retryable_error_with_the_reason():
    dest = Destination("postgresql://postgres@127.0.0.1:1/test", "x", "campaign_audience")
    with pytest.raises(RetryableError, match="cannot reach the CRM database"):
        publish(release(IDS[:5]), dest, CONTACTS)
