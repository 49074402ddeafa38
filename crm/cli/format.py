"""Run, training, scoring and activation summaries, the contract and a landing check, as
text for a terminal."""

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
        if o.get("kind") == "scorecard":
            lines.append(f"  {'':<12} scorecard on {', '.join(o['params']['features'])}")
        else:
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


def _value_map(pairs: dict) -> str:
    """A column's value map as `'Paid' -> completed; any other value -> empty`."""
    shown = []
    for source, target in pairs.items():
        if source == "*":
            continue
        shown.append(f"{source!r} -> {target if target is not None else 'empty'}")
    if "*" in pairs:
        other = pairs["*"]
        shown.append(
            "any other value -> "
            + ("as it is" if other == "*" else other if other is not None else "empty")
        )
    return "; ".join(shown)


def _column_notes(col: dict) -> list[str]:
    """What a person writing the column needs to know, one note a line."""
    notes = []
    if col["references"]:
        notes.append(f"-> {col['references']}")
    if col["allowed"] is not None:
        where = " (pipelines file)" if col["allowed_from"] else ""
        notes.append(f"one of{where}: {', '.join(col['allowed']) or '(none configured)'}")
    if col["minimum"] is not None or col["maximum"] is not None:
        low = "" if col["minimum"] is None else f"{col['minimum']:,g}"
        high = "" if col["maximum"] is None else f"{col['maximum']:,.0f}"
        notes.append(f"from {low} to {high}" if low and high else f"at least {low or high}")
    if col["not_future"]:
        notes.append("not after the time it is loaded")
    if col["contact"]:
        notes.append(f"one {'e-mail address' if col['contact'] == 'email' else 'phone number'}")
    if col["personal"]:
        notes.append("personal data: hashed or masked in the marts")
    if col["source_columns"]:
        notes.append(f"from your column(s): {', '.join(col['source_columns'])}")
    if col["value_map"]:
        notes.append(f"values mapped: {_value_map(col['value_map'])}")
    if col["names_as_keys"]:
        notes.append("names as keys: trimmed, lower-case, one space")
    if col["description"]:
        notes.append(col["description"])
    return notes


def format_contract(result: dict) -> str:
    """`crm contract`: each entity's columns, with the configuration applied, and an
    example row as CSV."""
    lines = [
        f"mapping file: {result['mapping_file'] or '(none)'}",
        f"pipelines file: {result['pipelines_file']}",
    ]
    for entity in result["entities"].values():
        lines += ["", f"{entity['name']}{'  (required entity)' if entity['required'] else ''}"]
        if entity["description"]:
            lines.append(f"  {entity['description']}")
        lines.append(f"  key: {', '.join(entity['key'])}")
        width = max(len(c["name"]) for c in entity["columns"]) + 2
        for title, required in (("required columns", True), ("optional columns", False)):
            columns = [c for c in entity["columns"] if c["required"] is required]
            if not columns:
                continue
            lines.append(f"  {title}:")
            for col in columns:
                notes = _column_notes(col) or [""]
                lines.append(f"    {col['name']:<{width}}{col['type']:<11}{notes[0]}".rstrip())
                lines += [f"    {'':<{width}}{'':<11}{note}" for note in notes[1:]]
        if entity["values_match"] == "loose":
            lines.append("  values compare loosely (case and runs of spaces do not matter)")
        refs = ", ".join(f"{r['column']} -> {r['parent']}" for r in entity["references"])
        lines.append(f"  references: {refs or 'none'}")
        lines.append(f"  personal data: {', '.join(entity['personal']) or 'none'}")
        computed = entity["computed_at_load"]
        if computed:
            lines.append(
                "  computed at load, never read from a file: "
                + ", ".join(f"{name} (from {src})" for name, src in computed.items())
            )
        example = entity["example"]
        lines.append("  example row (CSV, contract column names):")
        lines.append("    " + ",".join(example))
        lines.append("    " + ",".join(_csv_field(v) for v in example.values()))
    return "\n".join(lines)


def _csv_field(value: str) -> str:
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"\n') else value


def format_check(result: dict) -> str:
    """`crm check`: per file what would load and what would be held back, and why."""
    lines = [
        f"checked {result['path']} without loading it"
        + ("" if result["path"] == result["landing"] else f" (landing {result['landing']})"),
        f"  mapping file: {result['mapping_file'] or '(none)'}",
        f"  pipelines file: {result['pipelines_file']}",
        "  references checked against: this folder"
        + (f" and the warehouse {result['warehouse']} (read-only)" if result["warehouse"] else ""),
    ]
    if result["parents_read"]:
        lines.append(
            "  parents read from this folder for the references (not reported): "
            + ", ".join(f"{name} ({n} file(s))" for name, n in result["parents_read"].items())
        )
    lines += [f"  note: {note}" for note in result["notes"]]
    for name, entity in result["entities"].items():
        if entity.get("error"):
            lines += ["", f"{name}: {entity['error']}"]
            continue
        if not entity["files"]:
            continue
        skipped = [r for r in entity["references"] if not r["checked"]]
        for ref in skipped:
            lines.append(
                f"{name}: reference {ref['column']} -> {ref['parent']} not checked: no "
                f"{ref['parent']} rows in this folder"
                + (" or in the warehouse" if result["warehouse"] else ", and no warehouse to read")
            )
    counts = {"clean": 0, "held back": 0, "unreadable": 0}
    lines.append("")
    for f in result["files"]:
        if f.get("error"):
            counts["unreadable"] += 1
            lines.append(f"{f['file']}: cannot be read: {f['error']}")
            continue
        counts["held back" if f["rows_would_be_quarantined"] else "clean"] += 1
        lines.append(
            f"{f['file']}: {f['rows_read']:,} rows read, {f['rows_would_load']:,} would load, "
            f"{f['rows_would_be_quarantined']:,} would be quarantined"
        )
        for code, held in f["quarantined_by_reason"].items():
            lines.append(f"    {code}: {held['rows']:,} rows")
            lines += [f"        {example}" for example in held["examples"]]
        if f["unmapped_values"]:
            lines.append("    values no value map names (add them to the mapping file, values:)")
            lines += [
                f"        {u['column']} {u['value']!r}: {u['rows']:,} rows"
                for u in f["unmapped_values"]
            ]
        if f["ignored_columns"]:
            lines.append(
                f"    columns not in the contract, ignored: {', '.join(f['ignored_columns'])}"
            )
        if f["rows_with_nulled_values"]:
            lines.append(
                f"    {f['rows_with_nulled_values']:,} rows would load with a contact field "
                "set to NULL (not one address or number)"
            )
    lines += [
        "",
        f"{len(result['files'])} file(s): {counts['clean']} would load completely, "
        f"{counts['held back']} with rows held back, {counts['unreadable']} cannot be read"
        + ("" if result["ok"] else " (exit 3)"),
    ]
    return "\n".join(lines)
