"""Fingerprint every mart of a home, to show that a change leaves the marts as they were.

    python bench/fingerprint_marts.py --home H --out before.json          # on main
    python bench/fingerprint_marts.py --home H2 --baseline before.json    # after the change

With `--baseline`, each mart is fingerprinted on the baseline's columns only, so a change
that adds columns is compared on what was there before; the new columns are listed. The
fingerprint is rows and an order-independent checksum (`crm.warehouse.table_fingerprint`).
Build both homes the same way, e.g. `crm demo --customers 3000 --seed 7 --end 2026-06-01`
with the same CRM_PERSONAL_DATA_KEY.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm.settings import Settings  # noqa: E402
from crm.warehouse import session, table_fingerprint  # noqa: E402


def _columns(con, mart: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
            "AND table_name = ? ORDER BY ordinal_position",
            [mart],
        ).fetchall()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="write the fingerprints here (JSON)")
    parser.add_argument("--baseline", type=Path, help="compare with these fingerprints")
    args = parser.parse_args()
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    found: dict[str, dict] = {}
    with session(read_only=True, settings=Settings(home=args.home)) as con:
        marts = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'marts' ORDER BY 1"
            ).fetchall()
        ]
        for mart in marts:
            columns = _columns(con, mart)
            if baseline and mart in baseline:
                wanted = baseline[mart]["columns"]
                missing = [c for c in wanted if c not in columns]
                on = [c for c in wanted if c in columns]
            else:
                missing, on = [], columns
            found[mart] = {
                "columns": columns,
                "fingerprint": table_fingerprint(con, f"marts.{mart}", columns=on),
                "missing": missing,
            }
    if args.out:
        args.out.write_text(json.dumps(found, indent=1, sort_keys=True))
    differing = 0
    for mart, got in found.items():
        line = f"{mart:<36} {got['fingerprint']}"
        if baseline:
            before = baseline.get(mart)
            if before is None:
                line += "  new mart"
            else:
                same = before["fingerprint"] == got["fingerprint"] and not got["missing"]
                differing += not same
                added = [c for c in got["columns"] if c not in before["columns"]]
                line += "  identical" if same else "  DIFFERENT"
                if got["missing"]:
                    line += f"  (lost columns {got['missing']})"
                if added:
                    line += f"  (new columns {added})"
        print(line)
    if baseline:
        gone = sorted(set(baseline) - set(found))
        for mart in gone:
            print(f"{mart:<36} MISSING")
        print(
            f"{len(found) - differing - sum(m not in baseline for m in found)} identical, "
            f"{differing + len(gone)} different or missing"
        )
        return 1 if differing or gone else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
