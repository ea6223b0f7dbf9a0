"""Reading and writing tables in chunks: CSV, TSV, JSON Lines, Excel and Parquet.

Readers yield pandas DataFrames of at most ``chunk_size`` rows, so memory stays flat whatever the
file size. Values are read as strings wherever the format allows, so identifiers such as
``007`` come back unchanged. Writers write to a temporary file beside the target and move it into
place only on :meth:`ChunkWriter.commit`: an error, Ctrl-C or SIGTERM leaves no half-written file,
and an existing file is never replaced without ``force``.

Each format is one :class:`TableFormat` entry in :data:`REGISTRY` (name, extensions, reader,
writer, the optional package it needs): adding a format is adding an entry.

Error messages name the file and the row, line or column; they never quote cell contents.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import math
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from classifier._errors import ClassifierError, Interrupted, stop_signal
from classifier._files import (
    STDOUT_NAME,
    deferred_signals,
    discard,
    note_written,
    publish,
    reason,
    temporary_beside,
)

STDIO = "-"
STDIN_NAME = "standard input"
EXCEL_MAX_ROWS = 1_048_576  # a worksheet's hard limit, header included
EXCEL_MAX_CELL = 32_767  # characters in one cell; openpyxl would cut longer text silently
# Excel keeps 15 significant digits of a number: a longer integer (an id) is written as text
EXCEL_EXACT_INTEGERS = 10**15
# XML 1.0 forbids these control characters, so an .xlsx cell cannot hold them (openpyxl raises
# and prints the cell); they are dropped, as Excel itself does.
# U+FFFE and U+FFFF are not XML characters either: with them the file would not open.
_EXCEL_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# OWASP CSV injection: a spreadsheet may run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


# ------------------------------------------------------------------------------ formats
@dataclass(frozen=True)
class TableFormat:
    """Everything the readers and writers know about one table format.

    Attributes
    ----------
    name : str
        What ``--format`` and ``--output-format`` take, e.g. ``"csv"``.
    extensions : tuple of str
        File extensions that mean this format, lower case, with the dot.
    read : callable
        ``read(reader)`` yields the DataFrame chunks of a :class:`TableReader`.
    sink : callable
        ``sink(name, destination)`` opens a writer of this format (see :class:`_Sink`);
        ``destination`` is a path, or None for standard output.
    module, extra : str or None
        The module that the format needs beyond the base install, and the pip extra that
        installs it.
    binary : bool
        Bytes, not text: never written to a terminal.
    to_stdout : bool
        Whether it can go to standard output as one valid file; if not, that is refused.
    sheets : bool
        Whether a file holds several tables, one of which ``TableReader(sheet=...)`` picks.
    """

    name: str
    extensions: tuple[str, ...]
    read: Callable[[TableReader], Iterator[pd.DataFrame]]
    sink: Callable[[str, Path | None], _Sink]
    module: str | None = None
    extra: str | None = None
    binary: bool = False
    to_stdout: bool = True
    sheets: bool = False

    def require(self) -> None:
        """Raise a ClassifierError saying what to install if the format's module is missing."""
        if self.module is None:
            return
        try:
            __import__(self.module)
        except ImportError:
            raise ClassifierError(
                f"{self.name} files need {self.module}: "
                f"pip install 'therapy-themes-classifier[{self.extra}]'"
            ) from None


def table_format(name: str) -> TableFormat:
    """The registry entry of the format called ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ClassifierError(
            f"unknown format {name!r}; choose one of {', '.join(FORMATS)}"
        ) from None


def detect_format(path: str, explicit: str | None = None, default: str = "csv") -> str:
    """The table format of ``path``: ``explicit`` if given, else from the file extension."""
    if explicit:
        return table_format(explicit).name
    if path == STDIO:
        return _sniff_stdin(default)
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ClassifierError(
            f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}; "
            f"use --format with one of {', '.join(FORMATS)}"
        )
    return _EXTENSIONS[suffix]


def _sniff_stdin(default: str) -> str:
    """JSON Lines if standard input starts with ``{``, else ``default``; nothing is consumed."""
    buffer = getattr(sys.stdin, "buffer", None)
    peek = getattr(buffer, "peek", None)
    if peek is None:
        return default
    try:
        head = peek(256)
    except (OSError, ValueError):
        return default
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else default


def check_encoding(encoding: str) -> None:
    """Raise a one-line ClassifierError unless ``encoding`` is a known text encoding."""
    try:
        # (TextIOWrapper refuses codecs that are not text encodings, such as base64, by this flag)
        known = getattr(codecs.lookup(encoding), "_is_text_encoding", True)
    except (LookupError, TypeError, ValueError):
        known = False
    if not known:
        raise ClassifierError(
            f"unknown text encoding {encoding!r} (--encoding); use one such as utf-8, "
            "cp1252 or latin-1"
        ) from None


# ----------------------------------------------------------------------------------- reading
class _CountedInput(io.BufferedIOBase):
    """A binary input that counts the bytes and line feeds handed on, to place a decode error.

    A decoding text stream reads ahead in blocks, so the position of the row being parsed says
    nothing about where an undecodable byte is; this wrapper knows the block that failed.
    """

    def __init__(self, raw):
        self._raw = raw
        self.position = 0  # bytes handed on so far
        self._last = b""  # the last block handed on
        self._newlines_before_last = 0

    def readable(self) -> bool:
        return True

    def _note(self, data: bytes) -> bytes:
        self._newlines_before_last += self._last.count(b"\n")
        self._last = data
        self.position += len(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._raw, "read1", self._raw.read)
        return self._note(read1(size))

    def read(self, size: int | None = -1) -> bytes:
        return self._note(self._raw.read(size))

    def locate(self, exc: UnicodeDecodeError) -> tuple[int, int] | None:
        """(0-based byte offset, 1-based line) of the error, if the numbers add up."""
        # The decoder got what it kept from the previous block plus the last block read.
        offset = self.position - len(exc.object) + exc.start
        if not 0 <= offset < self.position or exc.end > len(exc.object):
            return None
        last_start = self.position - len(self._last)
        newlines = self._newlines_before_last + self._last[: max(0, offset - last_start)].count(
            b"\n"
        )
        return offset, newlines + 1


class _Lines:
    """The lines of a text stream for ``csv.reader``, remembering the last one and the end.

    ``csv.reader`` silently returns a field whose quote is never closed, with the rest of the file
    in it; a row that comes back after the lines ran out is such a field.
    """

    def __init__(self, text: io.TextIOBase):
        self.last = ""
        self.ended = False
        self._lines = self._read(iter(text))

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def _read(self, lines: Iterator[str]) -> Iterator[str]:
        for line in itertools.islice(lines, 1):
            # pandas drops a byte-order mark at the start of the file (before any quote)
            self.last = line = line.removeprefix("\ufeff")
            yield line
        for line in lines:
            self.last = line
            yield line
        self.ended = True


class TableReader:
    """Iterate over a table in DataFrame chunks; ``progress`` is the share of bytes read.

    Parameters
    ----------
    path : str
        A file, or ``"-"`` for standard input.
    fmt : str
        A name from :data:`FORMATS`.
    chunk_size : int, default 10,000
        Rows per chunk.
    encoding : str, default "utf-8"
        Text encoding of CSV, TSV and JSON Lines input; checked at once.
    sheet : str or int, optional
        The Excel sheet to read: a name, or a 0-based position (an int, or a string of digits
        that is not a sheet's name). Default: the first sheet.

    Attributes
    ----------
    short_rows : int
        CSV/TSV rows with fewer fields than the header, counted as the file is read; their
        missing cells are empty. (More fields than the header is an error naming the line.)
    first_short_row_line : int or None
        The line where the first of them starts.
    header : list of str or None
        The column names exactly as the file has them (CSV, TSV, Excel), once the first chunk
        is read. The chunks' columns are named as pandas names them: an empty name becomes
        "Unnamed: 2" and a repeated one "x.1", so that every column can be picked by name.
    column_types : dict
        Parquet input: the file's column types (pyarrow), so that Parquet output keeps them.
    """

    def __init__(
        self,
        path: str,
        fmt: str,
        chunk_size: int = 10_000,
        encoding: str = "utf-8",
        sheet: str | int | None = None,
    ):
        self.path = path
        self.fmt = fmt
        self.format = table_format(fmt)
        self.chunk_size = chunk_size
        self.encoding = encoding
        self.sheet = sheet
        self.name = STDIN_NAME if path == STDIO else path
        self.short_rows = 0
        self.first_short_row_line: int | None = None
        self.header: list[str] | None = None
        self.column_types: dict[str, object] = {}
        self._handle = None
        self._counted: _CountedInput | None = None
        self._size = 0
        check_encoding(encoding)
        if sheet is not None and not self.format.sheets:
            raise ClassifierError(
                f"{self.name}: {fmt} files have no sheets; a sheet can be chosen in Excel "
                "files only"
            )
        if path != STDIO:
            if not Path(path).exists():
                raise ClassifierError(f"{path}: no such file")
            if Path(path).is_dir():
                raise ClassifierError(f"{path}: is a directory, not a file")
            self._size = Path(path).stat().st_size
            if self._size == 0:
                raise ClassifierError(f"{path}: the file is empty")
        self.format.require()

    @property
    def progress(self) -> float | None:
        if self._counted is None or not self._size:
            return None
        return min(1.0, self._counted.position / self._size)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        try:
            yield from self.format.read(self)
        except UnicodeDecodeError as exc:
            raise ClassifierError(self._decode_message(exc)) from None
        finally:
            if self._handle is not None and self.path != STDIO:
                self._handle.close()

    def _open_binary(self):
        if self.path == STDIO:
            return sys.stdin.buffer
        return open(self.path, "rb")

    def _open_text(self, newline: str | None) -> io.TextIOWrapper:
        """The input as text, through a byte counter (for ``progress`` and decode errors)."""
        self._handle = self._open_binary()
        self._counted = _CountedInput(self._handle)
        return io.TextIOWrapper(self._counted, encoding=self.encoding, newline=newline)

    def _decode_message(self, exc: UnicodeDecodeError) -> str:
        located = self._counted.locate(exc) if self._counted is not None else None
        where = ""
        if located is not None:
            offset, line = located
            # Counting line feeds as bytes holds for encodings that write "\n" as one byte.
            if "a\n".encode(self.encoding).endswith(b"a\n"):
                where = f" line {line:,} (byte {offset + 1:,}):"
            else:
                where = f" byte {offset + 1:,}:"
        other = "latin-1" if codecs.lookup(self.encoding).name == "cp1252" else "cp1252"
        return f"{self.name}:{where} not valid {self.encoding}; pass --encoding (e.g. {other})"

    def _short_row(self, line: int) -> None:
        self.short_rows += 1
        if self.first_short_row_line is None:
            self.first_short_row_line = line


def _read_delimited(reader: TableReader, sep: str) -> Iterator[pd.DataFrame]:
    """CSV or TSV in chunks of strings, read as pandas' C parser reads them, row by row.

    The csv module instead of ``pandas.read_csv`` because only it tells how many fields each row
    had (pandas pads short rows silently) and on which line a row starts. What pandas does is
    kept: blank and whitespace-only lines are skipped, a byte-order mark is dropped from the
    header, and empty or repeated column names become "Unnamed: 0", "a.1" as pandas names them.
    """
    text = reader._open_text(newline="")
    what = reader.fmt.upper()
    _allow_long_fields()
    rows = None
    try:
        lines = _Lines(text)
        rows = csv.reader(lines, delimiter=sep)
        header, line = None, 0
        for fields in rows:
            start, line = line + 1, rows.line_num
            if not _is_blank(fields, lines.last, sep, start == line):
                header = fields
                break
        if header is None:
            raise ClassifierError(f"{reader.name}: the file has no header row")
        if lines.ended:
            raise _unclosed_quote(reader, start, what)
        reader.header = list(header)
        columns = _column_names(header)
        width = len(columns)
        batch: list[list[str]] = []
        done = 0
        for fields in rows:
            start, line = line + 1, rows.line_num
            if len(fields) != width or fields[0][:1] in _BLANK_START or lines.ended:
                # (one test for the common row, which needs nothing done)
                if lines.ended:
                    raise _unclosed_quote(reader, start, what)
                if len(fields) > width:
                    raise ClassifierError(
                        f"{reader.name}, line {start:,}: malformed {what} row: {len(fields)} "
                        f"fields, but the header has {width} (is a field with a "
                        f"{'tab' if sep == chr(9) else 'comma'} in it not quoted?)"
                    )
                # A blank line is skipped, as pandas does, except in a one-column file: there
                # it is an empty cell (how spreadsheets write one), and skipping it drops a row.
                if width > 1 and _is_blank(fields, lines.last, sep, start == line):
                    continue
                if not fields:
                    fields = [""]
                if len(fields) < width:
                    reader._short_row(start)
                    fields += [""] * (width - len(fields))
            batch.append(fields)
            if len(batch) == reader.chunk_size:
                yield _string_frame(batch, columns, done)
                done += len(batch)
                batch = []
        if batch or not done:
            yield _string_frame(batch, columns, done)
    except csv.Error:
        # (the csv module's message may quote the row; only the line is named)
        where = f", line {rows.line_num:,}" if rows is not None else ""
        raise ClassifierError(f"{reader.name}{where}: malformed {what} row") from None
    finally:
        _detach(text)


_BLANK_START = frozenset(" \t")  # how a field of a blank line starts


def _detach(text: io.TextIOWrapper) -> None:
    """Let go of the byte stream without closing it (standard input stays open).

    A reader dropped before its end is finalised whenever the garbage collector gets to it,
    possibly after its file was closed: then there is nothing left to detach.
    """
    try:
        text.detach()
    except ValueError:
        pass


def _unclosed_quote(reader: TableReader, line: int, what: str) -> ClassifierError:
    return ClassifierError(
        f"{reader.name}, line {line:,}: malformed {what} row: a quoted field starting in it "
        "is never closed"
    )


def _is_blank(fields: list[str], raw_line: str, sep: str, one_line: bool) -> bool:
    """Whether pandas would skip the row as a blank line.

    That is an empty line, or one of spaces and tabs without the delimiter (so not a TSV line
    with a tab), unquoted.
    """
    if not fields:
        return True
    if fields[0].strip(" \t") or not one_line:  # the common case, decided at once
        return False
    body = raw_line.rstrip("\r\n")
    return not body.strip(" \t") and sep not in body


def _column_names(header: list[str]) -> list[str]:
    """The header as pandas names the columns (used so both readers give the same names)."""
    if all(header) and len(set(header)) == len(header):
        return header
    line = io.StringIO()
    csv.writer(line, quoting=csv.QUOTE_ALL).writerow(header)
    line.seek(0)
    names = pd.read_csv(line, nrows=0, dtype=str, keep_default_na=False, engine="c").columns
    return [str(name) for name in names]


def _string_frame(rows: list[list[str]], columns: list[str], start: int) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns, dtype=str)
    frame.index = pd.RangeIndex(start, start + len(rows))  # continuing, as pandas' chunks do
    return frame


def _allow_long_fields() -> None:
    # The csv module refuses fields over 131,072 characters; a feedback text may be longer.
    limit = 2**31 - 1  # a C long on every platform
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def _read_jsonl(reader: TableReader) -> Iterator[pd.DataFrame]:
    """Records in chunks, every chunk with the columns of the first one, in its order.

    Keys may be missing from a record (an empty cell) or come in another order; a key that
    the first chunk never had is an error, since earlier chunks are already written without
    that column.
    """
    text = reader._open_text(newline=None)
    records: list[dict] = []
    seen_any = False
    columns: list[str] | None = None
    first_line = 1

    def frame() -> pd.DataFrame:
        nonlocal columns
        if columns is None:
            columns = list(dict.fromkeys(key for record in records for key in record))
        else:
            for offset, record in enumerate(records):
                if not record.keys() <= set(columns):
                    raise ClassifierError(
                        f"{reader.name}, record {first_line + offset}: has a key that none "
                        f"of the first {reader.chunk_size:,} records has; give the first "
                        "record every key (or convert the file to CSV)"
                    )
        # object dtype: values stay as JSON gave them (an int column with a null would
        # otherwise become floats: 1 -> 1.0, and ids over 2**53 rounded)
        return pd.DataFrame(records, columns=columns, dtype=object)

    try:
        for line_number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                record = _JSON_RECORD.decode(line)
            except json.JSONDecodeError:
                raise ClassifierError(
                    f"{reader.name}, line {line_number}: not valid JSON"
                ) from None
            except RecursionError:
                raise ClassifierError(
                    f"{reader.name}, line {line_number}: JSON nested too deeply to read"
                ) from None
            if not isinstance(record, dict):
                raise ClassifierError(
                    f"{reader.name}, line {line_number}: expected a JSON object per line"
                )
            records.append(_without_surrogates(record))
            if len(records) == reader.chunk_size:
                seen_any = True
                yield frame()
                first_line += len(records)
                records = []
    finally:
        _detach(text)
    if records:
        yield frame()
    elif not seen_any:
        raise ClassifierError(f"{reader.name}: no records")


def _finite_float(text: str) -> float | str:
    """A JSON number as a float; one too large for a float (1e400) stays as its text."""
    value = float(text)
    return value if math.isfinite(value) else text


# Python reads NaN and Infinity in JSON (not JSON, but Python writes them): NaN is a missing
# value, as pandas reads it; Infinity, like a number too large for a float, is kept as its text.
# (Kept as inf, it would make the JSON Lines output invalid.)
_JSON_RECORD = json.JSONDecoder(
    parse_float=_finite_float,
    parse_constant=lambda name: None if name == "NaN" else name,
)


def _read_excel(reader: TableReader) -> Iterator[pd.DataFrame]:
    # openpyxl cannot stream a read in row chunks through pandas; Excel files are capped at
    # ~1M rows anyway, so reading the sheet at once is bounded.
    source = sys.stdin.buffer.read() if reader.path == STDIO else reader.path
    source = io.BytesIO(source) if isinstance(source, bytes) else source
    unreadable = (ValueError, KeyError, OSError, zipfile.BadZipFile)
    try:
        workbook = pd.ExcelFile(source, engine="openpyxl")
    except unreadable as exc:
        raise ClassifierError(
            f"{reader.name}: not a readable .xlsx file ({type(exc).__name__})"
        ) from None
    with workbook:
        sheet = _choose_sheet(reader, [str(name) for name in workbook.sheet_names])
        try:
            # header=None: the first row is split off here, so that its names are kept as
            # they are (pandas would rename an empty or repeated one)
            frame = pd.read_excel(
                workbook,
                sheet_name=sheet,
                header=None,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
            )
        except unreadable as exc:
            raise ClassifierError(
                f"{reader.name}: not a readable .xlsx file ({type(exc).__name__})"
            ) from None
    if frame.empty:
        raise ClassifierError(f"{reader.name}: the sheet {sheet!r} is empty")
    reader.header = [str(name) for name in frame.iloc[0]]
    frame = frame.iloc[1:].set_axis(_column_names(reader.header), axis=1)
    for start in range(0, max(len(frame), 1), reader.chunk_size):
        yield frame.iloc[start : start + reader.chunk_size].reset_index(drop=True)


def _choose_sheet(reader: TableReader, names: list[str]) -> str:
    """The name of the sheet that ``reader.sheet`` asks for (a name first, then a position)."""
    wanted = reader.sheet
    if wanted is None:
        return names[0]
    if isinstance(wanted, str) and wanted in names:
        return wanted
    position = None
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        position = wanted
    elif isinstance(wanted, str) and wanted.strip().isdigit():
        position = int(wanted)
    if position is not None and 0 <= position < len(names):
        return names[position]
    asked = f"number {position}" if position is not None else describe_column(wanted)
    raise ClassifierError(
        f"{reader.name}: no sheet {asked}; the sheets are {describe_columns(names)} "
        f"(a name, or a number from 0 to {len(names) - 1})"
    )


def _read_parquet(reader: TableReader) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    source = io.BytesIO(sys.stdin.buffer.read()) if reader.path == STDIO else reader.path
    try:
        parquet = pq.ParquetFile(source)
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise ClassifierError(
            f"{reader.name}: not a readable Parquet file ({type(exc).__name__})"
        ) from None
    schema = parquet.schema_arrow
    reader.column_types = dict(zip(schema.names, schema.types, strict=True))
    empty = True
    for batch in parquet.iter_batches(batch_size=reader.chunk_size):
        empty = False
        # integer_object_nulls: an integer column with a null stays integers (pandas would
        # make it float64: 1 -> 1.0, and ids over 2**53 rounded)
        yield batch.to_pandas(integer_object_nulls=True)
    if empty:
        yield schema.empty_table().to_pandas()


def read_header(
    path: str, fmt: str, encoding: str = "utf-8", sheet: str | int | None = None
) -> list[str]:
    """The column names of a table as the file has them (reads the first rows only).

    Examples
    --------
    >>> read_header("training_data/sample_feedback.csv", "csv")  # doctest: +SKIP
    ['id', 'feedback']
    """
    reader = TableReader(path, fmt, chunk_size=1, encoding=encoding, sheet=sheet)
    chunks = iter(reader)
    try:
        first = next(chunks)
    finally:
        chunks.close()
    return list(reader.header) if reader.header is not None else [str(c) for c in first.columns]


# ----------------------------------------------------------------------------------- writing
def neutralise_formula(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with an apostrophe.

    Plain numbers such as ``-3.5`` are left alone: they are data, not formulas.
    """
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_START)
        and not _PLAIN_NUMBER.match(value)
    ):
        return "'" + value
    return value


# What pandas.api.types.infer_dtype says of an object column that holds no JSON object or array
_FLAT_KINDS = frozenset(
    {"string", "empty", "integer", "floating", "boolean", "mixed-integer-float"}
)


def _json_text(value: object) -> str:
    """A JSON object or array (a JSON Lines value) as JSON text, for a table's cell."""
    return _valid_unicode(json.dumps(value, ensure_ascii=False, default=_json_default))


def _is_composite(value: object) -> bool:
    """A value that is not one scalar: a JSON object or array, a Parquet list, struct or bytes."""
    return isinstance(value, dict | list | tuple | np.ndarray | bytes | bytearray)


def _flat_cell(value: object) -> object:
    """A composite value as one cell's text: JSON text, or bytes decoded (escaped if not UTF-8)."""
    if isinstance(value, bytes | bytearray):
        return _valid_unicode(bytes(value).decode("utf-8", "backslashreplace"))
    return _json_text(value.tolist() if isinstance(value, np.ndarray) else value)


def _flat_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with composite values as text (:func:`_flat_cell`).

    A CSV, Excel or Parquet cell holds one value; pandas would write a dict as Python's repr
    and a list from Parquet as "[1 2]", and Excel and Parquet writers refuse one.
    """
    composite: dict[int, pd.Series] = {}
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in _FLAT_KINDS:
            continue
        found = values.map(_is_composite).astype(bool)
        if found.any():
            composite[position] = values.where(~found, values[found].map(_flat_cell))
    if not composite:
        return frame
    frame = frame.copy()
    for position, values in composite.items():
        frame.isetitem(position, values)
    return frame


def _neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    risky: dict[object, pd.Series] = {}
    for column in frame.columns:
        values = frame[column]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        # A vectorised first pass: cells that start like a formula are rare, and only they go
        # through neutralise_formula (mapping every cell cost ~10% of tagging a CSV).
        # (astype(str) can only add candidates, e.g. the number -3; the function rejects them.)
        starts = values.astype(str).str.startswith(_FORMULA_START).fillna(False).astype(bool)
        if starts.any():
            risky[column] = starts
    if not risky:
        return frame
    frame = frame.copy()
    for column, starts in risky.items():
        # (a list, not Series.map: map would make a column of numbers such as -7 floats)
        candidates = frame.loc[starts, column]
        neutralised = [neutralise_formula(value) for value in candidates]
        frame.loc[starts, column] = pd.Series(neutralised, index=candidates.index, dtype=object)
    return frame


class _Sink:
    """One open output in one format; ``destination`` None means standard output.

    ``write`` appends a chunk, ``finish`` completes the file, ``discard`` drops it without
    raising (and, on standard output, without making a cut-off output look complete).
    """

    def __init__(self, name: str, destination: Path | None):
        self.name = name
        self.destination = destination
        self.input_header: list[str] | None = None  # see ChunkWriter.keep_input_layout
        self.column_types: dict[str, object] = {}

    def header(self, frame: pd.DataFrame) -> list[str]:
        """The output's column names: the input's as the file had them, then the added ones."""
        names = [str(name) for name in frame.columns]
        if self.input_header is not None:
            names[: len(self.input_header)] = self.input_header
        return names

    @property
    def emitted(self) -> bool:
        """Whether bytes may already have gone to standard output."""
        return False

    def write(self, frame: pd.DataFrame, records: list[dict] | None, first_row: int) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


class _TextSink(_Sink):
    def __init__(self, name: str, destination: Path | None):
        super().__init__(name, destination)
        self._started = False
        if destination is None:
            self.stream = sys.stdout
        else:
            # errors="replace": a lone surrogate (invalid Unicode from a JSON escape) cannot
            # be written as UTF-8; it becomes "?" instead of failing the whole run.
            self.stream = open(destination, "w", encoding="utf-8", newline="", errors="replace")

    @property
    def emitted(self) -> bool:
        return self.destination is None and self._started

    def finish(self) -> None:
        if self.destination is None:
            self.stream.flush()
        else:
            self.stream.close()

    def discard(self) -> None:
        if self.destination is not None:
            # Closing flushes, which fails again on a full disk; the file goes anyway (and the
            # descriptor is closed even when the flush fails).
            _quietly(self.stream.close)


class _DelimitedSink(_TextSink):
    def __init__(self, name: str, destination: Path | None, sep: str):
        super().__init__(name, destination)
        self.sep = sep

    def write(self, frame: pd.DataFrame, records: list[dict] | None, first_row: int) -> None:
        header = not self._started
        self._started = True
        safe = _neutralise_frame(_flat_cells(frame))
        if header:  # a column name is a cell too: "=HYPERLINK(...)" must not become a formula
            names = [neutralise_formula(name) for name in self.header(safe)]
            safe = safe.set_axis(names, axis=1) if names != list(safe.columns) else safe
        safe.to_csv(
            self.stream,
            sep=self.sep,
            index=False,
            header=header,
            quoting=csv.QUOTE_MINIMAL,
            # csv quotes a field only for the characters of its line terminator, so with
            # "\n" a text holding a bare "\r" went out unquoted and split its row on reading.
            # CRLF (RFC 4180) makes every field with either character quoted.
            lineterminator="\r\n",
        )


class _JsonlSink(_TextSink):
    def write(self, frame: pd.DataFrame, records: list[dict] | None, first_row: int) -> None:
        """Writes ``records`` (nested dicts) when given, else the frame's rows."""
        self._started = True
        rows = records if records is not None else frame.to_dict("records")
        self.stream.writelines(
            json.dumps(_json_nulls(row), ensure_ascii=False, default=_json_default) + "\n"
            for row in rows
        )


def _json_nulls(row: dict) -> dict:
    """The row with missing values (pandas' NaN for a missing key or null) as JSON null:
    ``json.dumps`` would write NaN, which is not JSON."""
    if any(_is_missing(value) for value in row.values()):
        return {k: None if _is_missing(v) else v for k, v in row.items()}
    return row


class _StdoutBytes:
    """Standard output for a binary writer: counts what went out, and can be cut off.

    Once cut off, later writes go nowhere: a writer's closing bytes (a Parquet footer, which
    pyarrow writes even when its writer is merely garbage-collected) must not make an
    interrupted output look like a whole file.
    """

    closed = False

    def __init__(self):
        self._out = sys.stdout.buffer
        self.position = 0
        self.cut = False

    def write(self, data) -> int:
        size = len(memoryview(data))
        if not self.cut:
            self._out.write(data)
            self.position += size
        return size

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        if not self.cut:
            self._out.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.flush()


class _ExcelSink(_Sink):
    def __init__(self, name: str, destination: Path | None):
        super().__init__(name, destination)
        from openpyxl import Workbook

        self._workbook = Workbook(write_only=True)
        self._sheet = self._workbook.create_sheet("tagged")
        self._out = _StdoutBytes() if destination is None else None
        self._started = False

    @property
    def emitted(self) -> bool:
        return self._out is not None and self._out.position > 0

    def write(self, frame: pd.DataFrame, records: list[dict] | None, first_row: int) -> None:
        if first_row + len(frame) + 1 > EXCEL_MAX_ROWS:
            raise ClassifierError(
                f"{self.name}: more than {EXCEL_MAX_ROWS - 1:,} rows do not fit in an Excel "
                "sheet; write .csv or .parquet instead"
            )
        # No formula prefix here: a cell that starts like a formula is written as a text cell,
        # which Excel shows as it is and never runs (a "'" would be shown as part of the text).
        if not self._started:
            self._sheet.append([self._text_cell(_excel_text(c)) for c in self.header(frame)])
            self._started = True
        for offset, row in enumerate(frame.itertuples(index=False)):
            cells = []
            for column, value in zip(frame.columns, row, strict=True):
                if _is_missing(value):
                    value = None
                elif not isinstance(value, str):
                    value = _excel_value(value)
                if isinstance(value, str):
                    value = _excel_text(value)
                    if len(value) > EXCEL_MAX_CELL:
                        raise ClassifierError(
                            f"{self.name}: row {first_row + offset + 1}, column "
                            f"{describe_column(column)}: longer than {EXCEL_MAX_CELL:,} "
                            "characters, Excel's limit for a cell; write .csv, .jsonl or "
                            ".parquet instead"
                        )
                    if value.startswith(_FORMULA_START):
                        value = self._text_cell(value)
                cells.append(value)
            self._sheet.append(cells)

    def _text_cell(self, value: str):
        """A cell that holds ``value`` as text even if it starts with "=" (openpyxl would
        otherwise store such a string as a formula)."""
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self._sheet, value=value)
        cell.data_type = "s"
        return cell

    def finish(self) -> None:
        self._workbook.save(self._out if self._out is not None else self.destination)

    def discard(self) -> None:
        if self._out is not None:
            self._out.cut = True
        # The write-only sheet streams its rows into a temporary file of openpyxl's own (in the
        # system's temporary folder); close its generators and remove that file now, not at exit.
        rows = getattr(self._sheet, "_rows", None)
        if rows is not None:
            _quietly(rows.close)
        writer = getattr(self._sheet, "_writer", None)
        if writer is not None:
            _quietly(writer.close)
            _quietly(writer.cleanup)


class _ParquetSink(_Sink):
    """Parquet holds one type per column, fixed when the file starts: by the first chunk.

    A column keeps the input's type when the input was Parquet (``column_types``). Otherwise its
    type is what the first chunk's values make it, except that a column without any value there,
    or mixing kinds of values (numbers and text, say), or holding JSON objects or arrays, is
    written as text (JSON text for non-strings: ``7``, ``true``, ``{"k": 1}``). A later value
    that does not fit its column's type is an error naming the row and column.
    """

    def __init__(self, name: str, destination: Path | None):
        super().__init__(name, destination)
        self._writer = None
        self._schema = None
        self._out = _StdoutBytes() if destination is None else None

    @property
    def emitted(self) -> bool:
        return self._out is not None and self._out.position > 0

    def write(self, frame: pd.DataFrame, records: list[dict] | None, first_row: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            self._schema = pa.schema(
                [self._first_type(frame, position) for position in range(frame.shape[1])]
            )
            sink = self._out if self._out is not None else str(self.destination)
            self._writer = pq.ParquetWriter(sink, self._schema)
        arrays = [
            self._array(frame.iloc[:, position], field, first_row)
            for position, field in enumerate(self._schema)
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def _first_type(self, frame: pd.DataFrame, position: int):
        import pyarrow as pa

        name = str(frame.columns[position])
        known = self.column_types.get(name)
        if known is not None:
            return pa.field(name, known)
        values = frame.iloc[:, position]
        family = _object_family(values)
        if family in ("null", "mixed", "text"):
            return pa.field(name, pa.string())  # (no value yet, or several kinds: text)
        if family == "number" and _holds_big_integers(values):
            return pa.field(name, pa.string())  # a double would round them
        try:
            kind = pa.array(values, from_pandas=True).type
        except _arrow_refusals():
            return pa.field(name, pa.string())  # e.g. an integer beyond 64 bits
        return pa.field(name, pa.string() if pa.types.is_nested(kind) else kind)

    def _array(self, values: pd.Series, field, first_row: int):
        import pyarrow as pa

        if field.name in self.column_types:  # values read from a column of this very type
            try:
                return pa.array(values, type=field.type, from_pandas=True)
            except _arrow_refusals():
                pass  # (e.g. --redact's text in the text column: decided as below)
        family = _type_family(field.type)
        if family == "text" and values.dtype == object:
            values = _as_text(values)
        # Only values of the column's family, converted exactly: never false as 0.0 (pyarrow
        # would), "001" as 1, or 2.5 as 2.
        if _object_family(values) in ("null", "other", family):
            try:
                array = pa.array(values, from_pandas=True)
                if array.type == field.type:
                    return array
                if _type_family(array.type) in ("null", family):
                    return array.cast(field.type)  # (a safe cast: exact or an error)
            except _arrow_refusals():
                pass
        row = first_row + _first_misfit(values, field.type) + 1
        raise ClassifierError(
            f"{self.name}: row {row:,}, column {describe_column(field.name)}: a value of "
            f"another kind than the column's first values ({field.type}); Parquet holds one "
            "kind per column, fixed by the first rows: write .csv or .jsonl instead"
        ) from None

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def discard(self) -> None:
        if self._out is not None:
            self._out.cut = True
        if self._writer is not None:
            _quietly(self._writer.close)


def _arrow_refusals() -> tuple[type[BaseException], ...]:
    """pyarrow's conversion errors (their messages quote the value: never shown)."""
    import pyarrow as pa

    return (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        pa.ArrowNotImplementedError,
        OverflowError,
        UnicodeError,  # a lone surrogate inside a JSON array or object
    )


# What pandas' infer_dtype says of an object column -> the family of its values (see
# _type_family); other answers (datetime, decimal, bytes...) are left to pyarrow: "other".
_INFERRED_FAMILY = {
    "empty": "null",
    "string": "text",
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "boolean": "bool",
    "mixed": "mixed",
    "mixed-integer": "mixed",
    "unknown-array": "mixed",
}


def _object_family(values: pd.Series) -> str:
    """The family of a column's values, decided in Python (pyarrow converts loosely: a column
    of 1e300 and false becomes doubles). JSON objects and arrays count as "mixed"."""
    if values.dtype != object:
        return "other"  # a typed column: pyarrow converts it exactly
    return _INFERRED_FAMILY.get(pd.api.types.infer_dtype(values, skipna=True), "other")


def _holds_big_integers(values: pd.Series) -> bool:
    """Whether an object column holds an integer that a double cannot hold exactly."""
    return values.dtype == object and any(
        type(value) is int and abs(value) > 2**53 for value in values
    )


def _as_text(values: pd.Series) -> pd.Series:
    """An object column for a text column: strings as they are, other values as JSON text."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    other = values.map(lambda value: not isinstance(value, str) and not _is_missing(value))
    other = other.astype(bool)
    texts = values[other].map(lambda v: _flat_cell(v) if _is_composite(v) else _json_text(v))
    return values.where(~other, texts)


def _type_family(kind) -> str:
    """Which kinds of values a pyarrow type holds, for deciding what may be cast to it."""
    import pyarrow as pa

    tests = {
        "null": pa.types.is_null,
        "bool": pa.types.is_boolean,
        "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
        "decimal": pa.types.is_decimal,
        "text": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "binary": lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t),
        "time": pa.types.is_temporal,
    }
    return next((family for family, test in tests.items() if test(kind)), str(kind))


def _first_misfit(values: pd.Series, kind) -> int:
    """The position of the first value that does not fit ``kind`` (0 if none is found)."""
    import pyarrow as pa

    family = _type_family(kind)
    for position, value in enumerate(values):
        one = pd.Series([value], dtype=values.dtype)
        if _object_family(one) not in ("null", "other", family):
            return position
        try:
            pa.array(one, from_pandas=True).cast(kind)
        except _arrow_refusals():
            return position
    return 0


class ChunkWriter:
    """Write DataFrame chunks to one output; nothing appears at ``path`` before :meth:`commit`.

    Use it as a context manager: leaving the block without :meth:`commit`, or by any exception,
    removes the partial output. Ctrl-C or a termination signal then comes out as
    :class:`~classifier._errors.Interrupted`, whose message says what was left behind.

    Examples
    --------
    >>> with ChunkWriter("tagged.csv", "csv") as writer:  # doctest: +SKIP
    ...     for chunk in chunks:
    ...         writer.write(chunk)
    ...     writer.commit()

    Parameters
    ----------
    path : str
        The output file, or ``"-"`` for standard output.
    fmt : str
        A name from :data:`FORMATS`.
    force : bool, default False
        Replace an existing file. Without it, a file at ``path`` is refused at once, and is kept
        (and this output dropped) if another program creates it before :meth:`commit`.
    """

    def __init__(self, path: str, fmt: str, force: bool = False):
        self.path = path
        self.fmt = fmt
        self.format = table_format(fmt)
        self.force = force
        self.rows = 0
        self.committed = False
        self.name = STDOUT_NAME if path == STDIO else path
        self._sink: _Sink | None = None
        self._temporary: Path | None = None
        self._target: Path | None = None
        self._existed = False
        self.format.require()
        if path == STDIO:
            if not self.format.to_stdout:
                raise ClassifierError(
                    f"{fmt} output cannot go to standard output; pass --output FILE"
                )
            if self.format.binary and _is_terminal(sys.stdout):
                raise ClassifierError(
                    f"{fmt} output is binary and standard output is a terminal: redirect it "
                    "to a file or pass --output FILE"
                )
            self._sink = self.format.sink(self.name, None)
            return
        target = Path(path)
        if target.is_dir():
            raise ClassifierError(f"{path}: is a folder; give a file name for the output")
        self._existed = target.exists() or target.is_symlink()
        if self._existed and not force:
            raise ClassifierError(f"{path}: already exists; pass --force to overwrite it")
        self._target = target
        self._temporary = temporary_beside(target)
        try:
            self._sink = self.format.sink(self.name, self._temporary)
        except BaseException as exc:
            discard(self._temporary)
            self._temporary = None
            if isinstance(exc, OSError):
                raise ClassifierError(self._failure(exc)) from None
            raise

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc is None:
            if not self.committed:
                self.abort()  # left without commit: nothing must appear
            return False
        self.abort()
        if isinstance(exc, Interrupted):
            return False
        stopped = stop_signal(exc)
        if stopped is not None:
            label, exit_code = stopped
            raise Interrupted(self._stop_message(label), exit_code) from None
        return False

    def keep_input_layout(
        self, header: list[str] | None = None, column_types: dict[str, object] | None = None
    ) -> None:
        """Say how the input names and types its columns, before the first :meth:`write`.

        ``header``: the names of the frames' first columns as the input file has them, when
        they differ (pandas renames repeated and empty names: "x.1", "Unnamed: 2"); CSV, TSV
        and Excel output write these. ``column_types``: pyarrow types by column name (Parquet
        input), which Parquet output keeps.
        """
        self._sink.input_header = header
        self._sink.column_types = dict(column_types or {})

    def write(self, frame: pd.DataFrame, records: list[dict] | None = None) -> None:
        """Append a chunk. JSON Lines writes ``records`` (nested dicts) when given."""
        try:
            self._sink.write(frame, records, self.rows)
        except OSError as exc:
            raise self._os_error(exc) from None
        self.rows += len(frame)

    def commit(self) -> None:
        """Finish the output and move it into place.

        Raises
        ------
        ClassifierError
            The disk is full, or (without ``force``) another program created ``path`` meanwhile;
            that file is kept and this output removed.
        """
        if self.committed:
            return
        try:
            self._sink.finish()
        except OSError as exc:
            raise self._os_error(exc) from None
        if self._temporary is None:
            self.committed = True
            note_written(STDOUT_NAME)
            return
        # Held-back signals: once the file is in place, the writer must know it is committed,
        # or the cleanup after a Ctrl-C would report it as not written.
        with deferred_signals():
            try:
                publish(self._temporary, self._target, replace=self.force)
            except FileExistsError:
                self.abort()
                raise ClassifierError(
                    f"{self.path}: another program created this file while this output was "
                    "being written; that file is kept and this output was discarded (pass "
                    "--force to overwrite it)"
                ) from None
            except OSError as exc:
                raise self._os_error(exc) from None
            self._temporary = None
            self.committed = True

    def abort(self) -> None:
        """Drop the partial output; the target path is left as it was. Never raises an OSError."""
        if self.committed:
            return  # nothing to undo: the output is whole
        try:
            if self._sink is not None:
                _quietly(self._sink.discard)
        finally:
            if self._temporary is not None:
                discard(self._temporary)
                self._temporary = None

    def _os_error(self, exc: OSError) -> BaseException:
        if self.path == STDIO and isinstance(exc, BrokenPipeError):
            return exc  # the reader went away (`| head`): the command line ends quietly
        return ClassifierError(self._failure(exc))

    def _failure(self, exc: OSError) -> str:
        if self.path == STDIO:
            return (
                f"{STDOUT_NAME}: cannot write ({reason(exc)}) after {self.rows:,} rows; that "
                "output is incomplete"
            )
        kept = "the existing file is unchanged" if self._existed else "it was not created"
        return f"{self.path}: cannot write ({reason(exc)}); {kept}"

    def _stop_message(self, label: str) -> str:
        """What an interruption left behind, truthfully."""
        if self.committed:
            return f"{label} after {self.name} was written in full."
        if self.path == STDIO:
            if self._sink is not None and self._sink.emitted:
                if self.rows:
                    return (
                        f"{label} after {self.rows:,} rows were written to standard output; "
                        "that output is incomplete."
                    )
                return (
                    f"{label} while the first rows were being written to standard output; "
                    "that output is incomplete."
                )
            return f"{label}; nothing was written to standard output."
        if self._existed:
            return f"{label}; {self.path} was left as it was."
        return f"{label}; no output was written ({self.path} was not created)."


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def _quietly(action: Callable[[], object]) -> None:
    """Run a cleanup step whose failure does not matter: the output is being thrown away."""
    try:
        action()
    except Exception:
        pass


def _without_surrogates(record: dict) -> dict:
    """A JSON record whose strings hold no lone surrogate (a JSON escape such as "\\ud800").

    Such a string is not valid Unicode: no table library can hold it and no UTF-8 file can store
    it. Each one becomes "?", so the text keeps its length.
    """
    for key, value in record.items():
        if isinstance(value, str) and not value.isascii():
            record[key] = _valid_unicode(value)
    if not all(key.isascii() for key in record):  # keys are column names: the same rule
        record = {_valid_unicode(key): value for key, value in record.items()}
    return record


def _valid_unicode(text: str) -> str:
    """``text`` with each lone surrogate replaced by "?"."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _excel_text(value: str) -> str:
    """The text as an .xlsx cell holds it: without the control characters the file cannot
    hold (tab and line feed stay), and with each line break as a line feed.

    A cell's line break in Excel is a line feed; the sheet's XML cannot hold a carriage return
    as written (an XML reader turns it into a line feed), so it is made one here, explicitly.
    """
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _EXCEL_ILLEGAL.sub("", value)
    return value if value.isascii() else _valid_unicode(value)  # (nor lone surrogates)


def _excel_value(value: object) -> object:
    """A value that is not text as a sheet can hold it: numbers, dates and times as they are;
    long integers, time-zone-aware times and composite values as text."""
    if isinstance(value, bool | np.bool_ | float | np.floating | Decimal | timedelta):
        return value
    if isinstance(value, int | np.integer):
        # Excel keeps 15 digits of a number: it would change a longer id's last digits
        return str(value) if abs(int(value)) >= EXCEL_EXACT_INTEGERS else value
    if isinstance(value, datetime | time):
        return value.isoformat() if value.tzinfo is not None else value  # Excel has no zones
    if isinstance(value, date):
        return value
    return _flat_cell(value) if _is_composite(value) else str(value)


def describe_column(name: object, width: int = 24) -> str:
    """A column name for a message, quoted and cut short: in a headerless file it is data."""
    text = str(name)
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def describe_columns(names, limit: int = 12) -> str:
    """Several column names for a message (see :func:`describe_column`).

    A file without a header row has feedback where the names should be: names that read like
    sentences are not shown at all, not even cut short.
    """
    names = list(names)
    if header_looks_like_data(names):
        return "(not shown: the first row looks like data, not a header; does the file have one?)"
    shown = ", ".join(describe_column(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def header_looks_like_data(names) -> bool:
    """Whether column names look like feedback (a sentence-like name): no header row."""
    return any(len(str(name)) > 40 or len(str(name).split()) >= 4 for name in names)


def _is_missing(value: object) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and value != value)
    )


def _json_default(value: object):
    """What JSON cannot hold, from Parquet and Excel input: numpy values and arrays, timestamps,
    bytes, decimals (as text, exactly)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes | bytearray):
        return _flat_cell(value)
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------- the registry
REGISTRY: dict[str, TableFormat] = {
    entry.name: entry
    for entry in (
        TableFormat(
            name="csv",
            extensions=(".csv",),
            read=partial(_read_delimited, sep=","),
            sink=partial(_DelimitedSink, sep=","),
        ),
        TableFormat(
            name="tsv",
            extensions=(".tsv", ".tab"),
            read=partial(_read_delimited, sep="\t"),
            sink=partial(_DelimitedSink, sep="\t"),
        ),
        TableFormat(
            name="jsonl",
            extensions=(".jsonl", ".ndjson"),
            read=_read_jsonl,
            sink=_JsonlSink,
        ),
        TableFormat(
            name="xlsx",
            extensions=(".xlsx",),
            read=_read_excel,
            sink=_ExcelSink,  # to standard output too: the workbook is saved there at the end
            module="openpyxl",
            extra="excel",
            binary=True,
            sheets=True,
        ),
        TableFormat(
            name="parquet",
            extensions=(".parquet", ".pq"),
            read=_read_parquet,
            sink=_ParquetSink,  # to standard output too: one writer streams one file there
            module="pyarrow",
            extra="parquet",
            binary=True,
        ),
    )
}
FORMATS = tuple(REGISTRY)
_EXTENSIONS = {
    extension: entry.name for entry in REGISTRY.values() for extension in entry.extensions
}
