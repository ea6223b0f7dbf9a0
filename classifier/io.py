"""Reading and writing tables in chunks: CSV, TSV, JSON Lines, Excel and Parquet.

Readers yield pandas DataFrames of at most ``chunk_size`` rows, so memory stays flat whatever the
file size. Values are read as strings wherever the format allows, so identifiers such as
``007`` come back unchanged. Writers write to a temporary file beside the target and rename it into
place only on :meth:`ChunkWriter.commit`: an error or Ctrl-C leaves no half-written file.

Error messages name the file and the row or column; they never quote cell contents.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from classifier._errors import ClassifierError
from classifier._files import move_into_place, temporary_beside

STDIO = "-"
FORMATS = ("csv", "tsv", "jsonl", "xlsx", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_EXTRAS = {"xlsx": ("openpyxl", "excel"), "parquet": ("pyarrow", "parquet")}
EXCEL_MAX_ROWS = 1_048_576  # a worksheet's hard limit, header included
EXCEL_MAX_CELL = 32_767  # characters in one cell; openpyxl would cut longer text silently
# XML 1.0 forbids these control characters, so an .xlsx cell cannot hold them (openpyxl raises
# and prints the cell); they are dropped, as Excel itself does.
_EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

# OWASP CSV injection: a spreadsheet may run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def detect_format(path: str, explicit: str | None = None, default: str = "csv") -> str:
    """The table format of ``path``: ``explicit`` if given, else from the file extension."""
    if explicit:
        if explicit not in FORMATS:
            raise ClassifierError(
                f"unknown format {explicit!r}; choose one of {', '.join(FORMATS)}"
            )
        return explicit
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


def _require(fmt: str) -> None:
    if fmt not in _EXTRAS:
        return
    module, extra = _EXTRAS[fmt]
    try:
        __import__(module)
    except ImportError:
        raise ClassifierError(
            f"{fmt} files need {module}: pip install 'therapy-themes-classifier[{extra}]'"
        ) from None


# ----------------------------------------------------------------------------------- reading
class TableReader:
    """Iterate over a table in DataFrame chunks; ``progress`` is the share of bytes read."""

    def __init__(self, path: str, fmt: str, chunk_size: int = 10_000, encoding: str = "utf-8"):
        self.path = path
        self.fmt = fmt
        self.chunk_size = chunk_size
        self.encoding = encoding
        self._handle = None
        self._size = 0
        if path != STDIO:
            if not Path(path).exists():
                raise ClassifierError(f"{path}: no such file")
            if Path(path).is_dir():
                raise ClassifierError(f"{path}: is a directory, not a file")
            self._size = Path(path).stat().st_size
            if self._size == 0:
                raise ClassifierError(f"{path}: the file is empty")
        _require(fmt)

    @property
    def progress(self) -> float | None:
        if self._handle is None or not self._size:
            return None
        try:
            return min(1.0, self._handle.tell() / self._size)
        except (OSError, ValueError):
            return None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        reader = {
            "csv": self._read_delimited,
            "tsv": self._read_delimited,
            "jsonl": self._read_jsonl,
            "xlsx": self._read_excel,
            "parquet": self._read_parquet,
        }[self.fmt]
        try:
            yield from reader()
        except UnicodeDecodeError as exc:
            raise ClassifierError(
                f"{self.path}: cannot decode byte {exc.start} as {self.encoding}; "
                "pass --encoding (e.g. --encoding cp1252 or latin-1)"
            ) from None
        finally:
            if self._handle is not None and self.path != STDIO:
                self._handle.close()

    def _open_binary(self):
        if self.path == STDIO:
            return sys.stdin.buffer
        return open(self.path, "rb")

    def _read_delimited(self) -> Iterator[pd.DataFrame]:
        self._handle = self._open_binary()
        text = io.TextIOWrapper(self._handle, encoding=self.encoding, newline="")
        rows_before = 0
        try:
            chunks = pd.read_csv(
                text,
                sep="\t" if self.fmt == "tsv" else ",",
                dtype=str,
                keep_default_na=False,  # an empty cell stays "", it is not NaN
                na_filter=False,
                chunksize=self.chunk_size,
                engine="c",
            )
            for chunk in chunks:
                rows_before += len(chunk)
                yield chunk
        except pd.errors.EmptyDataError:
            raise ClassifierError(f"{self.path}: the file has no header row") from None
        except pd.errors.ParserError as exc:
            line = re.search(r"line (\d+)", str(exc))
            where = f"line {line.group(1)}" if line else f"after data row {rows_before}"
            raise ClassifierError(
                f"{self.path}, {where}: malformed {self.fmt.upper()} row "
                "(wrong number of fields or an unclosed quote)"
            ) from None
        finally:
            text.detach()

    def _read_jsonl(self) -> Iterator[pd.DataFrame]:
        """Records in chunks, every chunk with the columns of the first one, in its order.

        Keys may be missing from a record (an empty cell) or come in another order; a key that
        the first chunk never had is an error, since earlier chunks are already written without
        that column.
        """
        self._handle = self._open_binary()
        text = io.TextIOWrapper(self._handle, encoding=self.encoding)
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
                            f"{self.path}, record {first_line + offset}: has a key that none "
                            f"of the first {self.chunk_size:,} records has; give the first "
                            "record every key (or convert the file to CSV)"
                        )
            return pd.DataFrame.from_records(records, columns=columns)

        try:
            for line_number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise ClassifierError(
                        f"{self.path}, line {line_number}: not valid JSON"
                    ) from None
                if not isinstance(record, dict):
                    raise ClassifierError(
                        f"{self.path}, line {line_number}: expected a JSON object per line"
                    )
                records.append(_without_surrogates(record))
                if len(records) == self.chunk_size:
                    seen_any = True
                    yield frame()
                    first_line += len(records)
                    records = []
        finally:
            text.detach()
        if records:
            yield frame()
        elif not seen_any:
            raise ClassifierError(f"{self.path}: no records")

    def _read_excel(self) -> Iterator[pd.DataFrame]:
        # openpyxl cannot stream a read in row chunks through pandas; Excel files are capped at
        # ~1M rows anyway, so reading the sheet at once is bounded.
        source = sys.stdin.buffer.read() if self.path == STDIO else self.path
        source = io.BytesIO(source) if isinstance(source, bytes) else source
        try:
            frame = pd.read_excel(source, dtype=str, keep_default_na=False, na_filter=False)
        except (ValueError, KeyError, OSError) as exc:
            raise ClassifierError(
                f"{self.path}: not a readable .xlsx file ({type(exc).__name__})"
            ) from None
        if frame.empty and not len(frame.columns):
            raise ClassifierError(f"{self.path}: the sheet is empty")
        for start in range(0, max(len(frame), 1), self.chunk_size):
            yield frame.iloc[start : start + self.chunk_size].reset_index(drop=True)

    def _read_parquet(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        source = io.BytesIO(sys.stdin.buffer.read()) if self.path == STDIO else self.path
        try:
            parquet = pq.ParquetFile(source)
        except Exception as exc:  # pyarrow raises ArrowInvalid and friends
            raise ClassifierError(
                f"{self.path}: not a readable Parquet file ({type(exc).__name__})"
            ) from None
        empty = True
        for batch in parquet.iter_batches(batch_size=self.chunk_size):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield parquet.schema_arrow.empty_table().to_pandas()


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
        frame.loc[starts, column] = frame.loc[starts, column].map(neutralise_formula)
    return frame


class ChunkWriter:
    """Write DataFrame chunks to one output; nothing appears at ``path`` before :meth:`commit`."""

    def __init__(self, path: str, fmt: str, force: bool = False):
        self.path = path
        self.fmt = fmt
        self.rows = 0
        self._started = False
        _require(fmt)
        if path == STDIO:
            self._target = None
            self._temporary = None
            return
        target = Path(path)
        if target.exists() and not force:
            raise ClassifierError(f"{path}: already exists; pass --force to overwrite it")
        self._target = target
        self._temporary = temporary_beside(target)
        self._open()

    def _open(self) -> None:
        self._opened = True
        destination = self._temporary
        if self.fmt in ("csv", "tsv", "jsonl"):
            if destination is None:
                self._stream = sys.stdout
            else:
                # errors="replace": a lone surrogate (invalid Unicode from a JSON escape) cannot
                # be written as UTF-8; it becomes "?" instead of failing the whole run.
                self._stream = open(
                    destination, "w", encoding="utf-8", newline="", errors="replace"
                )
        elif self.fmt == "xlsx":
            from openpyxl import Workbook

            self._workbook = Workbook(write_only=True)
            self._sheet = self._workbook.create_sheet("tagged")
        elif self.fmt == "parquet":
            self._parquet = None

    def write(self, frame: pd.DataFrame, records: list[dict] | None = None) -> None:
        """Append a chunk. JSON Lines writes ``records`` (nested dicts) when given."""
        # Standard output is opened on the first chunk; every later chunk goes to the same
        # writer (Parquet and Excel used to start a new file per chunk: an unreadable result).
        if not getattr(self, "_opened", False):
            self._open()
        if self.fmt in ("csv", "tsv"):
            _neutralise_frame(frame).to_csv(
                self._stream,
                sep="\t" if self.fmt == "tsv" else ",",
                index=False,
                header=not self._started,
                quoting=csv.QUOTE_MINIMAL,
                # csv quotes a field only for the characters of its line terminator, so with
                # "\n" a text holding a bare "\r" went out unquoted and split its row on reading.
                # CRLF (RFC 4180) makes every field with either character quoted.
                lineterminator="\r\n",
            )
        elif self.fmt == "jsonl":
            rows = records if records is not None else frame.to_dict("records")
            self._stream.writelines(
                json.dumps(row, ensure_ascii=False, default=_json_default) + "\n" for row in rows
            )
        elif self.fmt == "xlsx":
            if self.rows + len(frame) + 1 > EXCEL_MAX_ROWS:
                raise ClassifierError(
                    f"{self.path}: more than {EXCEL_MAX_ROWS - 1:,} rows do not fit in an Excel "
                    "sheet; write .csv or .parquet instead"
                )
            safe = _neutralise_frame(frame)
            if not self._started:
                header = [neutralise_formula(_excel_text(str(c))) for c in safe.columns]
                self._sheet.append(header)
            for offset, row in enumerate(safe.itertuples(index=False)):
                cells = []
                for column, value in zip(safe.columns, row, strict=True):
                    if _is_missing(value):
                        value = None
                    elif isinstance(value, str):
                        value = _excel_text(value)
                        if len(value) > EXCEL_MAX_CELL:
                            raise ClassifierError(
                                f"{self.path}: row {self.rows + offset + 1}, column "
                                f"{describe_column(column)}: longer than {EXCEL_MAX_CELL:,} "
                                "characters, Excel's limit for a cell; write .csv, .jsonl or "
                                ".parquet instead"
                            )
                    cells.append(value)
                self._sheet.append(cells)
        elif self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                sink = self._temporary if self._temporary is not None else sys.stdout.buffer
                self._parquet = pq.ParquetWriter(sink, self._schema)
            else:
                table = table.cast(self._schema, safe=False)
            self._parquet.write_table(table)
        self._started = True
        self.rows += len(frame)

    def commit(self) -> None:
        """Finish the file and move it into place."""
        if self.fmt in ("csv", "tsv", "jsonl"):
            if self._temporary is None:
                self._stream.flush()
            else:
                self._stream.close()
        elif self.fmt == "xlsx":
            self._workbook.save(self._temporary if self._temporary else sys.stdout.buffer)
        elif self.fmt == "parquet" and self._parquet is not None:
            self._parquet.close()
        if self._temporary is not None:
            move_into_place(self._temporary, self._target)
            self._temporary = None

    def abort(self) -> None:
        """Drop the partial output; the target path is left as it was."""
        stream = getattr(self, "_stream", None)
        if stream is not None and stream is not sys.stdout:
            stream.close()
        # (openpyxl's write-only sheet holds an open generator over the file: finish it first)
        for closable in (getattr(self, "_parquet", None), getattr(self, "_sheet", None)):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # the file is being thrown away; a close error is irrelevant
                    pass
        if self._temporary is not None:
            Path(self._temporary).unlink(missing_ok=True)
            self._temporary = None


def _without_surrogates(record: dict) -> dict:
    """A JSON record whose strings hold no lone surrogate (a JSON escape such as "\\ud800").

    Such a string is not valid Unicode: no table library can hold it and no UTF-8 file can store
    it. Each one becomes "?", so the text keeps its length.
    """
    for key, value in record.items():
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                record[key] = value.encode("utf-8", "replace").decode("utf-8")
    return record


def _excel_text(value: str) -> str:
    """The text without the control characters an .xlsx file cannot hold (tab, LF, CR stay)."""
    value = _EXCEL_ILLEGAL.sub("", value)
    if not value.isascii():  # lone surrogates cannot be stored either
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def describe_column(name: object, width: int = 24) -> str:
    """A column name for a message, quoted and cut short: in a headerless file it is data."""
    text = str(name)
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def describe_columns(names, limit: int = 12) -> str:
    """Several column names for a message (see :func:`describe_column`)."""
    names = list(names)
    shown = ", ".join(describe_column(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _json_default(value: object):
    # numpy scalars and pandas timestamps from Parquet/Excel inputs
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
