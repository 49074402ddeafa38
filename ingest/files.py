"""The file-drop connector: find landing files and read one into a DuckDB temp table.

Formats by suffix: CSV (`.csv`, `.tsv`, optionally `.gz`), Parquet (`.parquet`, `.pq`) and
JSON lines (`.jsonl`, `.ndjson`, `.json`). CSV is read as text so that nothing is coerced
before the contract checks; lines DuckDB cannot parse at all (too many columns, invalid
UTF-8) are kept as rejects and quarantined, not dropped. A file that cannot be read at all
raises `BadInputError` naming the file and the problem.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm.errors import BadInputError
from crm.sql import quote_identifier, quote_literal
from ingest.contract import Entity
from ingest.mapping import EntityMapping, normalise_name

CSV_SUFFIXES = {".csv", ".tsv", ".csv.gz", ".tsv.gz"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz"}
#: Names a file has while a copy or a download writes it: never read.
IN_PROGRESS_SUFFIXES = {".part", ".partial", ".tmp", ".crdownload", ".filepart"}
#: A text file changed this recently that does not end in a newline is most likely still
#: being copied (a cut line would load a wrong value, 1234.56 read as 1): it waits for a
#: later run. An older one is read as it is (some tools omit the last newline).
SETTLE_SECONDS = 300

#: DuckDB's CSV reader stops a file at a line longer than its default 2 MB (a long note
#: or a document in one field); this is the default here, `csv.max_line_size` overrides it.
MAX_LINE_BYTES = 8 << 20
#: DuckDB sizes its read buffer from the longest line (16x); kept at its usual 32 MB so a
#: load stays within a small memory limit (at least 2 lines fit whatever the setting).
BUFFER_BYTES = 16 << 20
#: Byte-order marks of the encodings that have one.
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

READ_TABLE = "_landing_read"
SOURCE_TABLE = "_landing_source"
REJECTS_TABLE = "_landing_rejects"
REJECT_SCANS_TABLE = "_landing_reject_scans"


@dataclass(frozen=True)
class LandingFile:
    entity: str
    path: Path
    relative_path: str
    size: int
    mtime_ns: int
    #: What the batch came from when it is not a landing file (`postgres`: an extract of
    #: the CRM database, written as CSV by ingest/database.py).
    origin: str | None = None

    @property
    def format(self) -> str:
        return file_format(self.path)

    @property
    def source_format(self) -> str:
        """As recorded in audit.load_batches.file_format."""
        return self.origin or self.format


@dataclass(frozen=True)
class ReadResult:
    """What `read_into_source_table` put into `SOURCE_TABLE` (columns already renamed)."""

    columns: tuple[str, ...]
    ignored_columns: tuple[str, ...]
    rows: int
    rejected_lines: int


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[1] == ".gz":
        return "".join(suffixes)
    return suffixes[-1] if suffixes else ""


def file_format(path: Path) -> str:
    suffix = _suffix(path)
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSON_SUFFIXES:
        return "json"
    raise BadInputError(
        f"{path}: unsupported file type {suffix or '(no suffix)'!r}; landing files must be "
        "CSV, Parquet or JSON lines"
    )


def discover(landing: Path, entity: str) -> list[LandingFile]:
    """Files for one entity, in name order. Files and folders whose name starts with '.' or
    '_' are skipped: files being written, `_SUCCESS` markers, `.spark-staging/`; so are
    files a copy is still writing (`.part` and the like, or a recent text file whose last
    line is cut): a later run loads them.

    Links, to files and folders alike, are followed while they lead to a place inside the
    landing folder; one that leads outside it is refused (BadInputError naming the link and
    its target, reading nothing of it): a file drop must not be a way to load, or print in
    an error, a file from anywhere else on the machine."""
    folder = landing / entity
    if not folder.is_dir():
        return []
    root = landing.resolve()
    _inside(folder, root)
    found = []
    seen_dirs: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = Path(dirpath)
        real = here.resolve()
        if real in seen_dirs:  # a link back up the tree
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for d in dirnames:
            _inside(here / d, root)
        for name in filenames:
            path = here / name
            if name.startswith((".", "_")) or not _inside(path, root).is_file():
                continue
            if path.suffix.lower() in IN_PROGRESS_SUFFIXES or _still_being_written(path):
                continue
            file_format(path)  # refuse unknown types up front, naming the file
            stat = path.stat()
            found.append(
                LandingFile(
                    entity=entity,
                    path=path,
                    relative_path=str(path.relative_to(landing)),
                    size=stat.st_size,
                    mtime_ns=stat.st_mtime_ns,
                )
            )
    return sorted(found, key=lambda f: f.path)


def _still_being_written(path: Path) -> bool:
    """A CSV or JSON-lines file changed within SETTLE_SECONDS whose last byte is not a
    newline (a compressed or Parquet file cannot be judged this way, and is not)."""
    suffix = _suffix(path)
    if suffix not in (CSV_SUFFIXES | JSON_SUFFIXES) or suffix.endswith(".gz"):
        return False
    stat = path.stat()
    if stat.st_size == 0 or time.time() - stat.st_mtime > SETTLE_SECONDS:
        return False
    with path.open("rb") as fh:
        head = fh.read(2)
        fh.seek(-min(2, stat.st_size), os.SEEK_END)
        tail = fh.read()
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):  # a newline is two bytes there
        return tail not in (b"\n\x00", b"\x00\n")
    return not tail.endswith(b"\n")


def _inside(path: Path, root: Path) -> Path:
    """`path` resolved, when it lies inside `root`; else BadInputError."""
    real = path.resolve()
    if real != root and root not in real.parents:
        raise BadInputError(
            f"{path} is a link to {real}, outside the landing folder {root}: links in "
            "landing must stay inside it (copy the file in instead)"
        )
    return real


def drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP VIEW IF EXISTS {SOURCE_TABLE}")
    for table in (READ_TABLE, REJECTS_TABLE, REJECT_SCANS_TABLE):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def raw_rows_sql(row_numbers_sql: str) -> str:
    """`_row_number` and the row exactly as read, as JSON, for the rows whose numbers the
    given query returns (the quarantined ones: JSON for every row would double the cost)."""
    return (
        f"SELECT rowid + 1 AS _row_number, to_json(r) AS _raw FROM {READ_TABLE} AS r "
        f"WHERE rowid + 1 IN ({row_numbers_sql})"
    )


def checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def literal_path(path: Path) -> str:
    """`path` as a SQL string DuckDB's readers take literally: they expand `*`, `?` and
    `[...]` as a glob, so a file named `transactions_2026-*.csv` would read every month.
    Each of those characters goes in brackets, which match exactly it."""
    escaped = re.sub(r"([*?\[])", r"[\1]", str(path))
    return quote_literal(escaped)


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if _suffix(path).endswith(".gz") else path.open("rb")


def csv_encoding(file: LandingFile, mapping: EntityMapping) -> str:
    """The codec a CSV file is written in: the mapping's `csv.encoding`, else UTF-16 when
    the file starts with its byte-order mark (a spreadsheet's "Unicode text"), else UTF-8."""
    declared = mapping.csv.get("encoding")
    if declared:
        return codecs.lookup(str(declared)).name
    with _open_bytes(file.path) as fh:
        head = fh.read(2)
    return "utf-16" if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8"


def _refuse_blank(file: LandingFile, encoding: str) -> None:
    """A small file holding nothing but a byte-order mark or blank lines would read as a
    table of one unnamed column; say what it holds instead."""
    if file.size > 4096:
        return
    with _open_bytes(file.path) as fh:
        data = fh.read()
    bom = next((b for b in _BOMS if data.startswith(b)), b"")
    text = data[len(bom) :].decode(encoding, errors="replace")
    if not text.strip():
        holds = "a byte-order mark" if bom and not text else "only blank lines"
        if bom and text:
            holds = "a byte-order mark and blank lines"
        raise BadInputError(
            f"{file.path}: the file holds no header and no rows ({holds}); expected a header row"
        )


def _transcode(file: LandingFile, encoding: str, folder: Path) -> Path:
    """A UTF-8 copy of a CSV file written in another encoding (GB18030, GBK, UTF-16,
    cp1252, ...), which DuckDB cannot read itself. A byte not valid in the encoding is
    copied as it is: its line is then not UTF-8, and DuckDB rejects it (quarantined as
    unparseable, the rest loads), as it does in a UTF-8 file."""
    out = folder / "utf8.csv"
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    try:
        with _open_bytes(file.path) as src, out.open("wb") as dst:
            while chunk := src.read(8 << 20):
                dst.write(decoder.decode(chunk).encode("utf-8", "surrogateescape"))
            dst.write(decoder.decode(b"", final=True).encode("utf-8", "surrogateescape"))
    except UnicodeError as exc:
        raise BadInputError(
            f"{file.path}: is not {encoding} ({exc.reason} at byte {getattr(exc, 'start', '?')}); "
            "check csv.encoding in the mapping file"
        ) from exc
    return out


def duckdb_reason(exc: BaseException) -> str:
    """DuckDB's message with its reason, without the echo of the offending line (it may
    hold personal data) and the dump of reader options after it."""
    kept = []
    for line in str(exc).splitlines():
        if not line.strip():
            break
        if line.startswith(("Original Line:", "Possible Solution:")):
            continue
        kept.append(line.strip())
    reason = " ".join(kept)
    if "Maximum line size" in reason:
        reason += "; set csv.max_line_size (bytes) in the mapping file"
    return reason


def _reader_sql(
    file: LandingFile,
    mapping: EntityMapping,
    header_as_row: bool = False,
    path: Path | None = None,
) -> str:
    """The DuckDB table function that reads a CSV or Parquet file (JSON: `_read_json`);
    `header_as_row`: a CSV's header line comes back as the first row, untouched. `path`:
    what to read instead of the file itself (its UTF-8 copy)."""
    path = literal_path(path or file.path)
    if file.format == "parquet":
        return f"read_parquet({path})"
    options = ["all_varchar = true"]
    if header_as_row:  # a probe of the first line: leave the main read's rejects alone
        options += ["header = false", "ignore_errors = true"]
    else:
        options += [
            "header = true",
            "store_rejects = true",
            f"rejects_table = '{REJECTS_TABLE}'",
            f"rejects_scan = '{REJECT_SCANS_TABLE}'",
        ]
    if _suffix(file.path).startswith(".tsv"):
        options.append("delim = '\t'")
    csv = dict(mapping.csv)
    if "delimiter" in csv:
        options.append(f"delim = {quote_literal(csv['delimiter'])}")
    if "header" in csv and not header_as_row:
        options.append(f"header = {'true' if csv['header'] else 'false'}")
    for key in ("quote", "escape"):
        if key in csv:
            options.append(f"{key} = {quote_literal(csv[key])}")
    max_line = int(csv.get("max_line_size", MAX_LINE_BYTES))
    options += [f"max_line_size = {max_line}", f"buffer_size = {max(BUFFER_BYTES, 2 * max_line)}"]
    # csv.decimal_separator is applied by the contract checks: CSV is read as text.
    return f"read_csv({path}, {', '.join(options)})"


def _refuse_duplicate_header(
    con: duckdb.DuckDBPyConnection, file: LandingFile, mapping: EntityMapping, path: Path
) -> None:
    """A CSV header naming a column twice: DuckDB renames the second (`amount_1`), so one
    value would be taken silently. The file is refused, naming the column."""
    rows = con.execute(
        f"SELECT * FROM {_reader_sql(file, mapping, header_as_row=True, path=path)} LIMIT 1"
    ).fetchall()
    names = [normalise_name(str(v)) for v in rows[0] if v is not None] if rows else []
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadInputError(
            f"{file.path}: the header names column(s) {', '.join(repeated)} more than once; "
            "which one holds the value is not clear: rename or drop the extra column"
        )


def _read_json(con: duckdb.DuckDBPyConnection, file: LandingFile) -> None:
    """JSON lines (or an array of objects) into READ_TABLE with every field as text.

    DuckDB's type detection samples the first rows, so one odd value further down would fail
    the whole file or turn a column into JSON; reading text keeps the decision per row.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _landing_json AS "
        f"SELECT json FROM read_json_objects({literal_path(file.path)}, format = 'auto')"
    )
    try:
        keys = [
            row[0]
            for row in con.execute(
                "SELECT key FROM (SELECT unnest(json_keys(json)) AS key, rowid AS r "
                "FROM _landing_json) GROUP BY key ORDER BY min(r), key"
            ).fetchall()
        ]
        if not keys:
            raise BadInputError(f"{file.path}: no JSON objects with fields were found")
        twice = con.execute(
            "SELECT rowid + 1, json_keys(json) FROM _landing_json "
            "WHERE len(json_keys(json)) <> len(list_distinct(json_keys(json))) LIMIT 1"
        ).fetchall()
        if twice:
            line, names = twice[0]
            repeated = sorted({k for k in names if names.count(k) > 1})
            raise BadInputError(
                f"{file.path}: object {line} has the key(s) {', '.join(repeated)} twice; "
                "which value holds is not clear (DuckDB would keep the first silently)"
            )
        fields = ", ".join(
            f"json_extract_string(json, {quote_literal('$.' + json.dumps(k))}) "
            f"AS {quote_identifier(k)}"
            for k in keys
        )
        con.execute(f"CREATE TEMP TABLE {READ_TABLE} AS SELECT {fields} FROM _landing_json")
    finally:
        con.execute("DROP TABLE IF EXISTS _landing_json")


def read_into_source_table(
    con: duckdb.DuckDBPyConnection, file: LandingFile, entity: Entity, mapping: EntityMapping
) -> ReadResult:
    """Read `file` once into the temp table `READ_TABLE`, and expose it as the view
    `SOURCE_TABLE` with contract column names: `_row_number` (1-based order in the file),
    then one text-or-typed column per contract column present. `raw_rows_sql()` gives the
    rows as delivered, as JSON, for quarantine.
    """
    if file.size == 0:
        expected = "a header row" if file.format == "csv" else "data"
        raise BadInputError(f"{file.path}: the file is empty (0 bytes); expected {expected}")
    drop_temp_tables(con)
    with tempfile.TemporaryDirectory(prefix="crm_transcode_") as scratch:
        path = file.path
        if file.format == "csv":
            encoding = csv_encoding(file, mapping)
            _refuse_blank(file, encoding)
            if encoding != "utf-8":
                path = _transcode(file, encoding, Path(scratch))
        try:
            if file.format == "json":
                _read_json(con, file)
            else:
                reader = _reader_sql(file, mapping, path=path)
                con.execute(f"CREATE TEMP TABLE {READ_TABLE} AS SELECT * FROM {reader}")
            if file.format == "csv" and mapping.csv.get("header", True):
                _refuse_duplicate_header(con, file, mapping, path)
        except duckdb.Error as exc:
            raise BadInputError(
                f"{file.path}: cannot be read as {file.format.upper()} ({duckdb_reason(exc)})"
            ) from exc
    read_columns = [row[0] for row in con.execute(f"DESCRIBE {READ_TABLE}").fetchall()]
    by_name: dict[str, str] = {}
    for original in read_columns:
        name = normalise_name(original)
        for target in mapping.columns.get(name, (name,)):  # one column may give several
            if target in by_name:
                raise BadInputError(
                    f"{file.path}: columns {by_name[target]!r} and {original!r} both give "
                    f"{entity.name}.{target}"
                )
            by_name[target] = original

    normalised = {normalise_name(c) for c in read_columns}
    missing_mapped = sorted(set(mapping.columns) - normalised)
    if missing_mapped:
        raise BadInputError(
            f"{file.path}: the mapping file names column(s) {missing_mapped} that this file "
            f"does not have (it has: {', '.join(read_columns)})"
        )
    missing = [c for c in (*entity.key, *entity.required_columns) if c not in by_name]
    if missing:
        hint = ""
        if len(read_columns) == 1 and file.format == "csv":
            hint = " (only one column was found: is the delimiter right? set csv.delimiter)"
        raise BadInputError(
            f"{file.path}: required column(s) {', '.join(dict.fromkeys(missing))} missing "
            f"for {entity.name}; the file has: {', '.join(read_columns)}{hint}"
        )

    present = tuple(c for c in entity.column_names if c in by_name)
    ignored = tuple(original for name, original in by_name.items() if name not in present)
    select = ", ".join(f"{quote_identifier(by_name[c])} AS {quote_identifier(c)}" for c in present)
    # A view, not a copy: the file was read once into READ_TABLE. rowid follows insertion
    # order, which DuckDB preserves from the file.
    con.execute(
        f"CREATE TEMP VIEW {SOURCE_TABLE} AS "
        f"SELECT rowid + 1 AS _row_number, {select} FROM {READ_TABLE}"
    )
    rows = con.execute(f"SELECT count(*) FROM {READ_TABLE}").fetchone()[0]
    rejected = 0
    if file.format == "csv":
        # DuckDB logs one reject per problem: a short line, once per missing column
        rejected = con.execute(f"SELECT count(DISTINCT line) FROM {REJECTS_TABLE}").fetchone()[0]
    return ReadResult(columns=present, ignored_columns=ignored, rows=rows, rejected_lines=rejected)
