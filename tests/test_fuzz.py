"""Property tests of `classifier tag` on hostile texts and tables (the short run of the fuzzer).

Hypothesis generates the tables; the oracle is `benchmarks/fuzz.py`'s (input writers, plain
output readers, `check`), so that this file and the long run (`python benchmarks/fuzz.py
--cases 10000`) hold the README's promises to the same standard:

- a valid table tags with exit code 0, every row comes back, unsplit and in order, each input
  cell equal apart from the documented changes (formula prefix `'` in CSV/TSV, control
  characters an Excel sheet cannot hold and line breaks as line feeds there, lone surrogates
  as `?`, values of mixed kinds in a Parquet column as text), and the added columns agree with
  `load_model().classify_many` on the same texts;
- malformed input is one line `Error: ...` naming the file and where, exit code 1, no traceback;
- no `SECRET<n>` marker embedded in a cell ever reaches stderr.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import zipfile

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz  # noqa: E402
from fuzz import MISSING, Case  # noqa: E402

from classifier.cli import app  # noqa: E402
from classifier.persistence import load_model  # noqa: E402

FORMATS = fuzz.FORMATS
runner = CliRunner()


def fuzz_settings(examples: int):
    """A few examples each (the long run is benchmarks/fuzz.py)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model(tiny_model_path):
    return load_model(tiny_model_path)


@pytest.fixture()
def folders(tmp_path):
    """A fresh folder per hypothesis example."""
    counter = itertools.count()

    def make():
        folder = tmp_path / f"example{next(counter)}"
        folder.mkdir()
        return folder

    return make


# ------------------------------------------------------------------------------- strategies
FORMULA_STARTS = st.sampled_from(fuzz.FORMULA_STARTS)
PIECES = st.sampled_from(fuzz.PIECES)
WORDS = st.sampled_from(fuzz.WORDS)
SPECIALS = st.sampled_from(fuzz.SPECIAL_CELLS)
# every general category but Cs (lone surrogates cannot be in a UTF-8 file)
CHARACTERS = st.characters(codec="utf-8")
SURROGATES = st.characters(categories=["Cs"])


def texts(surrogates: bool = False) -> st.SearchStrategy[str]:
    """Hostile cells: special values, Unicode soup with line breaks, NUL, bidi, emoji, words."""
    part = st.one_of(CHARACTERS, PIECES, WORDS, *([SURROGATES] if surrogates else []))
    soup = st.lists(part, max_size=10).map("".join)
    return st.one_of(SPECIALS, soup, st.tuples(FORMULA_STARTS, soup).map("".join))


@st.composite
def marked(draw, surrogates: bool = False) -> str:
    """A hostile text with a SECRET<n> marker at its start, end or middle (or none)."""
    text = draw(texts(surrogates))
    where = draw(st.sampled_from(("none", "start", "end", "middle")))
    tag = f"{fuzz.SECRET}{draw(st.integers(0, 10**6))}"
    if where == "start":
        return tag + text
    if where == "end":
        return text + tag
    if where == "middle":
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + tag + text[cut:]
    return text


def header_names(themes) -> st.SearchStrategy[str]:
    """Hostile but valid column names: unique, not blank, not starting like a formula."""
    reserved = fuzz._reserved(themes)
    name = st.one_of(
        WORDS.map(str.strip),
        st.sampled_from(("007", "nan", "None", "True", "1.5", "2024-01-01", "Unnamed: 0")),
        st.lists(st.one_of(CHARACTERS, PIECES, st.sampled_from("abc ,\"'")), min_size=1, max_size=6)
        .map("".join),
    )  # fmt: skip
    return name.filter(
        lambda n: (
            n.strip()
            and n not in reserved
            and not n.startswith(fuzz.FORMULA_STARTS)
            and not n.startswith("\ufeff")
            and n.strip().lower() not in fuzz.TEXT_COLUMN_CANDIDATES
        )
    )


@st.composite
def tables(draw, fmt: str, themes, surrogates: bool | None = None) -> Case:
    """A valid table of hostile cells in ``fmt``, with its format's hostile clothes."""
    surrogates = fmt == "jsonl" if surrogates is None else surrogates
    extras = draw(st.lists(header_names(themes), max_size=2, unique=True))
    header = draw(st.permutations(["id", "text", *extras]))
    n_rows = draw(st.integers(0, 6))
    rows = [
        [f"{i:03d}" if name == "id" else draw(marked(surrogates)) for name in header]
        for i in range(n_rows)
    ]
    case = Case("valid", fmt, list(header), rows)
    case.chunk_size = draw(st.sampled_from((None, 1, 2, 3)))
    case.explain = draw(st.booleans())
    case.text_column = draw(st.sampled_from(("text", "text", None)))  # None: detected
    if fmt in ("csv", "tsv"):
        case.line_end = draw(st.sampled_from(("\n", "\r\n", "\r")))
        case.quote_all = draw(st.booleans())
        case.final_newline = draw(st.booleans())
        case.encoding = draw(st.sampled_from(("utf-8", "utf-8", "utf-8-sig")))
    elif fmt == "jsonl":
        case.header, case.rows = None, draw(records(header, rows, case.chunk_size or 2000))
        case.line_end = draw(st.sampled_from(("\n", "\r\n")))
        case.final_newline = draw(st.booleans())
        case.ensure_ascii = draw(st.booleans())
        case.blank_lines = tuple(draw(st.lists(st.integers(0, n_rows), max_size=2)))
    elif fmt == "xlsx":
        case.header = [fuzz.xlsx_storable(h) for h in header]
        case.rows = [[fuzz.xlsx_storable(v) for v in row] for row in rows]
    elif fmt == "parquet":
        case.rows = [[None if draw(st.booleans()) and v[:1] != "0" else v for v in row]
                     for row in rows]  # fmt: skip
    return case


@st.composite
def records(draw, header, rows, chunk: int) -> list[dict]:
    """JSON Lines records: keys reordered, missing (an empty cell), never new after a chunk."""
    out = []
    for row in rows:
        pairs = list(zip(header, row, strict=True))
        if draw(st.booleans()):
            pairs = draw(st.permutations(pairs))
        out.append({k: MISSING if k != "id" and draw(st.integers(0, 9)) == 0 else v
                    for k, v in pairs})  # fmt: skip
    known = {k for record in out[:chunk] for k, v in record.items() if v is not MISSING}
    for record in out[chunk:]:
        for key in record:
            if key not in known:
                record[key] = MISSING
    return out


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from((0, 1, -7, 7, 2**53 + 1, 12345678901234567, -(2**63))),
    st.sampled_from((0.1, 1.5, -0.0, 1e300, 2.5e-8)),
    st.sampled_from(("007", "x", "", "1", "nan", "+44 7700 900123")),
)


@st.composite
def typed_jsonl(draw) -> Case:
    """JSON Lines whose columns change type down the file: int -> str -> null, missing keys."""
    n_rows = draw(st.integers(1, 6))
    rows = []
    for i in range(n_rows):
        text = draw(st.one_of(WORDS, st.none(), st.just(5), st.just(MISSING)))
        row = {"id": draw(st.sampled_from((i + 1, f"{i:03d}"))), "text": text}
        row["n"] = draw(st.one_of(SCALARS, st.just(MISSING)))
        row["m"] = draw(st.one_of(SCALARS, st.just(MISSING)))
        rows.append(row)
    rows[0]["text"] = draw(WORDS)  # the text column is in the first chunk
    case = Case("types", "jsonl", None, rows, chunk_size=draw(st.sampled_from((None, 1, 2))))
    known = {k for r in rows[: case.chunk_size or 2000] for k, v in r.items() if v is not MISSING}
    for record in rows:
        for key in record:
            if key not in known:
                record[key] = MISSING
    return case


# ---------------------------------------------------------------------------------- helpers
def run_cli(case: Case, out_fmt: str, folder, model_path) -> fuzz.Outcome:
    """``classifier tag`` through typer's CliRunner (stderr kept apart from stdout)."""
    source = fuzz.write_input(case, folder)
    output = folder / f"output{fuzz.EXTENSION[out_fmt]}"
    result = runner.invoke(app, fuzz.cli_arguments(case, source, output, model_path))
    crash = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        crash = "".join(traceback.format_exception(*result.exc_info))
    code = None if crash else result.exit_code
    return fuzz.Outcome("cli", code, result.stderr, output, crash)


def assert_holds(case: Case, out_fmt: str, outcome: fuzz.Outcome, model) -> None:
    problems = fuzz.check(case, out_fmt, outcome, model)
    assert not problems, "\n".join(f"{p.category}: {p.detail}" for p in problems)


def tag(case: Case, out_fmt: str, folder, model_path) -> fuzz.Outcome:
    return fuzz.run_library(case, out_fmt, folder, model_path)


# ------------------------------------------------------------------------ valid tables, all
PAIRS = [pytest.param(i, o, id=f"{i}-to-{o}") for i in ("csv", "tsv", "jsonl") for o in FORMATS]


@pytest.mark.parametrize(("in_fmt", "out_fmt"), PAIRS)
def test_valid_table_round_trips_and_agrees_with_the_library(
    in_fmt, out_fmt, model, tiny_model_path, folders
):
    """Rows all there, in order, unsplit; cells equal (documented changes aside); same tags."""

    @fuzz_settings(12)
    @given(case=tables(in_fmt, model.themes_))
    def check(case):
        assert_holds(case, out_fmt, tag(case, out_fmt, folders(), tiny_model_path), model)

    check()


@pytest.mark.parametrize(
    ("in_fmt", "out_fmt"),
    [
        pytest.param("xlsx", "csv", id="xlsx-to-csv"),
        pytest.param("xlsx", "jsonl", id="xlsx-to-jsonl"),
        pytest.param("parquet", "csv", id="parquet-to-csv"),
        pytest.param("parquet", "parquet", id="parquet-to-parquet"),
        pytest.param("parquet", "jsonl", id="parquet-to-jsonl"),
        pytest.param("parquet", "xlsx", id="parquet-to-xlsx"),
    ],
)
def test_excel_and_parquet_input_round_trips(in_fmt, out_fmt, model, tiny_model_path, folders):
    @fuzz_settings(6)
    @given(case=tables(in_fmt, model.themes_))
    def check(case):
        assert_holds(case, out_fmt, tag(case, out_fmt, folders(), tiny_model_path), model)

    check()


@pytest.mark.parametrize(
    "out_fmt",
    [
        "csv",
        "tsv",
        "parquet",
        "jsonl",
        "xlsx",
    ],
)
def test_cli_exit_code_output_and_stderr(out_fmt, model, tiny_model_path, folders):
    """The real command (CliRunner): exit 0, the same output, a summary with no text in it."""

    @fuzz_settings(6)
    @given(case=st.sampled_from(("csv", "jsonl")).flatmap(lambda f: tables(f, model.themes_)))
    def check(case):
        assert_holds(case, out_fmt, run_cli(case, out_fmt, folders(), tiny_model_path), model)

    check()


# ------------------------------------------------------------------ JSON Lines across chunks
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_jsonl_types_changing_across_chunks(out_fmt, model, tiny_model_path, folders):
    """int -> str -> null -> missing down a column, chunk borders in between: values kept."""

    @fuzz_settings(10)
    @given(case=typed_jsonl())
    def check(case):
        assert_holds(case, out_fmt, tag(case, out_fmt, folders(), tiny_model_path), model)

    check()


@fuzz_settings(15)
@given(data=st.data())
def test_jsonl_key_new_after_the_first_chunk_is_an_error_naming_the_record(
    data, model, tiny_model_path, folders
):
    case = data.draw(tables("jsonl", model.themes_).filter(lambda c: len(c.rows) >= 2))
    case.rows[0]["text"] = "first"  # the text column is in the first chunk
    case.chunk_size = data.draw(st.integers(1, len(case.rows) - 1))
    at = data.draw(st.integers(case.chunk_size, len(case.rows) - 1))
    case.rows[at]["a key never seen"] = data.draw(marked())
    out_fmt = data.draw(st.sampled_from(FORMATS))
    outcome = tag(case, out_fmt, folders(), tiny_model_path)
    assert outcome.exit_code == 1
    assert_holds(case, out_fmt, outcome, model)


# -------------------------------------------------------------------------- malformed tables
@fuzz_settings(25)
@given(data=st.data())
def test_malformed_csv_is_one_clean_line_naming_file_and_line(
    data, model, tiny_model_path, folders
):
    """Rows with more fields than the header, unclosed quotes, undecodable bytes: exit 1."""
    fmt = data.draw(st.sampled_from(("csv", "tsv")))
    case = data.draw(tables(fmt, model.themes_).filter(lambda c: c.rows))
    trouble = data.draw(st.sampled_from(("long", "unclosed", "bytes")))
    r = data.draw(st.integers(0, len(case.rows) - 1))
    if trouble == "long":
        for row in case.rows[r : r + data.draw(st.sampled_from((1, len(case.rows))))]:
            row.append(data.draw(marked()))
    elif trouble == "unclosed":
        case.unclosed, case.quote_all = (r, data.draw(st.integers(0, len(case.header) - 1))), False
        delimiter = "\t" if fmt == "tsv" else ","
        for row in case.rows[r:]:  # nothing later may close the quote
            row[:] = [v.translate({ord(c): None for c in f'"{delimiter}\r\n'}) for v in row]
    else:
        case.undecodable_at = data.draw(st.integers(0, 10_000))
    out_fmt = data.draw(st.sampled_from(FORMATS))
    outcome = run_cli(case, out_fmt, folders(), tiny_model_path)
    assert outcome.exit_code == 1
    assert_holds(case, out_fmt, outcome, model)


@fuzz_settings(15)
@given(data=st.data())
def test_short_rows_are_kept_with_a_warning_naming_the_line(data, model, tiny_model_path, folders):
    """README: a row with fewer fields than the header reads with its missing cells empty."""
    fmt = data.draw(st.sampled_from(("csv", "tsv")))
    case = data.draw(tables(fmt, model.themes_).filter(lambda c: c.rows))
    for r in data.draw(st.sets(st.integers(0, len(case.rows) - 1), min_size=1)):
        case.rows[r].pop()
        if not "".join(case.rows[r]).strip():  # a blank line is no row (see the one-column test)
            case.rows[r][0] = "x"
    out_fmt = data.draw(st.sampled_from(("csv", "jsonl", "parquet")))
    assert_holds(case, out_fmt, run_cli(case, out_fmt, folders(), tiny_model_path), model)


@fuzz_settings(10)
@given(
    fmt=st.sampled_from(("csv", "tsv", "jsonl", "xlsx", "parquet")),
    kind=st.sampled_from(("empty", "garbage", "header only")),
    junk=st.binary(min_size=1, max_size=300),
)
def test_empty_garbage_and_header_only_files(fmt, kind, junk, model, tiny_model_path, folders):
    """An empty or garbage file is a clean error; a header alone tags to zero rows."""
    if kind == "header only" and fmt != "jsonl":
        case = Case("header_only", fmt, ["id", "text"], [])
    elif kind == "garbage" and fmt in ("xlsx", "parquet", "jsonl"):
        prefix = {"xlsx": b"PK\x03\x04", "parquet": b"PAR1", "jsonl": b"{"}[fmt]
        case = Case("garbage", fmt, None, [], raw=prefix + junk + b"SECRET1")
    else:
        case = Case("empty_file", fmt, None, [], raw=b"")
    out_fmt = "csv" if fmt != "csv" else "jsonl"
    assert_holds(case, out_fmt, run_cli(case, out_fmt, folders(), tiny_model_path), model)


# ------------------------------------------------------------------------------- encodings
@fuzz_settings(20)
@given(data=st.data())
def test_encodings_round_trip_with_encoding_option(data, model, tiny_model_path, folders):
    """utf-8, utf-8-sig, cp1252 and latin-1 input with --encoding: the same texts come back."""
    fmt = data.draw(st.sampled_from(("csv", "tsv")))
    case = data.draw(tables(fmt, model.themes_))
    case.encoding = data.draw(st.sampled_from(fuzz.ENCODINGS))
    case.encoding_option = case.encoding
    case.header = [fuzz.fit_encoding(h, case.encoding) for h in case.header]
    if len(set(case.header)) < len(case.header) or not all(h.strip() for h in case.header):
        case.header = ["id", "text", *[f"c{i}" for i in range(len(case.header) - 2)]]
    case.rows = [[fuzz.fit_encoding(v, case.encoding) for v in row] for row in case.rows]
    for k, row in enumerate(case.rows):
        row[case.header.index("id")] = f"{k:03d}"
    out_fmt = data.draw(st.sampled_from(("csv", "jsonl", "parquet")))
    assert_holds(case, out_fmt, tag(case, out_fmt, folders(), tiny_model_path), model)


@fuzz_settings(10)
@given(data=st.data())
def test_wrong_encoding_is_a_clean_error_or_the_same_bytes(data, model, tiny_model_path, folders):
    """cp1252 bytes read as UTF-8: one clean line naming the file (never a traceback)."""
    case = data.draw(tables("csv", model.themes_).filter(lambda c: c.rows))
    case.encoding = "cp1252"
    case.header = [fuzz.fit_encoding(h, "cp1252") for h in case.header]
    case.rows = [[fuzz.fit_encoding(v, "cp1252") + "\u00e9" for v in row] for row in case.rows]
    outcome = run_cli(case, "csv", folders(), tiny_model_path)
    assert outcome.exit_code == 1 and outcome.stderr.count("\n") == 1
    assert "input.csv" in outcome.stderr and "SECRET" not in outcome.stderr


# ---------------------------------------------------------------------------------- headers
@pytest.mark.parametrize("out_fmt", ["csv", "tsv", "jsonl", "parquet", "xlsx"])
def test_hostile_column_names_come_back_as_they_were(out_fmt, model, tiny_model_path, folders):
    """Duplicate, empty, formula, blank-looking and data-looking names: kept (or clean error)."""

    @fuzz_settings(10)
    @given(data=st.data())
    def check(data):
        case = data.draw(tables(data.draw(st.sampled_from(("csv", "tsv"))), model.themes_))
        name = data.draw(
            st.sampled_from(
                ("id", "text", "", '=HYPERLINK("http://example.invalid","x")', "+44 7700 900123",
                 "@SUM(A1)", "-x", "\tx", " ", "\u00a0", "007", "nan")
            )
        )  # fmt: skip
        at = data.draw(st.integers(0, len(case.header)))
        case.header.insert(at, name)
        for row in case.rows:
            row.insert(at, data.draw(marked()))
        if name in ("id", "text", ""):
            case.expect = "either"  # kept as they are, or a clean error naming the column
        assert_holds(case, out_fmt, tag(case, out_fmt, folders(), tiny_model_path), model)

    check()


@fuzz_settings(10)
@given(data=st.data())
def test_headerless_file_error_quotes_no_feedback(data, model, tiny_model_path, folders):
    """Without a header row the first row is feedback: the error must not quote it."""
    rows = data.draw(st.lists(st.tuples(marked(), marked()), min_size=2, max_size=4))
    rows = [[f"{fuzz.SECRET}{i} " + a, b + f" {fuzz.SECRET}{i}"] for i, (a, b) in enumerate(rows)]
    case = Case("headerless", data.draw(st.sampled_from(("csv", "tsv"))), rows[0], rows[1:])
    case.text_column = case.id_column = None
    assert_holds(case, "csv", run_cli(case, "csv", folders(), tiny_model_path), model)


@fuzz_settings(10)
@given(data=st.data())
def test_one_column_file_keeps_its_empty_cells(data, model, tiny_model_path, folders):
    """A one-column export (Excel writes an empty cell as an empty line): no row is lost."""
    rows = [[t] for t in data.draw(st.lists(marked(), min_size=2, max_size=6))]
    for _ in range(data.draw(st.integers(1, 2))):
        blank = data.draw(st.sampled_from(("", " ", "  ")))
        rows.insert(data.draw(st.integers(1, len(rows) - 1)), [blank])
    rows.append(["the end"])  # (a blank last line would be ambiguous)
    fmt = data.draw(st.sampled_from(("csv", "tsv")))
    case = Case("single_column", fmt, ["text"], rows, text_column=None, id_column=None)
    case.empty_as_blank = True
    out_fmt = data.draw(st.sampled_from(("csv", "jsonl")))
    assert_holds(case, out_fmt, tag(case, out_fmt, folders(), tiny_model_path), model)


# ------------------------------------------------------------------------ the defects, small
def tag_one(tmp_path, name: str, content: str | bytes, out_ext: str, model_path, *args):
    source = tmp_path / name
    if isinstance(content, bytes):
        source.write_bytes(content)
    else:
        source.write_text(content, encoding="utf-8", newline="")
    output = tmp_path / f"out.{out_ext}"
    result = runner.invoke(
        app, ["tag", str(source), "-o", str(output), "--model", str(model_path), "-q", *args]
    )
    return result, output


def read_xlsx(path):
    from openpyxl import load_workbook

    return [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]


def test_excel_output_writes_each_line_break_as_a_line_feed(tmp_path, tiny_model_path):
    """README: Excel's line break in a cell is a line feed; the sheet holds no bare CR."""
    result, out = tag_one(tmp_path, "in.csv", 'id,text\r\n1,"a\rb"\r\n2,"c\r\nd\r\ufffe\ne"\r\n',
                          "xlsx", tiny_model_path)  # fmt: skip
    assert result.exit_code == 0
    assert [row[1] for row in read_xlsx(out)[1:]] == ["a\nb", "c\nd\n\ne"]
    with zipfile.ZipFile(out) as book:
        assert b"\r" not in book.read("xl/worksheets/sheet1.xml")


def test_excel_output_writes_big_integers_as_text(tmp_path, tiny_model_path):
    """A sheet's number has 15 significant digits: a longer id would be changed by Excel."""
    content = '{"id": 12345678901234567, "n": 7, "text": "a"}\n'
    result, out = tag_one(tmp_path, "in.jsonl", content, "xlsx", tiny_model_path)
    assert result.exit_code == 0
    assert read_xlsx(out)[1][:2] == ["12345678901234567", 7]


def test_excel_output_with_a_noncharacter_is_a_readable_file(tmp_path, tiny_model_path):
    result, out = tag_one(tmp_path, "in.csv", "id,text\n1,a\uffffb\n", "xlsx", tiny_model_path)
    assert result.exit_code == 0
    assert read_xlsx(out)[1][0] == "1"


def test_jsonl_output_is_valid_json_for_missing_keys_and_nulls(tmp_path, tiny_model_path):
    content = '{"id": "1", "text": "a", "x": "v"}\n{"id": "2", "text": null}\n'
    result, out = tag_one(tmp_path, "in.jsonl", content, "jsonl", tiny_model_path)
    assert result.exit_code == 0

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    rows = [json.loads(line, parse_constant=no_constants) for line in out.read_text().splitlines()]
    assert [(r["text"], r["x"]) for r in rows] == [("a", "v"), (None, None)]


@pytest.mark.parametrize("out_ext", ["csv", "jsonl"])
def test_integer_ids_with_a_null_stay_integers(tmp_path, tiny_model_path, out_ext):
    content = '{"id": 12345678901234567, "text": "a"}\n{"id": null, "text": "b"}\n'
    result, out = tag_one(tmp_path, "in.jsonl", content, out_ext, tiny_model_path)
    assert result.exit_code == 0
    assert "12345678901234567" in out.read_text()


def test_parquet_integer_column_with_a_null_stays_integer(tmp_path, tiny_model_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": pa.array([7, None], pa.int64()), "text": ["a", "b"]}), source)
    result = runner.invoke(app, ["tag", str(source), "-o", str(tmp_path / "out.csv"),
                                 "--model", str(tiny_model_path), "-q"])  # fmt: skip
    assert result.exit_code == 0
    assert (tmp_path / "out.csv").read_text().splitlines()[1].startswith("7,")


def test_parquet_output_of_a_mixed_column_is_a_clean_error_without_the_text(
    tmp_path, tiny_model_path
):
    content = '{"id": 1, "text": "a"}\n{"id": "SECRET-1", "text": "b"}\n'
    result, _ = tag_one(tmp_path, "in.jsonl", content, "parquet", tiny_model_path)
    assert result.exit_code in (0, 1) and not isinstance(result.exception, Exception)
    assert "SECRET" not in result.stderr


@pytest.mark.parametrize(
    "later",
    [
        pytest.param('"x": "v"', id="null-then-text"),
        pytest.param('"x": null', id="null-then-null"),
        pytest.param("", id="null-then-missing"),
    ],
)
def test_parquet_output_of_a_column_null_in_the_first_chunk(tmp_path, tiny_model_path, later):
    """An optional key: null in the first 2,000 records (here 1), then text, null or missing."""
    content = '{"id": "1", "text": "a", "x": null}\n{"id": "2", "text": "b"%s}\n' % (
        ", " + later if later else ""
    )
    result, _ = tag_one(tmp_path, "in.jsonl", content, "parquet", tiny_model_path,
                        "--chunk-size", "1")  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_parquet_to_parquet_keeps_the_input_schema(tmp_path, tiny_model_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    flag, n = pa.array([None, True]), pa.array([7, None], pa.int64())
    pq.write_table(pa.table({"id": ["1", "2"], "text": ["a", "b"], "flag": flag, "n": n}), source)
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["tag", str(source), "-o", str(out), "--model",
                                 str(tiny_model_path), "-q", "--chunk-size", "1"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(out)
    assert table.schema.field("flag").type == pa.bool_()
    assert table.schema.field("n").type == pa.int64()


@pytest.mark.parametrize("out_ext", ["xlsx", "parquet"])
def test_nested_json_values_are_written_or_refused_cleanly(tmp_path, tiny_model_path, out_ext):
    content = '{"id": "1", "text": "a", "meta": {"k": "SECRET-1"}}\n{"id": "2", "text": "b", "meta": ""}\n'  # noqa: E501
    result, _ = tag_one(tmp_path, "in.jsonl", content, out_ext, tiny_model_path)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "SECRET" not in result.stderr


@pytest.fixture()
def parquet_of_every_type(tmp_path):
    """Columns of the types a Parquet export may hold, each with a null below a value."""
    import datetime as dt
    from decimal import Decimal

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")

    def column(value, kind=None):
        return pa.array([value, None], kind)

    table = pa.table({
        "id": column(12345678901234567),
        "text": ["she listened", "SECRET-1 text"],
        "zoned": column(dt.datetime(2024, 1, 1, 9, 30), pa.timestamp("us", tz="Europe/London")),
        "naive": column(dt.datetime(2024, 1, 1, 9, 30), pa.timestamp("us")),
        "day": column(dt.date(2024, 1, 1)),
        "decimal": column(Decimal("1.50")),
        "bytes": column(b"SECRET-2 \xff"),
        "duration": column(dt.timedelta(seconds=5)),
        "list": column([1, 2]),
        "struct": column({"k": "SECRET-3"}),
        "category": pa.array(["a", "b"]).dictionary_encode(),
    })  # fmt: skip
    source = tmp_path / "in.parquet"
    pq.write_table(table, source)
    return source, table


@pytest.mark.parametrize("out_ext", FORMATS)
def test_parquet_input_of_every_type_is_written_in_every_format(
    parquet_of_every_type, tmp_path, tiny_model_path, out_ext
):
    """Time zones, lists, structs, bytes... crashed Excel and JSON Lines output (tracebacks)."""
    source, table = parquet_of_every_type
    out = tmp_path / f"out.{out_ext}"
    result = runner.invoke(app, ["tag", str(source), "-o", str(out), "--model",
                                 str(tiny_model_path), "-q"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "SECRET" not in result.stderr
    if out_ext == "parquet":  # Parquet to Parquet: the input's schema and values, exactly
        import pyarrow.parquet as pq

        back = pq.read_table(out).select(table.column_names)
        assert back.schema.equals(table.schema) and back.to_pylist() == table.to_pylist()
    elif out_ext == "xlsx":
        row = read_xlsx(out)[1]
        assert row[:3] == ["12345678901234567", "she listened", "2024-01-01T09:30:00+00:00"]
        assert row[8:10] == ["[1, 2]", '{"k": "SECRET-3"}']
    elif out_ext == "jsonl":
        record = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
        assert record["list"] == [1, 2] and record["struct"] == {"k": "SECRET-3"}
        assert record["id"] == 12345678901234567 and record["bytes"] == "SECRET-2 \\xff"
    else:  # (not numpy's "[1 2]", nor Python's b'...')
        text = out.read_text(encoding="utf-8")
        assert "[1, 2]" in text and "SECRET-2 \\xff" in text and "b'" not in text


def test_input_column_named_classification_is_kept_or_refused(tmp_path, tiny_model_path):
    content = '{"id": "1", "text": "a", "classification": "mine"}\n'
    result, out = tag_one(tmp_path, "in.jsonl", content, "jsonl", tiny_model_path)
    if result.exit_code == 0:
        assert "mine" in out.read_text()
    else:
        assert result.exit_code == 1 and "classification" in result.stderr


@pytest.mark.parametrize("out_ext", ["csv", "parquet"])
def test_lone_surrogate_in_a_jsonl_key(tmp_path, tiny_model_path, out_ext):
    content = '{"id": "1", "text": "a", "k\\ud800": "v"}\n'
    result, _ = tag_one(tmp_path, "in.jsonl", content, out_ext, tiny_model_path)
    assert result.exit_code in (0, 1) and not isinstance(result.exception, UnicodeError)


@pytest.mark.parametrize("header", ["id,text,id", "id,,text"])
def test_duplicate_or_empty_column_names_are_kept_or_refused(tmp_path, tiny_model_path, header):
    content = header + "\n1,a,b\n"
    result, out = tag_one(tmp_path, "in.csv", content, "csv", tiny_model_path,
                          "--text-column", "text")  # fmt: skip
    if result.exit_code == 0:
        assert out.read_text().startswith(header + ",themes")
    else:
        assert result.exit_code == 1 and result.stderr.count("\n") == 1


@pytest.mark.parametrize("out_ext", ["csv", "tsv"])
def test_formula_column_name_is_neutralised(tmp_path, tiny_model_path, out_ext):
    content = 'id,text,"=HYPERLINK(""http://example.invalid"",""x"")"\n1,a,b\n'
    result, out = tag_one(tmp_path, "in.csv", content, out_ext, tiny_model_path)
    assert result.exit_code == 0
    header = out.read_text().splitlines()[0]
    assert "'=HYPERLINK" in header


def test_headerless_error_does_not_quote_the_first_row(tmp_path, tiny_model_path):
    content = "SECRET she never listened to me,1\nanother comment,2\n"
    result, _ = tag_one(tmp_path, "in.csv", content, "csv", tiny_model_path)
    assert result.exit_code == 1 and "SECRET" not in result.stderr


def test_empty_line_in_a_one_column_file_is_a_row(tmp_path, tiny_model_path):
    result, out = tag_one(tmp_path, "in.csv", "text\nfirst\n\nthird\n \nfifth\n", "jsonl",
                          tiny_model_path)  # fmt: skip
    assert result.exit_code == 0
    assert len(out.read_text().splitlines()) == 5


def test_huge_plain_token_tags_and_excel_refuses_it_naming_row_and_column(
    tmp_path, tiny_model_path
):
    """A 100,000-character token: tagged in CSV; in Excel an error naming the row and column."""
    token = "x" * fuzz.HUGE
    result, out = tag_one(tmp_path, "in.csv", f"id,text\n1,ok\n2,{token}\n", "csv",
                          tiny_model_path)  # fmt: skip
    assert result.exit_code == 0 and token in out.read_text()
    result, _ = tag_one(tmp_path, "in.csv", f"id,text\n1,ok\n2,{token}\n", "xlsx",
                        tiny_model_path)  # fmt: skip
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "row 2" in result.stderr and "text" in result.stderr and token not in result.stderr


def test_the_long_run_works_on_a_few_cases(tmp_path, tiny_model_path):
    """benchmarks/fuzz.py end to end, in-process, on a handful of cases (no shrinking)."""
    result = fuzz.run(12, seed=3, model_path=tiny_model_path, out=None, cli_every=0,
                      timeout=None, progress=False)  # fmt: skip
    tallies, cases = result["by_output"]
    assert sum(cases.values()) == 12
    assert all(set(counter) <= set(fuzz.CATEGORIES) for counter in tallies.values())
    assert result["script_errors"] == []
    assert math.isfinite(result["seconds"])
