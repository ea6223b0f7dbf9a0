"""Fuzz `classifier tag` with hostile texts and hostile tables; count what breaks, per format.

    python benchmarks/fuzz.py --cases 10000              # about 10-15 minutes on 2 cores
    python benchmarks/fuzz.py --cases 10000 --seed 7 --out /tmp/fuzz-failures
    python benchmarks/fuzz.py --cases 200 --model tests-model.npz   # quick look

Every case is a generated table (no real feedback: texts are drawn from every Unicode category,
control characters, bidi controls, emoji sequences, formula starts, "nan"/"NULL" strings,
numbers-as-text, 100,000-character tokens and a small made-up vocabulary) written as CSV, TSV,
JSON Lines, Excel or Parquet, sometimes malformed on purpose (ragged rows, unclosed quotes,
undecodable bytes, JSON Lines whose keys change across chunks...). It is tagged in-process with
``tag_file`` (one case in ``--cli-every`` through a real ``python -m classifier`` process), the
output is read back with plain readers (csv, json, openpyxl, pyarrow) and checked against what
the README promises:

- valid input: exit code 0; the rows come back all there, unsplit, in order, each input cell
  equal (apart from the README's documented changes: the formula prefix ``'``, the control
  characters an Excel sheet cannot hold and its line breaks as line feeds, lone surrogates as
  ``?``, mixed kinds in a Parquet column as text); the added columns agree with the library
  (``load_model().classify_many``) on themes, polarities, scores and status;
- malformed input: one line ``Error: ...`` naming the file and the line, row, record or column,
  exit code 1 (2 for usage errors), no traceback;
- never a marker ``SECRET...`` (embedded in the generated cells) on standard error.

The table printed at the end counts, per output format, per input format and per generator,
the cases with each kind of problem. The first failures of each kind are shrunk (rows, columns
and cells removed while the problem persists) and written, as generated strings only, to
``--out``: the input file, ``repro.sh``, ``repro.py`` and ``problem.txt``.

``tests/test_fuzz.py`` imports the oracle below (input writers, output readers, ``check``) and
drives it with hypothesis strategies; this script is the long run.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier._errors import ClassifierError  # noqa: E402
from classifier.tagging import TEXT_COLUMN_CANDIDATES, output_columns, tag_file  # noqa: E402

FORMATS = ("csv", "tsv", "jsonl", "xlsx", "parquet")
EXTENSION = {fmt: f".{fmt}" for fmt in FORMATS}
SECRET = "SECRET"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
XML_NONCHARACTERS = re.compile("[\ufffe\uffff]")  # not allowed in XML 1.0 either
EXCEL_MAX_CELL = 32_767
HUGE = 100_000
# Problems a case can show, in the order of the printed table's columns.
CATEGORIES = (
    "crash",  # an exception other than the one-line user error, or a traceback
    "hang",  # no result within --timeout seconds
    "rejected",  # a clean error on input that is valid
    "accepted",  # exit code 0 on malformed input
    "bad_error",  # an error that is not one line, names no file or location, or wrong exit code
    "lost",  # fewer rows out than in
    "split",  # more rows out than in
    "shifted",  # cells moved to another column
    "reordered",  # rows out of order
    "cells",  # a cell read back different (beyond the documented changes)
    "formula",  # a cell or column name a spreadsheet would run as a formula
    "headers",  # input column names changed, missing or reordered
    "invalid",  # output unreadable or invalid (e.g. NaN in JSON Lines)
    "library",  # added columns disagree with load_model().classify_many
    "leaked",  # a SECRET marker of the input on standard error
)

# A made-up vocabulary, so that some texts carry themes (no corpus text, no real feedback).
WORDS = (
    "she listened", "never", "felt", "judged", "heard", "cancelled twice", "honest", "trust",
    "we agreed", "goals", "together", "not getting anywhere", "better", "worse", "rushed",
    "late again", "warm", "patient", "but", "really", "the sessions", "counsellor",
    "therapist", "talked about herself", "pointless", "helpful", "didn't", "I", "my", "no",
    ".", ",", "!", "?", "...", "n't", "NEG_x",
)  # fmt: skip
# Whole cells that readers and writers like to reinterpret.
SPECIAL_CELLS = (
    "", " ", "  ", "\t", "nan", "NaN", "None", "NULL", "null", "NA", "N/A", "#N/A", "n/a", "-",
    "0", "007", "00123", "+44 7700 900123", "-3.5", "1e5", "1,234", "1.0", "TRUE", "False",
    "=1+2", '=HYPERLINK("http://example.invalid","x")', "@SUM(A1:A2)", "+cmd|' /C x'!A0",
    "-2+3", "\t=1", "\r=1", "=", "'", "'=1", " =1", "\ufeff=1", "\x01=1+2", "\x00", "\r",
    "\n", "\r\n", '"', '""', ",", "\\", "\ufeff", "\u202e", "2024-01-01", "{}", "[]", "true",
    "_x000D_", "a_x0041_b",
)  # fmt: skip
# Pieces of hostile text: line breaks, NUL, BOM, bidi controls, combining marks, ZWJ emoji.
PIECES = (
    "\r", "\n", "\r\n", "\x00", "\t", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u2028",
    "\u2029", "\ufeff", "\u200b", "\u200d", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c",
    "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u061c", "e\u0301",
    "\u0301\u0302\u0303", "Z\u0351\u0352\u0353\u0354", "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f44d\U0001f3fd", "\u0645\u0631\u062d\u0628\u0627",
    "\u05e9\u05dc\u05d5\u05dd", "\uffff", "\ufffd", "\U0010ffff", '"', "'", ",", ";", "|", " ",
    "  ", "=", "+", "-", "@",
)  # fmt: skip
CATEGORY_NAMES = (
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
    "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn",
)  # fmt: skip
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")


class _Missing:
    """A JSON Lines key absent from a record (an empty cell in the output)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self):
        return "MISSING"  # one sentinel, also after pickling


MISSING = _Missing()


# ------------------------------------------------------------------------------- hostile text
_POOLS: dict[str, list[int]] = {}


def category_pools() -> dict[str, list[int]]:
    """Code points of every Unicode general category (built once, ~0.5 s)."""
    if not _POOLS:
        for code in range(sys.maxunicode + 1):
            _POOLS.setdefault(unicodedata.category(chr(code)), []).append(code)
    return _POOLS


def hostile_char(rng: random.Random, surrogates: bool = False) -> str:
    category = rng.choice(CATEGORY_NAMES)
    if category == "Cs" and not surrogates:
        category = "Cn"
    return chr(rng.choice(category_pools()[category]))


def hostile_text(rng: random.Random, surrogates: bool = False, huge: float = 0.0) -> str:
    """One hostile cell: special values, Unicode soup, phrases, formula starts, huge tokens."""
    r = rng.random()
    if r < huge:
        return rng.choice(("x", "\u00e9", "\U0001f600", "ab", "!")) * (HUGE // 2) + "y" * (
            HUGE // 2
        )
    if r < 0.18:
        return rng.choice(SPECIAL_CELLS)
    if r < 0.35:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 10)))
    else:
        parts = []
        for _ in range(rng.randint(1, 12)):
            p = rng.random()
            if p < 0.4:
                parts.append(hostile_char(rng, surrogates))
            elif p < 0.65:
                parts.append(rng.choice(PIECES))
            else:
                parts.append(rng.choice(WORDS) + rng.choice(("", " ")))
        text = "".join(parts)
    if rng.random() < 0.1:
        text = rng.choice(FORMULA_STARTS) + text
    return text


def mark(rng: random.Random, text: str, counter: list[int]) -> str:
    """``text`` with a ``SECRET<n>`` marker at its start, end or middle (or none)."""
    counter[0] += 1
    tag = f"{SECRET}{counter[0]}"
    where = rng.random()
    if where < 0.3:
        return text
    if where < 0.5:
        return tag + " " + text
    if where < 0.8:
        return text + " " + tag
    cut = rng.randint(0, len(text))
    return text[:cut] + tag + text[cut:]


def fit_encoding(text: str, encoding: str) -> str:
    """``text`` with the characters ``encoding`` cannot hold replaced by ``?``."""
    codec = "utf-8" if encoding.startswith("utf-8") else encoding
    return "".join(ch if _encodable(ch, codec) else "?" for ch in text)


def _encodable(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def excel_clean(text: str) -> str:
    """What an .xlsx cell can hold of ``text`` (README: control characters dropped, each line
    break a line feed)."""
    text = _xml_text(EXCEL_ILLEGAL.sub("", text))
    return text.encode("utf-8", "replace").decode("utf-8")


def xlsx_storable(text: str) -> str:
    """What an .xlsx input file can hold (openpyxl cuts a cell at 32,767 characters)."""
    return XML_NONCHARACTERS.sub("", excel_clean(text))[:EXCEL_MAX_CELL]


def no_surrogates(text: str) -> str:
    """A lone surrogate becomes "?" (README)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def number(n: int) -> str:
    """A regex for ``n`` as a message may write it: 12345 or 12,345."""
    return f"(?:{n}|{n:,})"


def is_formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.match(text)


# ------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    """A generated input table and how it is written and tagged.

    ``rows`` are lists of cells for csv/tsv/xlsx/parquet (a ragged row is malformed), and for
    jsonl records (dicts; a str is a raw line written as it is, e.g. not JSON).
    """

    kind: str
    fmt: str
    header: list | None
    rows: list
    text_column: str | None = "text"
    id_column: str | None = "id"
    chunk_size: int | None = None
    explain: bool = False
    encoding: str = "utf-8"  # of the written file
    encoding_option: str | None = None  # --encoding (None: the default)
    line_end: str = "\n"
    quote_all: bool = False
    final_newline: bool = True
    blank_lines: tuple = ()  # jsonl: blank lines before these record positions
    empty_as_blank: bool = False  # csv single column: an empty cell is an empty line
    ensure_ascii: bool = True
    unclosed: tuple | None = None  # csv: (row, column) whose field opens a quote never closed
    raw: bytes | None = None  # the file as it is (empty, garbage)
    undecodable_at: int | None = None  # csv/jsonl: about where to put an undecodable byte
    undecodable_line: tuple | None = None  # its line, counting any line break or LF only
    expect: str = "auto"  # "auto" (from the table), "error" or "either" (clean error allowed)

    def options(self) -> dict:
        return {
            "text_column": self.text_column,
            "chunk_size": self.chunk_size,
            "explain": self.explain,
            "encoding": self.encoding_option or "utf-8",
        }


# ------------------------------------------------------------------------------ input writers
def _field(value: str, delimiter: str, quote_all: bool, single: bool, empty_as_blank: bool) -> str:
    needs = any(ch in value for ch in (delimiter, '"', "\r", "\n"))
    if single and value == "" and not empty_as_blank:
        needs = True  # '""', not an empty line
    if quote_all or needs:
        return '"' + value.replace('"', '""') + '"'
    return value


def render_delimited(case: Case) -> tuple[str, list[int]]:
    """The file's text and the physical line number where each data row starts."""
    delimiter = "\t" if case.fmt == "tsv" else ","
    single = len(case.header) == 1
    lines, starts, line = [], [], 1
    for r, row in enumerate([case.header, *case.rows]):
        fields = []
        for c, value in enumerate(row):
            if case.unclosed == (r - 1, c):
                fields.append('"' + value.replace('"', ""))
            else:
                fields.append(_field(value, delimiter, case.quote_all, single, case.empty_as_blank))
        text = delimiter.join(fields)
        if r:
            starts.append(line)
        line += len(re.findall(r"\r\n|\r|\n", text)) + 1
        lines.append(text)
    body = case.line_end.join(lines)
    return body + (case.line_end if case.final_newline else ""), starts


def render_jsonl(case: Case) -> tuple[str, list[int]]:
    """The file's text and the physical line number of each record (or raw line)."""
    lines, numbers = [], []
    for i, record in enumerate(case.rows):
        lines += [" " if k % 2 else "" for k in range(case.blank_lines.count(i))]
        numbers.append(len(lines) + 1)
        if isinstance(record, str):
            lines.append(record)
        else:
            payload = {k: v for k, v in record.items() if v is not MISSING}
            ascii_only = case.ensure_ascii or _has_surrogate(payload)
            lines.append(json.dumps(payload, ensure_ascii=ascii_only))
    lines += ["" for _ in range(case.blank_lines.count(len(case.rows)))]
    return case.line_end.join(lines) + (case.line_end if case.final_newline else ""), numbers


def _has_surrogate(value) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def write_input(case: Case, folder: Path) -> Path:
    """Write the case's input file into ``folder``; return its path."""
    path = folder / f"input{EXTENSION[case.fmt]}"
    if case.raw is not None:
        path.write_bytes(case.raw)
    elif case.fmt in ("csv", "tsv", "jsonl"):
        text = render_jsonl(case)[0] if case.fmt == "jsonl" else render_delimited(case)[0]
        data = text.encode(case.encoding)
        if case.undecodable_at is not None:
            at = min(case.undecodable_at, len(data))
            # at a character boundary: after a line end (or at the start)
            boundary = max(data.rfind(b"\n", 0, at), data.rfind(b"\r", 0, at)) + 1
            if data[boundary - 1 : boundary + 1] == b"\r\n":
                boundary += 1
            data = data[:boundary] + b"\xff\xfe" + data[boundary:]
            case.undecodable_at = boundary
            before = data[:boundary].decode(case.encoding)
            case.undecodable_line = (
                len(re.findall(r"\r\n|\r|\n", before)) + 1,
                before.count("\n") + 1,
            )
        path.write_bytes(data)
    elif case.fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        for r, row in enumerate([case.header, *case.rows], start=1):
            for c, value in enumerate(row, start=1):
                if value is None or value == "":
                    continue
                cell = sheet.cell(row=r, column=c, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # a text starting with "=" is text here, not a formula
        book.save(path)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = list(zip(*case.rows, strict=True)) if case.rows else [[] for _ in case.header]
        arrays = [pa.array(list(values)) for values in columns]
        arrays = [a if a.type != pa.null() else a.cast(pa.string()) for a in arrays]
        table = pa.Table.from_arrays(arrays, names=list(case.header))
        pq.write_table(table, path, row_group_size=max(1, len(case.rows) // 3 or 1))
    return path


# ------------------------------------------------------------------------------ expectations
@dataclass
class Expected:
    """What tagging the case should do: succeed with these input columns and cells, or fail."""

    outcome: str  # "success", "error" or "either"
    where: str | None = None  # regex the error message must match (its location)
    forbid: str | None = None  # regex it must not match (a wrong location)
    warning: str | None = None  # regex a "Warning:" line on stderr must match (short rows)
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # input cells as the reader should see them
    texts: list = field(default_factory=list)  # what the library is given, per row


def expected(case: Case, out_fmt: str, themes: tuple[str, ...]) -> Expected:
    """The expected result of tagging ``case`` into ``out_fmt`` (see the module docstring)."""
    if case.raw is not None:
        return Expected("either" if case.expect == "either" else "error")
    if case.undecodable_at is not None:
        at, lines = case.undecodable_at, case.undecodable_line
        byte = f"(?:{number(at)}|{number(at + 1)})"  # counted from 0 or from 1
        line = f"(?:{number(lines[0])}|{number(lines[1])})"  # any line break, or LF only
        return Expected(
            "error", where=rf"byte {byte}\b|line {line}\b", forbid=rf"line (?!{line}\b)\d"
        )
    if case.fmt in ("csv", "tsv"):
        exp = _expected_delimited(case)
    elif case.fmt == "jsonl":
        exp = _expected_jsonl(case)
    else:
        exp = Expected("success", columns=list(case.header), rows=[list(r) for r in case.rows])
        if case.fmt == "xlsx":  # what the .xlsx file really holds (see write_input)
            exp.columns = ["" if v is None else _xml_text(v) for v in case.header]
            exp.rows = [["" if v is None else _xml_text(v) for v in r] for r in exp.rows]
            # A last column with neither a name nor a value is no column of the sheet at all
            while exp.columns and exp.columns[-1] == "" and all(r[-1] == "" for r in exp.rows):
                exp.columns.pop()
                exp.rows = [r[:-1] for r in exp.rows]
    if exp.outcome != "success":
        return exp
    if case.expect in ("error", "either"):
        exp.outcome = case.expect
    names = [str(c) for c in exp.columns]
    added = set(output_columns(themes, case.explain))
    if added & set(names):
        return Expected("error", where="column")
    if case.text_column is None:
        found = [n for n in names if n.strip().lower() in TEXT_COLUMN_CANDIDATES]
        if len(found) != 1:
            return Expected("error", where="column")
        text_index = names.index(found[0])
    elif case.text_column in names:
        text_index = names.index(case.text_column)
    else:
        return Expected("error", where="column")
    if out_fmt == "parquet" and exp.outcome == "success" and _mixed_kinds(exp.rows):
        exp.outcome = "either"  # one type per Parquet column: a clean error is fine too
    exp.texts = [row[text_index] for row in exp.rows]
    exp.texts = [None if t is MISSING else t for t in exp.texts]
    if out_fmt == "xlsx":
        for r, row in enumerate(exp.rows):
            for value in row:
                if isinstance(value, str) and len(excel_clean(value)) > EXCEL_MAX_CELL:
                    return Expected("error", where=rf"row {r + 1}\b.*column|column.*row {r + 1}\b")
    return exp


def _as_read(value):
    """A value as it comes out of a JSON file: surrogate pairs joined, lone ones as "?"."""
    value = json.loads(json.dumps(value))
    if isinstance(value, dict):
        return {no_surrogates(k): _as_read(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_read(v) for v in value]
    return no_surrogates(value) if isinstance(value, str) else value


def _mixed_kinds(rows: list) -> bool:
    """Whether a column holds values of several JSON kinds (nulls and missing aside)."""
    for column in zip(*rows, strict=True) if rows else ():
        # (whole numbers and decimals too: Parquet's column type is set by the first chunk)
        kinds = {type(v) for v in column if v is not None and v is not MISSING}
        if len(kinds) > 1:
            return True
    return False


def _xml_text(value):
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _expected_delimited(case: Case) -> Expected:
    _, starts = render_delimited(case)
    width = len(case.header)
    if case.unclosed is not None:
        r = case.unclosed[0]
        where = rf"line {number(starts[r])}\b|row {number(r + 1)}\b|after data row {number(r)}\b"
        return Expected("error", where=where)
    for r, row in enumerate(case.rows):
        if len(row) > width:
            return Expected("error", where=rf"line {number(starts[r])}\b|row {number(r + 1)}\b")
    # README: a short row is read with its missing cells empty, and a warning names its line
    rows = [list(row) + [""] * (width - len(row)) for row in case.rows]
    short = [r for r, row in enumerate(case.rows) if len(row) < width]
    warning = rf"line {number(starts[short[0]])}\b" if short else None
    return Expected("success", columns=list(case.header), rows=rows, warning=warning)


def _expected_jsonl(case: Case) -> Expected:
    """Read as the tagger reads: line by line, a chunk at a time; the first error wins."""
    _, numbers = render_jsonl(case)
    chunk = case.chunk_size or 2000
    columns: list | None = None
    records, pending = [], []

    def close_chunk() -> Expected | None:
        nonlocal columns
        if columns is None:  # the first chunk gives the columns and the text column
            columns = []
            for _, _, record in pending:
                columns += [k for k, v in record.items() if v is not MISSING and k not in columns]
            if case.text_column is not None and case.text_column not in columns:
                return Expected("error", where="column")
            found = [c for c in columns if c.strip().lower() in TEXT_COLUMN_CANDIDATES]
            if case.text_column is None and len(found) != 1:
                return Expected("error", where="column")
            return None
        for n, i, record in pending:
            if any(k not in columns and v is not MISSING for k, v in record.items()):
                return Expected("error", where=rf"record {number(n + 1)}\b|line {numbers[i]}\b")
        return None

    for i, record in enumerate(case.rows):
        if isinstance(record, str):
            try:
                parsed = json.loads(record)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return Expected("error", where=rf"line {number(numbers[i])}\b")
            record = parsed
        pending.append((len(records), i, record))
        records.append(record)
        if len(pending) == chunk:
            error = close_chunk()
            if error:
                return error
            pending = []
    if not records:
        return Expected("error")
    if pending and (error := close_chunk()):
        return error
    rows = []
    for record in records:
        row = []
        for key in columns:
            value = record.get(key, MISSING)
            row.append(_as_read(value) if isinstance(value, str | dict | list) else value)
        rows.append(row)
    names = [_as_read(c) for c in columns]
    return Expected("success", columns=names, rows=rows)


# --------------------------------------------------------------------------------- running
@dataclass
class Outcome:
    via: str  # "library" (tag_file), "cli" (CliRunner) or "subprocess"
    exit_code: int | None  # None: an exception escaped
    stderr: str
    output: Path
    crash: str = ""  # the traceback, if any
    seconds: float = 0.0


def tag_in_process(source: str, output: str, model_path, options: dict) -> tuple:
    """``tag_file`` as the CLI runs it: (exit code or None if it crashed, stderr, traceback)."""
    try:
        summary = tag_file(source, output, model_path=model_path, force=True, **options)
        warnings = getattr(summary, "warnings", list)()  # what the CLI prints to stderr
        return 0, "".join(w + "\n" for w in [*warnings, summary.render()]), ""
    except ClassifierError as exc:
        return 1, f"Error: {exc}\n", ""
    except Exception as exc:  # noqa: BLE001 - a crash is what we are counting
        return None, "", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def run_library(case: Case, out_fmt: str, folder: Path, model_path, worker=None) -> Outcome:
    """Tag with ``tag_file`` in this process, or in ``worker`` (a :class:`Worker`)."""
    source = write_input(case, folder)
    output = folder / f"output{EXTENSION[out_fmt]}"
    started = time.perf_counter()
    if worker is None:
        result = tag_in_process(str(source), str(output), model_path, case.options())
    else:
        extra = source.stat().st_size / 100_000  # a second per 100 kB (big files are slow)
        result = worker.tag(str(source), str(output), case.options(), extra)
    return Outcome("library", *result[:2], output, result[2], time.perf_counter() - started)


def _worker_loop(connection, model_path) -> None:
    from classifier.persistence import load_model

    load_model(model_path)
    while True:
        job = connection.recv()
        if job is None:
            return
        connection.send(tag_in_process(job[0], job[1], model_path, job[2]))


class Worker:
    """A process that runs ``tag_file`` calls, killed and replaced when one takes too long.

    (spaCy's tokenizer runs in C: a signal cannot interrupt a pathological text.)
    """

    def __init__(self, model_path, timeout: float):
        self.model_path, self.timeout, self._process = str(model_path), timeout, None

    def _start(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_worker_loop, args=(child, self.model_path), daemon=True
        )
        self._process.start()

    def tag(self, source: str, output: str, options: dict, extra: float = 0.0) -> tuple:
        fresh = self._process is None or not self._process.is_alive()
        if fresh:
            self._start()
        self._connection.send((source, output, options))
        if self._connection.poll(self.timeout + extra + 60 * fresh):  # (+ start-up)
            try:
                return self._connection.recv()
            except EOFError:
                self.close()
                return None, "", "the worker process died (killed by the system?)"
        self.close()
        return None, "", f"timed out after {self.timeout:.0f} s"

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._process = None


def cli_arguments(case: Case, source: Path, output: Path, model_path) -> list[str]:
    args = ["tag", str(source), "-o", str(output), "--force", "--model", str(model_path)]
    if case.text_column is not None:
        args += ["--text-column", case.text_column]
    if case.chunk_size:
        args += ["--chunk-size", str(case.chunk_size)]
    if case.explain:
        args.append("--explain")
    if case.encoding_option:
        args += ["--encoding", case.encoding_option]
    return args


def run_subprocess(case: Case, out_fmt: str, folder: Path, model_path) -> Outcome:
    """Tag through a real ``python -m classifier tag`` process."""
    source = write_input(case, folder)
    output = folder / f"output{EXTENSION[out_fmt]}"
    command = [sys.executable, "-m", "classifier", *cli_arguments(case, source, output, model_path)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, timeout=300, cwd=folder)
    except subprocess.TimeoutExpired:
        return Outcome("subprocess", None, "", output, "timed out after 300 s")
    stderr = done.stderr.decode("utf-8", "replace")
    crash = stderr if "Traceback (most recent call last)" in stderr else ""
    code = None if crash else done.returncode
    return Outcome("subprocess", code, stderr, output, crash, time.perf_counter() - started)


# ------------------------------------------------------------------------------ output readers
class Unreadable(Exception):
    pass


def read_output(path: Path, fmt: str) -> tuple[list, list[list], list[str]]:
    """Columns, rows (plain Python values) and format problems of a tagged file."""
    notes: list[str] = []
    if not path.exists():
        raise Unreadable("no output file")
    if fmt in ("csv", "tsv"):
        csv.field_size_limit(sys.maxsize)  # a cell of 100,000 characters is fine
        with open(path, encoding="utf-8", newline="") as handle:
            table = list(csv.reader(handle, delimiter="\t" if fmt == "tsv" else ",", strict=True))
        if not table:
            raise Unreadable("empty output")
        return table[0], table[1:], notes
    if fmt == "jsonl":
        text = path.read_text(encoding="utf-8")
        columns, rows = None, []
        for number, line in enumerate(text.split("\n")[:-1], start=1):
            try:
                record = json.loads(line, parse_constant=_reject_constant)
            except ValueError:
                notes.append(f"line {number}: not valid JSON (e.g. NaN)")
                record = json.loads(line, parse_constant=lambda name: None)
            keys = list(record)
            if columns is None:
                columns = keys
            elif keys != columns:
                notes.append(f"line {number}: keys differ from the first record's")
            rows.append([record.get(k, MISSING) for k in columns])
        if text and not text.endswith("\n"):
            notes.append("no final line end")
        return columns or [], rows, notes
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        rows = [list(r.values()) for r in table.to_pylist()]
        return table.column_names, rows, notes
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    sheet = book.worksheets[0]
    table = []
    for r, row in enumerate(sheet.iter_rows()):
        values = []
        for c, cell in enumerate(row):
            if getattr(cell, "data_type", None) == "f":
                notes.append(f"formula: row {r}, column {c}: {cell.value!r}"[:200])
            values.append(getattr(cell, "value", None))
        table.append(values)
    book.close()
    if not table:
        raise Unreadable("empty sheet")
    width = len(table[0])
    return table[0], [row + [None] * (width - len(row)) for row in table[1:]], notes


def _reject_constant(name):
    raise ValueError(name)


# --------------------------------------------------------------------------------- the oracle
def output_cell(value, fmt: str) -> list:
    """The values a written cell may read back as (README's documented changes only)."""
    if value is MISSING or value is None:
        return {"csv": [""], "tsv": [""], "xlsx": [None, ""]}.get(fmt, [None])
    # (Parquet holds one type per column: a column of mixed values may come back as text.)
    if isinstance(value, bool):
        if fmt in ("csv", "tsv"):
            return [str(value), str(value).lower()]
        return [value] + [str(value), str(value).lower()] * (fmt == "parquet")
    if isinstance(value, int):
        if fmt in ("csv", "tsv"):
            return [str(value)]
        # (a number in a sheet is a double; Parquet may hold a column of ints and floats)
        exact_float = [float(value)] * (fmt == "xlsx" or (fmt == "parquet" and abs(value) < 2**53))
        return [value] + [str(value)] * (fmt in ("xlsx", "parquet")) + exact_float
    if isinstance(value, float):
        if fmt in ("csv", "tsv"):
            return [repr(value), str(value), format(value, "g")]
        return [value] + [repr(value), str(value)] * (fmt == "parquet")
    if isinstance(value, dict | list):
        if fmt in ("jsonl", "parquet"):
            return [value, json.dumps(value), json.dumps(value, ensure_ascii=False)]
        texts = [json.dumps(value), json.dumps(value, ensure_ascii=False), str(value)]
        return [output_cell(t, fmt)[0] for t in texts]
    text = no_surrogates(value)
    if fmt == "xlsx":
        text = excel_clean(text)
        if XML_NONCHARACTERS.search(text):  # U+FFFE, U+FFFF: dropped or replaced, as you like
            texts = {XML_NONCHARACTERS.sub(r, text) for r in ("", "?", "\ufffd")}
            return [v for t in sorted(texts) for v in output_cell(t, fmt)]
    if fmt in ("csv", "tsv"):  # (Excel output: a text cell, unchanged; see read_output)
        if is_formula(text):
            text = "'" + text
        elif text.startswith(FORMULA_STARTS):  # a plain number such as -3.5: either is fine
            return [text, "'" + text]
    if fmt == "xlsx" and text == "":
        return [None, ""]
    return [text]


def _same(observed, accepted: list) -> bool:
    for value in accepted:
        if isinstance(value, float) and isinstance(observed, float):
            if observed == value or (math.isnan(value) and math.isnan(observed)):
                return True
        elif isinstance(value, float) and type(observed) is int and observed == value:
            return True  # a sheet's number 9007199254740992.0 reads back as an int
        elif type(observed) is type(value) and observed == value:
            return True
        elif isinstance(value, str) and isinstance(observed, str) and observed == value:
            return True
    if isinstance(observed, str) and any(isinstance(v, float) for v in accepted):
        try:
            return float(observed) in [v for v in accepted if isinstance(v, float)]
        except ValueError:
            return False
    return False


@dataclass
class Problem:
    category: str
    detail: str


def check(case: Case, out_fmt: str, outcome: Outcome, model) -> list[Problem]:
    """Every way in which ``outcome`` breaks the README's promises for ``case``."""
    problems: list[Problem] = []
    exp = expected(case, out_fmt, model.themes_)
    secrets = set(re.findall(SECRET + r"\d+", outcome.stderr + outcome.crash))
    if secrets:
        problems.append(Problem("leaked", f"on stderr: {sorted(secrets)[:3]}"))
    if outcome.exit_code is None:
        last = outcome.crash.strip().splitlines()[-1:] or [""]
        category = "hang" if outcome.crash.startswith("timed out") else "crash"
        problems.append(Problem(category, last[0][:300]))
        return problems
    if outcome.exit_code != 0:
        problems += _check_error(case, exp, outcome)
        return problems
    if exp.outcome == "error":
        problems.append(Problem("accepted", f"exit 0; expected an error ({exp.where or ''})"))
        return problems
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if not any("rows read" in line for line in lines):
        problems.append(Problem("bad_error", "no summary on stderr after success"))
    warnings = [line for line in lines if line.startswith("Warning:")]
    if exp.warning and not any(re.search(exp.warning, w) for w in warnings):
        problems.append(Problem("bad_error", f"no warning matching /{exp.warning}/: {warnings}"))
    try:
        columns, rows, notes = read_output(outcome.output, out_fmt)
    except Exception as exc:  # noqa: BLE001
        problems.append(Problem("invalid", f"cannot read the output: {type(exc).__name__}: {exc}"))
        return problems
    for note in notes:
        problems.append(Problem("formula" if note.startswith("formula") else "invalid", note))
    problems += _check_table(case, exp, out_fmt, columns, rows, model)
    return problems


def _check_error(case: Case, exp: Expected, outcome: Outcome) -> list[Problem]:
    problems = []
    if exp.outcome == "success":
        problems.append(Problem("rejected", outcome.stderr.strip()[:300]))
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if outcome.exit_code == 1:
        if len(lines) != 1 or not lines[0].startswith("Error: "):
            problems.append(Problem("bad_error", f"not one 'Error:' line: {lines[:3]}"))
    elif outcome.exit_code == 2:
        if not any("Error" in line for line in lines):
            problems.append(Problem("bad_error", f"usage error without a message: {lines[:3]}"))
    else:
        problems.append(Problem("bad_error", f"exit code {outcome.exit_code}"))
    message = " ".join(lines)
    names_file = any(f"{name}." in message for name in ("input", "output"))
    if not names_file and exp.outcome != "success":
        problems.append(Problem("bad_error", f"does not name the file: {message[:200]}"))
    if exp.where and exp.outcome != "success" and not re.search(exp.where, message):
        problems.append(
            Problem("bad_error", f"location: expected /{exp.where}/ in: {message[:200]}")
        )
    elif exp.forbid and re.search(exp.forbid, message):
        problems.append(Problem("bad_error", f"wrong location (/{exp.forbid}/): {message[:200]}"))
    return problems


def _check_table(case, exp, out_fmt, columns, rows, model) -> list[Problem]:
    problems = []
    n_in = len(exp.columns)
    added = output_columns(model.themes_, case.explain)
    added = ["classification"] if out_fmt == "jsonl" else added
    want_header = [output_cell(str(c), out_fmt) for c in exp.columns]
    if out_fmt == "jsonl" and not rows:
        return problems  # no record, no keys: nothing to compare
    got_in, got_added = list(columns[: len(columns) - len(added)]), list(columns[-len(added) :])
    if got_added != added:
        problems.append(Problem("headers", f"added columns {got_added} != {added}"))
    diff = [
        (i, w[0], g)
        for i, (w, g) in enumerate(zip(want_header, got_in + [MISSING] * n_in, strict=False))
        if not _same(g, w)
    ]
    runnable = [d for d in diff if _runs_as_formula(d[1], d[2], out_fmt)]
    if runnable:
        problems.append(Problem("formula", f"column name(s) {runnable[:3]!r}"[:400]))
    if len(got_in) != n_in or len(runnable) < len(diff):
        problems.append(Problem("headers", f"input columns differ: {diff[:3]!r}"[:400]))
    if len(rows) < len(exp.rows):
        problems.append(Problem("lost", f"{len(exp.rows)} rows in, {len(rows)} out"))
    elif len(rows) > len(exp.rows):
        problems.append(Problem("split", f"{len(exp.rows)} rows in, {len(rows)} out"))
    if any(p.category in ("lost", "split") for p in problems) or len(got_in) != n_in:
        return problems
    names = [str(c) for c in exp.columns]
    if case.id_column in names:
        k = names.index(case.id_column)
        accepted = [output_cell(r[k], out_fmt) for r in exp.rows]
        want_ids, got_ids = [a[0] for a in accepted], [r[k] for r in rows]
        same = all(_same(g, a) for g, a in zip(got_ids, accepted, strict=True))
        if not same and sorted(map(str, got_ids)) == sorted(map(str, want_ids)):
            problems.append(Problem("reordered", f"ids {got_ids[:6]!r}"))
            return problems
    shifted = changed = 0
    first = runnable = None
    for r, (want_row, got_row) in enumerate(zip(exp.rows, rows, strict=True)):
        for c, value in enumerate(want_row):
            accepted = output_cell(value, out_fmt)
            if _same(got_row[c], accepted):
                continue
            if _runs_as_formula(accepted[0], got_row[c], out_fmt):
                runnable = runnable or (r, names[c], got_row[c])
                continue
            others = [output_cell(v, out_fmt) for j, v in enumerate(want_row) if j != c]
            moved = isinstance(got_row[c], str) and len(got_row[c]) > 1
            if moved and any(_same(got_row[c], o) for o in others):
                shifted += 1
            else:
                changed += 1
            if first is None:
                first = (r, names[c], value, got_row[c])
    if runnable:
        problems.append(Problem("formula", f"cell(s) not neutralised, first {runnable!r}"[:400]))
    if shifted:
        problems.append(
            Problem("shifted", f"{shifted} cell(s); first: row, column, in, out {first!r}"[:400])
        )
    elif changed:
        problems.append(
            Problem("cells", f"{changed} cell(s); first: row, column, in, out {first!r}"[:400])
        )
    problems += _check_library(case, exp, out_fmt, rows, n_in, model)
    return problems


def _runs_as_formula(wanted, got, out_fmt: str) -> bool:
    """CSV/TSV: ``got`` is the formula ``wanted`` without its neutralising apostrophe."""
    return (
        out_fmt in ("csv", "tsv")
        and isinstance(wanted, str)
        and isinstance(got, str)
        and wanted == "'" + got
        and is_formula(got)
    )


def _check_library(case, exp, out_fmt, rows, n_in, model) -> list[Problem]:
    """The added columns against ``classify_many`` on the same texts."""
    predictions = model.classify_many(exp.texts, explain=case.explain)
    themes, (positive, _) = model.themes_, model.polarities_
    bad = []
    for r, (prediction, row) in enumerate(zip(predictions, rows, strict=True)):
        if out_fmt == "jsonl":
            got = row[n_in] if len(row) > n_in else None
            if not _close(got, prediction.to_dict()):
                bad.append((r, "classification"))
            continue
        cells = dict(zip(output_columns(themes, case.explain), row[n_in:], strict=False))
        marks = [f"{t}{'+' if p == positive else '-'}" for t, p in prediction.labels.items()]
        want = {"themes": "; ".join(marks), "status": prediction.status}
        for theme in themes:
            want[theme] = prediction.labels.get(theme, "")
        for name, value in want.items():
            got = cells.get(name)
            if (got or "") != value:
                bad.append((r, name))
        for theme in themes:
            got = cells.get(f"{theme}_score")
            score = prediction.scores.get(theme)
            if score is None:
                if got not in ("", None) and not (isinstance(got, float) and math.isnan(got)):
                    bad.append((r, f"{theme}_score"))
            elif got in ("", None) or not abs(float(got) - score) <= 0.0005 + 1e-9:
                bad.append((r, f"{theme}_score"))
        if case.explain:
            evidence = {t.theme: t.evidence for t in prediction.themes}
            for theme in themes:
                got = cells.get(f"{theme}_evidence")
                want = output_cell(evidence.get(theme, ""), out_fmt)
                if not _same(got, want):
                    bad.append((r, f"{theme}_evidence"))
    if bad:
        return [Problem("library", f"{len(bad)} cell(s) differ, first {bad[:3]}")]
    return []


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9
    return type(a) is type(b) and a == b


# -------------------------------------------------------------------------------- generators
def _header_name(rng: random.Random, taken: set) -> str:
    for _ in range(100):
        r = rng.random()
        if r < 0.3:
            name = rng.choice(WORDS).strip() or "w"
        elif r < 0.5:
            name = rng.choice(("007", "nan", "None", "True", "1.5", "2024-01-01", "Unnamed: 0"))
        else:
            name = "".join(
                rng.choice((hostile_char(rng), rng.choice(PIECES), rng.choice("abc ,\"'")))
                for _ in range(rng.randint(1, 6))
            )
        name = name.replace("\r", "").replace("\n", " ") if rng.random() < 0.7 else name
        if (
            name
            and name not in taken
            and not name.startswith(FORMULA_STARTS)
            and not name.startswith("\ufeff")
            and name.strip().lower() not in TEXT_COLUMN_CANDIDATES
            and name.strip()
        ):
            return name
    return f"extra{len(taken)}"


def _reserved(model_themes) -> set:
    return set(output_columns(model_themes, True)) | {"classification", "id", "text"}


def gen_valid(rng, fmt, themes, huge=0.001) -> Case:
    counter = [rng.randrange(10**6)]
    n_rows = rng.choice((0, 1, 1, 2, 3, 4, 5, 8, 13, 30))
    taken = set(_reserved(themes))
    extras = []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        extras.append(_header_name(rng, taken))
        taken.add(extras[-1])
    header = ["id", "text", *extras]
    rng.shuffle(header)
    surrogates = fmt == "jsonl"
    rows = []
    for i in range(n_rows):
        row = []
        for name in header:
            if name == "id":
                row.append(f"{i:03d}")
            elif name == "text":
                row.append(mark(rng, hostile_text(rng, surrogates, huge), counter))
            else:
                row.append(mark(rng, hostile_text(rng, surrogates), counter))
        rows.append(row)
    case = Case("valid", fmt, header, rows, chunk_size=rng.choice((None, 1, 2, 3, 7)))
    case.explain = rng.random() < 0.2
    if rng.random() < 0.15:
        case.text_column = None  # detected: "text" is the one candidate
    return _dress(rng, case)


def _dress(rng: random.Random, case: Case) -> Case:
    """Format-specific clothes: line ends, quoting, jsonl records, xlsx/parquet values."""
    if case.fmt in ("csv", "tsv"):
        case.line_end = rng.choice(("\n", "\r\n", "\r"))
        case.quote_all = rng.random() < 0.2
        case.final_newline = rng.random() < 0.85
        if rng.random() < 0.1:
            case.encoding = "utf-8-sig"  # a BOM, read with the default encoding
    elif case.fmt == "jsonl":
        records = []
        for row in case.rows:
            pairs = list(zip(case.header, row, strict=True))
            if rng.random() < 0.3:
                rng.shuffle(pairs)
            record = {}
            for key, value in pairs:
                if key != "id" and rng.random() < 0.1:
                    value = MISSING
                record[key] = value
            records.append(record)
        # keys that no record of the first chunk has may not appear later
        chunk = case.chunk_size or 2000
        known = {k for r in records[:chunk] for k, v in r.items() if v is not MISSING}
        for record in records[chunk:]:
            for key in list(record):
                if key not in known:
                    record[key] = MISSING
        case.rows, case.header = records, None
        case.line_end = rng.choice(("\n", "\n", "\r\n"))
        case.final_newline = rng.random() < 0.85
        case.ensure_ascii = rng.random() < 0.5
        case.blank_lines = tuple(
            rng.randrange(len(records) + 1) for _ in range(rng.choice((0, 0, 1, 2)))
        )
    elif case.fmt == "xlsx":
        case.rows = [[xlsx_storable(v) if isinstance(v, str) else v for v in r] for r in case.rows]
        case.header = [xlsx_storable(v) for v in case.header]
    elif case.fmt == "parquet":
        case.rows = [[None if rng.random() < 0.05 else v for v in r] for r in case.rows]
        k = case.header.index("id") if "id" in case.header else None
        for i, row in enumerate(case.rows):
            if k is not None:
                row[k] = f"{i:03d}"
    return case


def gen_types(rng, fmt, themes) -> Case:
    """JSON Lines (or Parquet) columns of ints, floats, bools, nulls and strings, mixed."""
    fmt = "jsonl" if fmt not in ("jsonl", "parquet") else fmt
    n_rows = rng.choice((1, 2, 3, 5, 8))
    pools = {
        "int": lambda: rng.choice((0, 1, -7, 7, 2**53 + 1, 12345678901234567, -(2**63))),
        "float": lambda: rng.choice((0.1, 1.5, -0.0, 1e300, 2.5e-8)),
        "bool": lambda: rng.random() < 0.5,
        "str": lambda: rng.choice(("007", "x", "", "1", "nan", "+44 7700 900123")),
    }
    header = ["id", "text", "n", "m"]
    kinds = {"n": rng.choice(list(pools)), "m": rng.choice(list(pools))}
    id_kind = rng.choice(("int", "str"))
    rows = []
    for i in range(n_rows):
        cells = {"id": i + 1 if id_kind == "int" else f"{i:03d}"}
        cells["text"] = rng.choice((" ".join(rng.choice(WORDS) for _ in range(4)), None, 5))
        for name, kind in kinds.items():
            if fmt == "jsonl" and rng.random() < 0.25:
                kind = rng.choice(list(pools))  # the type changes down the column
            cells[name] = None if rng.random() < 0.3 else pools[kind]()
        rows.append([cells[h] for h in header])
    case = Case("types", fmt, header, rows, chunk_size=rng.choice((None, 1, 2)))
    if fmt == "parquet":
        for c, name in enumerate(header):  # one Arrow type per column
            kind = id_kind if name == "id" else kinds.get(name, "str")
            for row in case.rows:
                if name not in ("id", "text") and row[c] is not None:
                    row[c] = pools[kind]()
                elif name == "text" and row[c] is not None and not isinstance(row[c], str):
                    row[c] = None
        return case
    return _dress(rng, case)


def gen_nested(rng, fmt, themes) -> Case:
    """JSON Lines values that are objects and arrays."""
    case = gen_valid(rng, "jsonl", themes, huge=0)
    values = ({"a": 1}, [1, "x"], [], {}, {"k": [None, {"z": "SECRET0"}]}, ["\ud800"])
    for record in case.rows:
        record["nested"] = rng.choice(values) if rng.random() < 0.7 else "plain"
    case.kind = "nested"
    return case


def gen_jsonl_new_key(rng, fmt, themes) -> Case:
    case = gen_valid(rng, "jsonl", themes, huge=0)
    while len(case.rows) < 3:
        case = gen_valid(rng, "jsonl", themes, huge=0)
    case.chunk_size = rng.randint(1, len(case.rows) - 1)
    at = rng.randrange(case.chunk_size, len(case.rows))
    case.rows[at]["brand new key"] = "v"
    case.kind = "jsonl_new_key"
    return case


def gen_jsonl_bad_line(rng, fmt, themes) -> Case:
    case = gen_valid(rng, "jsonl", themes, huge=0)
    bad = rng.choice(
        ('{"id": "x", "text": "SECRET0 unterminated', "[1, 2]", '"SECRET0 a string"', "42",
         "not json SECRET0", '{"id": 1,}', "null", "\ufeff{}", '{"text": NaN-SECRET0}')
    )  # fmt: skip
    case.rows.insert(rng.randint(0, len(case.rows)), bad)
    case.kind = "jsonl_bad_line"
    return case


def gen_ragged(rng, fmt, themes, long: bool) -> Case:
    fmt = fmt if fmt in ("csv", "tsv") else "csv"
    case = gen_valid(rng, fmt, themes, huge=0)
    while not case.rows:
        case = gen_valid(rng, fmt, themes, huge=0)
    counter = [0]
    how_many = 1 if rng.random() < 0.6 else len(case.rows)  # one row, or every row
    start = rng.randrange(len(case.rows))
    for r in range(start, min(len(case.rows), start + how_many)):
        if long:
            case.rows[r].append(mark(rng, hostile_text(rng), counter))
        else:
            case.rows[r].pop()  # gen_valid has at least the id and text columns
            if not "".join(case.rows[r]).strip():  # not a blank line (see gen_single_column)
                case.rows[r][0] = "x"
    case.kind = "ragged_long" if long else "ragged_short"
    return case


def gen_unclosed(rng, fmt, themes) -> Case:
    fmt = fmt if fmt in ("csv", "tsv") else "csv"
    case = gen_valid(rng, fmt, themes, huge=0)
    while not case.rows:
        case = gen_valid(rng, fmt, themes, huge=0)
    r = rng.randrange(len(case.rows))
    case.unclosed = (r, rng.randrange(len(case.header)))
    case.quote_all = False
    # no quote, delimiter or line break after it, so that nothing can close the quote
    delimiter = "\t" if fmt == "tsv" else ","
    for row in case.rows[r:]:
        for c, value in enumerate(row):
            for ch in ('"', delimiter, "\r", "\n"):
                value = value.replace(ch, "")
            row[c] = value
    case.kind = "unclosed_quote"
    return case


def gen_bad_bytes(rng, fmt, themes) -> Case:
    fmt = fmt if fmt in ("csv", "tsv", "jsonl") else "csv"
    case = gen_valid(rng, fmt, themes, huge=0)
    size = len((render_jsonl if fmt == "jsonl" else render_delimited)(case)[0].encode())
    if rng.random() < 0.3:  # far into a bigger file
        case = gen_valid(rng, fmt, themes, huge=0)
        width = len(case.header or ["id", "text"])
        filler = [[f"{i:06d}", "fine words here", *["x"] * (width - 2)]
                  for i in range(20000)]  # fmt: skip
        if fmt != "jsonl":
            order = {"id": 0, "text": 1}
            case.rows = [
                [row[order[h]] if h in order else "x" for h in case.header] for row in filler
            ] + case.rows
            size = len(render_delimited(case)[0].encode())
        else:
            case.rows = [{"id": r[0], "text": r[1]} for r in filler] + case.rows
            size = len(render_jsonl(case)[0].encode())
    case.undecodable_at = rng.randint(size // 2, size)
    case.chunk_size = None if len(case.rows) > 1000 else case.chunk_size
    case.kind = "bad_bytes"
    return case


def gen_encoding(rng, fmt, themes) -> Case:
    fmt = fmt if fmt in ("csv", "tsv") else rng.choice(("csv", "tsv"))
    case = gen_valid(rng, fmt, themes, huge=0)
    case.encoding = rng.choice(ENCODINGS)
    case.encoding_option = case.encoding if rng.random() < 0.8 else None
    if case.encoding_option is None and case.encoding not in ("utf-8", "utf-8-sig"):
        case.encoding_option = case.encoding
    case.header = [fit_encoding(h, case.encoding) for h in case.header]
    if len(set(case.header)) != len(case.header) or any(not h.strip() for h in case.header):
        case.header = ["id", "text"] + [f"c{i}" for i in range(len(case.header) - 2)]
        case.rows = [[f"{i:03d}", r[1], *r[2:]] for i, r in enumerate(case.rows)]
    case.rows = [[fit_encoding(v, case.encoding) for v in row] for row in case.rows]
    case.kind = "encoding"
    return case


def gen_headers(rng, fmt, themes) -> Case:
    """Duplicate, empty, formula, whitespace and data-looking column names."""
    case = gen_valid(rng, fmt if fmt != "jsonl" else "csv", themes, huge=0)
    trouble = rng.choice(("duplicate", "empty", "formula", "formula", "whitespace", "data"))
    name = {
        "duplicate": rng.choice(("id", "text", "x")),
        "empty": "",
        "formula": rng.choice(
            ('=HYPERLINK("http://example.invalid","x")', "+1", "-x", "@SUM(A1)", "\tx", "=1+2")
        ),
        "whitespace": rng.choice((" ", "  x ", "\u00a0", "\u3000")),
        "data": rng.choice(("007", "1", "nan", "NULL", "+44 7700 900123", "2024-01-01")),
    }[trouble]
    if trouble == "duplicate" and name == "x":
        case.header.append("x")
        for row in case.rows:
            row.append("x-value")
    at = rng.randint(0, len(case.header))
    case.header.insert(at, name)
    for row in case.rows:
        row.insert(at, rng.choice(("", "v", "007", "=1")))
    if case.fmt == "xlsx":
        case.header = [xlsx_storable(h) for h in case.header]
    if case.fmt == "parquet" and trouble in ("duplicate",):
        case.fmt = "csv"
        case.rows = [["" if v is None else v for v in row] for row in case.rows]
    if case.fmt == "parquet":
        _dress(rng, case)
    if trouble in ("duplicate", "empty"):
        case.expect = "either"  # kept as they are, or a clean error naming the column
    case.kind = f"header_{trouble}"
    return case


def gen_headerless(rng, fmt, themes) -> Case:
    """A file without a header row: its first row of feedback must not reach stderr."""
    fmt = fmt if fmt in ("csv", "tsv", "xlsx") else "csv"
    counter = [rng.randrange(10**6)]
    n = rng.randint(1, 4)
    rows = [[f"{i:03d}", f"{SECRET}{counter[0] + i} " + " ".join(rng.sample(WORDS, 5))]
            for i in range(n + 1)]  # fmt: skip
    case = Case("headerless", fmt, rows[0], rows[1:], text_column=None, id_column=None)
    return _dress(rng, case)


def gen_single_column(rng, fmt, themes) -> Case:
    """One text column as Excel exports it: an empty cell is an empty line."""
    fmt = fmt if fmt in ("csv", "tsv") else "csv"
    counter = [0]
    rows = []
    for _ in range(rng.randint(2, 8)):
        rows.append([mark(rng, hostile_text(rng), counter)])
    for _ in range(rng.randint(1, 2)):
        rows.insert(rng.randint(1, len(rows) - 1), [rng.choice(("", "", " ", "  "))])
    case = Case("single_column", fmt, [rng.choice(("text", "feedback", "Comment"))], rows)
    case.text_column, case.id_column = None, None
    case.empty_as_blank = True
    case.line_end = rng.choice(("\n", "\r\n"))
    return case


def gen_empty(rng, fmt, themes) -> Case:
    return Case("empty_file", fmt, None, [], raw=b"")


def gen_header_only(rng, fmt, themes) -> Case:
    fmt = fmt if fmt != "jsonl" else "csv"
    case = Case("header_only", fmt, ["id", "text"], [])
    case.final_newline = rng.random() < 0.5
    return _dress(rng, case) if fmt != "jsonl" else case


def gen_garbage(rng, fmt, themes) -> Case:
    fmt = fmt if fmt in ("xlsx", "parquet", "jsonl") else "xlsx"
    data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
    if rng.random() < 0.3:
        data = (b"PK\x03\x04" if fmt == "xlsx" else b"PAR1") + data
    if fmt == "jsonl":
        data = b"{" + data
    return Case("garbage", fmt, None, [], raw=data + b"SECRET0")


def gen_clash(rng, fmt, themes) -> Case:
    case = gen_valid(rng, fmt if fmt != "jsonl" else "csv", themes, huge=0)
    name = rng.choice(("themes", "status", themes[0], f"{themes[-1]}_score", "classification"))
    case.header.append(name)
    for row in case.rows:
        row.append("v")
    if case.fmt == "parquet":
        _dress(rng, case)
    if case.fmt == "xlsx":
        case.rows = [[xlsx_storable(v) if isinstance(v, str) else v for v in r] for r in case.rows]
    if name == "classification":
        case.expect = "either"  # a column like any other (or refused, as the others are)
    case.kind = "clash"
    return case


def gen_huge(rng, fmt, themes) -> Case:
    case = gen_valid(rng, fmt, themes, huge=0)
    while not case.rows:
        case = gen_valid(rng, fmt, themes, huge=0)
    k = (case.header or ["id", "text"]).index("text") if case.header else None
    token = rng.choice(("x", "\u00e9", "\U0001f600", "ab", "!")) * (HUGE // 2) + "y" * (HUGE // 2)
    r = rng.randrange(len(case.rows))
    if case.fmt == "xlsx":
        token = xlsx_storable(token)  # what an .xlsx cell can hold
    if case.fmt == "jsonl":
        case.rows[r]["text"] = token
    else:
        case.rows[r][k] = token
    case.kind = "huge_token"
    return case


GENERATORS = {
    "valid": (gen_valid, 34, FORMATS),
    "types": (gen_types, 6, ("jsonl", "jsonl", "parquet")),
    "nested": (gen_nested, 3, ("jsonl",)),
    "encoding": (gen_encoding, 8, ("csv", "tsv")),
    "headers": (gen_headers, 8, ("csv", "tsv", "xlsx", "parquet")),
    "headerless": (gen_headerless, 3, ("csv", "tsv", "xlsx")),
    "single_column": (gen_single_column, 4, ("csv", "tsv")),
    "jsonl_new_key": (gen_jsonl_new_key, 4, ("jsonl",)),
    "jsonl_bad_line": (gen_jsonl_bad_line, 3, ("jsonl",)),
    "ragged_long": (lambda r, f, t: gen_ragged(r, f, t, True), 5, ("csv", "tsv")),
    "ragged_short": (lambda r, f, t: gen_ragged(r, f, t, False), 4, ("csv", "tsv")),
    "unclosed_quote": (gen_unclosed, 3, ("csv", "tsv")),
    "bad_bytes": (gen_bad_bytes, 3, ("csv", "tsv", "jsonl")),
    "empty_file": (gen_empty, 1, FORMATS),
    "header_only": (gen_header_only, 2, ("csv", "tsv", "xlsx", "parquet")),
    "garbage": (gen_garbage, 2, ("xlsx", "parquet", "jsonl")),
    "clash": (gen_clash, 2, ("csv", "tsv", "xlsx", "parquet")),
    "huge_token": (gen_huge, 1, FORMATS),
}


def make_case(rng: random.Random, themes) -> Case:
    names = list(GENERATORS)
    name = rng.choices(names, weights=[GENERATORS[n][1] for n in names])[0]
    generate, _, formats = GENERATORS[name]
    return generate(rng, rng.choice(formats), themes)


# --------------------------------------------------------------------------------- shrinking
def _candidates(case: Case):
    """Simpler variants of ``case``: fewer rows, fewer columns, shorter cells, plainer options."""
    for r in range(len(case.rows)):
        yield replace(case, rows=case.rows[:r] + case.rows[r + 1 :])
    if case.header is not None and case.fmt != "jsonl":
        for c, name in enumerate(case.header):
            if name not in (case.text_column, case.id_column) and len(case.header) > 1:
                rows = [row[:c] + row[c + 1 :] if len(row) > c else row for row in case.rows]
                unclosed = case.unclosed
                if unclosed and unclosed[1] == c:
                    continue
                if unclosed and unclosed[1] > c:
                    unclosed = (unclosed[0], unclosed[1] - 1)
                header = case.header[:c] + case.header[c + 1 :]
                yield replace(case, header=header, rows=rows, unclosed=unclosed)
    if case.fmt == "jsonl":
        keys = {k for r in case.rows if isinstance(r, dict) for k in r} - {"id", "text"}
        for key in sorted(keys, key=str):
            rows = [{k: v for k, v in r.items() if k != key} if isinstance(r, dict) else r
                    for r in case.rows]  # fmt: skip
            yield replace(case, rows=rows)
    for r, row in enumerate(case.rows):
        cells = row.items() if isinstance(row, dict) else enumerate(row)
        for c, value in list(cells):
            if isinstance(value, str) and value:
                for simpler in (value[: len(value) // 2], value[len(value) // 2 :], ""):
                    new = dict(row) if isinstance(row, dict) else list(row)
                    new[c] = simpler
                    yield replace(case, rows=case.rows[:r] + [new] + case.rows[r + 1 :])
    plain_options = {"explain": False, "chunk_size": None, "quote_all": False, "line_end": "\n"}
    plain_options.update({"blank_lines": (), "final_newline": True})
    for option, plain in plain_options.items():
        if getattr(case, option) != plain:
            yield replace(case, **{option: plain})


def shrink(case: Case, out_fmt: str, category: str, model, model_path, worker, budget=150) -> Case:
    """A smaller case that still shows ``category`` (greedy, at most ``budget`` runs)."""
    runs = 0
    improved = True
    while improved and runs < budget:
        improved = False
        for candidate in _candidates(case):
            runs += 1
            if runs >= budget:
                break
            with tempfile.TemporaryDirectory() as folder:
                try:
                    outcome = run_library(candidate, out_fmt, Path(folder), model_path, worker)
                    found = {p.category for p in check(candidate, out_fmt, outcome, model)}
                except Exception:  # noqa: BLE001 - a candidate the oracle cannot judge
                    continue
            if category in found:
                case = candidate
                improved = True
                break
    return case


def write_repro(
    folder: Path, case: Case, out_fmt: str, problems: list[Problem], outcome: Outcome
) -> None:
    """The shrunk case as files: the input, a shell line, a Python script, the problem."""
    folder.mkdir(parents=True, exist_ok=True)
    source = write_input(case, folder)
    output = f"output{EXTENSION[out_fmt]}"
    args = cli_arguments(case, Path(source.name), Path(output), "MODEL")
    args = [a for a in args if a not in ("--model", "MODEL")]
    shell = "classifier " + " ".join(_shell_quote(a) for a in args)
    (folder / "repro.sh").write_text(
        "#!/bin/sh\n# generated input (no real feedback); run from this folder\n" + shell + "\n"
    )
    options = {k: v for k, v in case.options().items() if v not in (None, False, "utf-8")}
    script = (
        "# generated input (no real feedback); run from this folder\n"
        "from classifier.tagging import tag_file\n\n"
        f"tag_file({source.name!r}, {output!r}, force=True, **{options!r})\n"
        f"# the input as written by benchmarks/fuzz.py (kind {case.kind!r}):\n"
        f"# header = {_short(case.header)}\n# rows = {_short(case.rows)}\n"
    )
    (folder / "repro.py").write_text(script, encoding="utf-8")
    lines = [f"kind: {case.kind}; {case.fmt} -> {out_fmt}; via {outcome.via}"]
    lines += [f"{p.category}: {p.detail}" for p in problems]
    lines += ["", "stderr:", outcome.stderr[-2000:], outcome.crash[-3000:]]
    (folder / "problem.txt").write_text("\n".join(lines), encoding="utf-8", errors="replace")


def _short(value, limit: int = 3000) -> str:
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "...(cut)"


def _shell_quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w./=-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


# ------------------------------------------------------------------------------------- main
def _table(title: str, tallies: dict[str, Counter], cases: Counter) -> str:
    short = {"bad_error": "bad err", "reordered": "reorder", "rejected": "reject"}
    head = [title, "cases", *[short.get(c, c) for c in CATEGORIES]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(cases):
        row = [key, f"{cases[key]:,}", *[f"{tallies[key][c]:,}" for c in CATEGORIES]]
        lines.append("| " + " | ".join(row) + " |")
    total = Counter()
    for counter in tallies.values():
        total.update(counter)
    row = ["all", f"{sum(cases.values()):,}", *[f"{total[c]:,}" for c in CATEGORIES]]
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def run(
    cases: int,
    seed: int = 0,
    model_path=None,
    out: Path | None = None,
    cli_every: int = 100,
    shrink_budget: int = 150,
    timeout: float | None = 10.0,
    progress: bool = True,
) -> dict:
    """Run ``cases`` cases; return the tallies (what the tables print).

    One reproduction is written per (generator, input, output, problem); the first of each
    (generator, problem) is shrunk first. ``timeout=None`` tags in this process (no worker
    process, no time limit).
    """
    from classifier.persistence import default_model_path, load_model

    model_path = str(model_path or default_model_path())
    model = load_model(model_path)
    themes = model.themes_
    by_out, by_in, by_kind = defaultdict(Counter), defaultdict(Counter), defaultdict(Counter)
    n_out, n_in, n_kind = Counter(), Counter(), Counter()
    written, shrunk = set(), set()
    failures = []
    started = time.perf_counter()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    worker = Worker(model_path, timeout) if timeout else None
    script_errors = []
    try:
        for i in range(cases):
            rng = random.Random(f"{seed}:{i}")
            folder = work / f"case{i}"
            folder.mkdir()
            via_cli = cli_every and i % cli_every == cli_every - 1
            case, out_fmt = Case("?", "?", None, []), "?"
            try:
                case = make_case(rng, themes)
                out_fmt = FORMATS[rng.randrange(len(FORMATS))]
                if via_cli:
                    outcome = run_subprocess(case, out_fmt, folder, model_path)
                else:
                    outcome = run_library(case, out_fmt, folder, model_path, worker)
                problems = check(case, out_fmt, outcome, model)
            except Exception as exc:  # noqa: BLE001 - a bug of this script, reported as such
                problems = [Problem("crash", f"fuzz.py itself: {type(exc).__name__}: {exc}")]
                script_errors.append((i, traceback.format_exc()))
                outcome = Outcome("library", None, "", folder, traceback.format_exc())
            categories = sorted({p.category for p in problems})
            kind = case.kind.split("_")[0] if case.kind.startswith("header_") else case.kind
            for tally, total, key in (
                (by_out, n_out, out_fmt),
                (by_in, n_in, case.fmt),
                (by_kind, n_kind, kind),
            ):
                total[key] += 1
                tally[key].update(categories)
            for category in categories:
                signature = (case.kind, case.fmt, out_fmt, category)
                failures.append(signature)
                if out is None or signature in written:
                    continue
                written.add(signature)
                try:
                    small, again, again_problems = case, outcome, problems
                    if (case.kind, category) not in shrunk and category != "hang":
                        shrunk.add((case.kind, category))
                        candidate = shrink(case, out_fmt, category, model, model_path, worker,
                                           shrink_budget)  # fmt: skip
                        with tempfile.TemporaryDirectory() as scratch:
                            result = run_library(
                                candidate, out_fmt, Path(scratch), model_path, worker
                            )
                            found = check(candidate, out_fmt, result, model)
                        if category in {p.category for p in found}:
                            small, again, again_problems = candidate, result, found
                    name = f"{category}-{case.kind}-{case.fmt}-to-{out_fmt}-case{i}"
                    write_repro(out / name, small, out_fmt, again_problems, again)
                except Exception:  # noqa: BLE001 - never lose the run to a repro
                    script_errors.append((i, traceback.format_exc()))
            shutil.rmtree(folder, ignore_errors=True)
            if progress and (i + 1) % 250 == 0:
                rate = (i + 1) / (time.perf_counter() - started)
                print(f"  {i + 1:,} cases, {rate:.1f}/s", file=sys.stderr, flush=True)
    finally:
        if worker is not None:
            worker.close()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "seconds": time.perf_counter() - started,
        "by_output": (by_out, n_out),
        "by_input": (by_in, n_in),
        "by_kind": (by_kind, n_kind),
        "failures": failures,
        "script_errors": script_errors,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "_data" / "fuzz-failures",
        help="folder for the shrunk reproductions (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--cli-every", type=int, default=100, help="one case in N runs as a real CLI process"
    )
    parser.add_argument("--shrink-budget", type=int, default=150, help="runs per shrink")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang"
    )
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    result = run(
        args.cases, args.seed, args.model, args.out, args.cli_every, args.shrink_budget,
        args.timeout,
    )  # fmt: skip
    print(
        f"{args.cases:,} cases, seed {args.seed}, {result['seconds']:.0f} s; one case in "
        f"{args.cli_every} through `python -m classifier tag`. Columns: cases with the problem.\n"
    )
    for title, key in (("output", "by_output"), ("input", "by_input"), ("generator", "by_kind")):
        print(_table(title, *result[key]) + "\n")
    if result["script_errors"]:
        case, text = result["script_errors"][0]
        print(f"{len(result['script_errors'])} case(s) hit a bug of fuzz.py; first, case {case}:")
        print(text)
    signatures = Counter(result["failures"])
    if signatures:
        print("| generator | input | output | problem | cases |\n|---|---|---|---|---|")
        for (kind, fmt, out_fmt, category), count in sorted(signatures.items()):
            print(f"| {kind} | {fmt} | {out_fmt} | {category} | {count} |")
        print(f"\nShrunk reproductions: {args.out}")
    return 1 if signatures else 0


if __name__ == "__main__":
    sys.exit(main())
