"""Run, training, scoring and activation summaries as text for a terminal."""

from __future__ import annotations


def format_validation(validation: dict | None, name: str) -> list[str]:
    """A checkpoint's result in a few lines: counts, then each warning's first line."""
    if not validation:
        return []
    lines = [
        "",
        f"{name}: {validation['passed']} of {validation['expectations']} expectations met "
        f"on {validation['suites']} batches, {len(validation['warnings'])} warning(s), "
        f"{len(validation['critical_failed'])} critical",
    ]
    lines += [f"  warning: {w.splitlines()[0]}" for w in validation["warnings"][:10]]
    return lines


def format_summary(summary: dict) -> str:
    """The run summary as a table for a terminal."""
    lines = [
        f"Run {summary['run_id']}  as of {summary['as_of']}  "
        f"{summary['status']} in {summary['seconds']:.1f} s",
        "",
        f"{'entity':<27}{'read':>12}{'loaded':>12}{'quarantined':>13}"
        f"{'batches new/skipped':>20}{'raw rows':>12}",
    ]
    totals = [0, 0, 0]
    unchanged = 0
    for entity, r in summary["ingest"].items():
        totals[0] += r["rows_read"]
        totals[1] += r["rows_loaded"]
        totals[2] += r["rows_quarantined"]
        unchanged += r.get("rows_unchanged", 0)
        files = f"{r['files_loaded']}/{r['files_skipped']}"
        lines.append(
            f"{entity:<27}{r['rows_read']:>12,}{r['rows_loaded']:>12,}"
            f"{r['rows_quarantined']:>13,}{files:>20}{r['raw_rows_total']:>12,}"
        )
    lines.append(f"{'total':<27}{totals[0]:>12,}{totals[1]:>12,}{totals[2]:>13,}")
    if unchanged:
        lines.append(
            f"{unchanged:,} row(s) read again from the CRM database (overlap) were already "
            "loaded and are not loaded twice"
        )
    reasons: dict[str, int] = {}
    ignored = []
    for entity, r in summary["ingest"].items():
        for code, n in r["quarantined_by_reason"].items():
            reasons[code] = reasons.get(code, 0) + n
        if r["ignored_columns"]:
            ignored.append(f"{entity}: {', '.join(r['ignored_columns'])}")
    if reasons:
        lines.append(
            "quarantined by reason: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items()))
            + "  (details: audit.quarantine)"
        )
    if ignored:
        lines.append("columns not in the contract, ignored: " + "; ".join(ignored))
    nulled = sum(r.get("rows_with_nulled_values", 0) for r in summary["ingest"].values())
    if nulled:
        lines.append(
            f"{nulled:,} row(s) loaded with a contact field set to NULL: not one address or "
            "number (details: audit.nulled_values)"
        )
    lines += format_validation(summary.get("validation"), "landing checkpoint")
    d = summary["dbt"]
    lines += [
        "",
        f"dbt: {d['models']} models built, {d['tests_passed']} tests passed, "
        f"{d['tests_warned']} warned, {d['tests_failed']} failed",
    ]
    lines += [f"  warning: {w}" for w in d.get("warnings", [])[:10]]
    clv = summary.get("clv")
    if clv:
        if clv.get("status") == "fitted":
            lines.append(
                f"CLV: BG/NBD + Gamma-Gamma fitted on {clv['customers']:,} buyers "
                f"({clv['repeat_buyers']:,} repeat), model {clv['model_version']}"
                + (" (reused: same purchases as this date's last fit)" if clv.get("reused") else "")
            )
        else:
            lines.append(f"CLV: not fitted ({clv.get('reason')}); CLV columns are empty")
    snapshot = summary.get("bi_snapshot") or {}
    if snapshot.get("skipped"):
        lines.append(f"BI snapshot not replaced: {snapshot['skipped']} (this run is a backfill)")
    postgres = summary.get("postgres_marts") or {}
    if postgres.get("dbt"):
        lines.append(
            f"PostgreSQL marts: {postgres['dbt']['models']} models, "
            f"{postgres['dbt']['tests_passed']} tests passed (role crm_bi reads them)"
        )
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary["stages"].items())
    lines += [f"time per stage: {stages}", ""]
    lines += [f"{k:<10} {v}" for k, v in summary["outputs"].items()]
    if summary.get("summary_file"):
        lines.append(f"{'summary':<10} {summary['summary_file']}")
    return "\n".join(lines)


def format_training(summary: dict) -> str:
    lines = [
        f"Target-customer models as of {summary['as_of']} (train on "
        f"{summary['train_date']}, holdout {summary['holdout_date']}):"
    ]
    for offer, o in summary["offers"].items():
        if o["status"] == "stopped":
            lines.append(f"  {offer:<12} stopped: {o['reason']}")
            continue
        h = o["holdout"]
        lines.append(
            f"  {offer:<12} {o['status']:<9} AUC {h['roc_auc']:.3f}  "
            f"lift@10% {h['lift_at_10']:.2f} "
            f"(logistic {o['logistic_lift_at_10']:.2f})  champion {o['champion']}"
        )
        lines.append(f"  {'':<12} top rule: {o['top_rule']}")
        lines.append(f"  {'':<12} {o['reason']}")
    return "\n".join(lines)


def format_scoring(summary: dict) -> str:
    lines = [f"Scores as of {summary['as_of']} (ml.customer_scores, ml.offer_audiences):"]
    for offer, o in summary["offers"].items():
        if o["status"] != "scored":
            lines.append(f"  {offer:<12} {o['status']}")
            continue
        bands = ", ".join(f"{k} {v:,}" for k, v in sorted(o["bands"].items()))
        lines.append(
            f"  {offer:<12} {o['eligible']:,} eligible scored ({bands}); audience "
            f"{o['audience']:,} by {o['selected_by'] or '-'}"
        )
    return "\n".join(lines)


def format_activation(summary: dict) -> str:
    lines = [f"Audiences released for {summary['as_of']} (CRM database: {summary['crm_db']}):"]
    for offer, o in summary["offers"].items():
        m = o["manifest"]
        reasons = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m["suppressed"].items() if v)
        diff = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m["diff"].items() if v)
        state = "new release" if o.get("files", {}).get("written") else "unchanged"
        lines.append(
            f"  {offer:<12} {m['row_count']:,} released ({m['target']:,} target, "
            f"{m['holdout']:,} holdout), {state}; suppressed {m['suppressed_total']:,}"
            + (f" ({reasons})" if reasons else "")
            + (f"; diff: {diff}" if diff else "")
        )
        if "crm_db" in o and "skipped" in o["crm_db"]:
            lines.append(f"  {'':<12} CRM database: skipped, {o['crm_db']['skipped']}")
        elif "crm_db" in o:
            db = o["crm_db"]
            lines.append(
                f"  {'':<12} CRM database: {db['inserted']:,} inserted, {db['updated']:,} "
                f"updated, {db['deleted']:,} deleted, {db['failed']:,} refused"
            )
    lines += format_validation(summary.get("validation"), "audience checkpoint")[1:]
    return "\n".join(lines)
