"""Coded tables: a coder's labels in spreadsheets, read and written as label dicts.

A coded table has a text column (found as ``classifier tag`` finds it), an optional id column and
one coding column per theme, named by the theme's id in the codebook::

    id,feedback,genuineness,trust,empathy,collaboration,boundaries,progress
    r1,She listened and never rushed me.,,,positive,,,
    r2,"Kind, but we never get anywhere.",,,strength,,,-

A coding cell holds the polarity: the codebook's names (``positive``/``negative``), their display
names (``strength``/``concern``), ``+``/``-`` or ``1``/``-1``; blank (or ``0``) means the theme is
absent. Case and surrounding spaces do not matter, nor a leading apostrophe (which spreadsheets and
our own writer put before ``-`` so that it is not run as a formula). A table without per-theme
columns may instead carry one ``themes`` (or ``codes``) column listing codes as ``classifier tag``
writes them (``empathy+; boundaries-``). JSON Lines files may be a corpus (records with a
``labels`` object, as in ``training_data/corpus.jsonl``) or flat records read like a table.

If the table has a ``coded`` column (``classifier review`` writes one) and any row is marked in it
(``x``, ``yes``, ``1``, ``done``...), only the marked rows are read: a coder who stops half-way
marks what they did. Rows with no text are skipped and counted.

Errors name the file, the row (counted from 1 after the header) and the column, and quote at most
the bad value when it is short: never feedback text.

Examples
--------
>>> from classifier.labels import LabelScheme, read_coded   # doctest: +SKIP
>>> table = read_coded("coded.xlsx", LabelScheme.from_codebook())   # doctest: +SKIP
>>> table.labels[:2]                                        # doctest: +SKIP
[{'empathy': 'positive'}, {'empathy': 'positive', 'progress': 'negative'}]
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from classifier._errors import ClassifierError
from classifier.codebook import Codebook, load_codebook
from classifier.io import (
    ChunkWriter,
    TableReader,
    describe_column,
    describe_columns,
    detect_format,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

TEXT_FIELD = "text"
ID_FIELD = "id"
LABELS_FIELD = "labels"
CODES_COLUMNS = ("themes", "codes")
CODED_COLUMN = "coded"
# Marks of the optional `coded` column: a coder who stops half-way marks the rows they did.
CODED_YES = frozenset({"x", "y", "yes", "1", "true", "done", "coded", "✓", "✔"})
CODED_NO = frozenset({"", "n", "no", "0", "false"})
_BLANK = frozenset({"", "0", "0.0", "none", "nan"})
_SHORT_VALUE = 20  # longer cell values are never quoted in a message: they may be feedback text


@dataclass(frozen=True)
class LabelScheme:
    """The theme ids and polarity names that coding columns are read and written with.

    Parameters
    ----------
    themes : tuple of str
        Theme ids in codebook order: the names of the coding columns.
    polarities : tuple of str
        The (positive, negative) polarity names, as label dicts hold them.
    polarity_names : dict of str to str
        Display names of the polarities (``{"positive": "strength", ...}``), also accepted as
        cell values.
    """

    themes: tuple[str, ...]
    polarities: tuple[str, str]
    polarity_names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_codebook(cls, codebook: Codebook | str | Path | None = None) -> LabelScheme:
        """The scheme of a codebook (a loaded one, a TOML path, or the packaged one if None)."""
        book = codebook if isinstance(codebook, Codebook) else load_codebook(codebook)
        return cls(book.theme_ids, tuple(book.polarities), dict(book.polarity_names))

    @classmethod
    def from_model(cls, model) -> LabelScheme:
        """The scheme a fitted model predicts with (a CompiledModel or a ThemeClassifier)."""
        stored = getattr(model, "codebook_", None)
        if not isinstance(stored, Mapping):
            stored = getattr(model, "codebook", None)
        names: dict[str, str] = {}
        if isinstance(stored, Mapping) and stored.get("toml"):
            try:
                names = dict(tomllib.loads(stored["toml"]).get("polarity_names", {}))
            except tomllib.TOMLDecodeError:
                names = {}
        return cls(tuple(model.themes_), tuple(model.polarities_), names)

    def vocabulary(self) -> dict[str, str | None]:
        """Accepted cell values (lower case) and the polarity each stands for (None: absent)."""
        positive, negative = self.polarities
        values: dict[str, str | None] = dict.fromkeys(_BLANK)
        values.update({"+": positive, "-": negative, "1": positive, "+1": positive})
        values.update({"-1": negative, "1.0": positive, "-1.0": negative})
        for polarity in self.polarities:
            values[polarity.lower()] = polarity
            name = self.polarity_names.get(polarity)
            if name:
                values[str(name).lower()] = polarity
        return values

    def accepted(self) -> str:
        """The accepted values, for messages."""
        positive, negative = self.polarities
        names = [self.polarity_names.get(p) for p in self.polarities]
        also = f", {names[0]}/{names[1]}" if all(names) else ""
        return f"{positive}/{negative}{also}, +/-, 1/-1, or blank for none"


@dataclass
class CodedTable:
    """Labels read from a coded table, one entry per row used.

    Attributes
    ----------
    path : str
        The file read.
    texts : list
        The text of each row used (as read: a string).
    labels : list of dict
        ``{theme: polarity}`` per row; ``{}`` when no theme is coded.
    rows : list of int
        Each row's number in the file, counted from 1 after the header.
    ids : list of str or None
        The id column's values, when the table has one.
    text_column, id_column : str, str or None
    coding_columns : dict of str to str
        Theme id -> the column its codes were read from (empty when read from a ``labels``
        object or a codes column).
    frame : pandas.DataFrame
        The rows used, with every column of the file.
    splits : list of str or None
        A ``split`` column's values (``train``/``test``) when the file has a valid one.
    n_read : int
        Rows in the file.
    skipped : dict of str to int
        Rows not used, by reason (``no text``, ``not marked coded``).
    notes : list of str
        Things worth telling the user (ignored columns...); never feedback text.
    """

    path: str
    texts: list
    labels: list[dict[str, str]]
    rows: list[int]
    ids: list[str] | None
    text_column: str
    id_column: str | None
    coding_columns: dict[str, str]
    frame: pd.DataFrame
    splits: list[str] | None = None
    n_read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


# ----------------------------------------------------------------------------------- values
def describe_value(value: object) -> str:
    """A cell value for an error message: quoted when short, else only its length."""
    text = str(value)
    if len(text) <= _SHORT_VALUE and "\n" not in text and "\r" not in text:
        return repr(text)
    return f"a value of {len(text)} characters"


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def parse_code(value: object, vocabulary: Mapping[str, str | None]) -> str | None:
    """The polarity a coding cell holds, None for blank; raise ``ValueError`` if unknown.

    Numbers (from Excel or Parquet) are read as 1 / -1 / 0.

    Examples
    --------
    >>> vocabulary = LabelScheme(("trust",), ("positive", "negative"),
    ...                          {"positive": "strength"}).vocabulary()
    >>> [parse_code(v, vocabulary) for v in ("Strength", " - ", -1, "", None)]
    ['positive', 'negative', 'negative', None, None]
    """
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        value = "1" if value == 1 else "-1" if value == -1 else "0" if value == 0 else str(value)
    key = str(value).strip().lower()
    if key.startswith("'"):
        key = key[1:].strip()
    if key in vocabulary:
        return vocabulary[key]
    raise ValueError(value)


def _split_code(item: str) -> tuple[str, str]:
    """``empathy+`` / ``empathy -`` / ``empathy: strength`` / ``empathy (concern)`` -> parts."""
    item = item.strip()
    if item.endswith(("+", "-")):
        return item[:-1].strip(), item[-1]
    match = re.match(r"^(.+?)\s*(?:[:=(]\s*|\s+)([^\s:=()]+)\s*\)?$", item)
    if match:
        return match.group(1), match.group(2)
    return item, ""


# ----------------------------------------------------------------------------------- reading
def read_table(path: str | Path, fmt: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """The whole table at ``path`` as one DataFrame of strings (see :class:`TableReader`)."""
    path = str(path)
    fmt = detect_format(path, fmt)
    chunks = list(TableReader(path, fmt, chunk_size=50_000, encoding=encoding))
    if not chunks:
        raise ClassifierError(f"{path}: no rows")
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return frame.reset_index(drop=True)


def find_coding_columns(
    columns: Sequence[object], scheme: LabelScheme, pattern: str = "{theme}"
) -> dict[str, str]:
    """Theme id -> column, for the columns named ``pattern`` with the theme id filled in.

    Exact names first; otherwise a column whose name matches ignoring case and surrounding space.
    Themes without a column are left out.
    """
    names = [str(column) for column in columns]
    folded = {}
    for name in names:
        folded.setdefault(name.strip().lower(), name)
    found = {}
    for theme in scheme.themes:
        wanted = pattern.format(theme=theme)
        if wanted in names:
            found[theme] = wanted
        elif wanted.strip().lower() in folded:
            found[theme] = folded[wanted.strip().lower()]
    return found


def parse_coding_columns(
    frame: pd.DataFrame,
    columns: Mapping[str, str],
    scheme: LabelScheme,
    source: str,
    rows: Sequence[int] | None = None,
) -> list[dict[str, str]]:
    """Label dicts from one coding column per theme; raise naming row and column on a bad value.

    Parameters
    ----------
    frame : pandas.DataFrame
    columns : mapping of theme id to column name
    scheme : LabelScheme
    source : str
        The file name, for messages.
    rows : sequence of int, optional
        The file's row number of each frame row (default: 1, 2, ...).
    """
    vocabulary = scheme.vocabulary()
    rows = list(rows) if rows is not None else list(range(1, len(frame) + 1))
    labels: list[dict[str, str]] = [{} for _ in range(len(frame))]
    for theme in scheme.themes:
        if theme not in columns:
            continue
        column = columns[theme]
        for position, value in enumerate(frame[column].tolist()):
            try:
                polarity = parse_code(value, vocabulary)
            except ValueError:
                raise ClassifierError(
                    f"{source}, row {rows[position]}, column {describe_column(column)}: unknown "
                    f"value {describe_value(value)}; use {scheme.accepted()}"
                ) from None
            if polarity is not None:
                labels[position][theme] = polarity
    return labels


def parse_codes_column(
    frame: pd.DataFrame, column: str, scheme: LabelScheme, source: str, rows: Sequence[int]
) -> list[dict[str, str]]:
    """Label dicts from one column listing codes (``empathy+; boundaries-``)."""
    vocabulary = scheme.vocabulary()
    themes = {theme.lower(): theme for theme in scheme.themes}
    labels = []
    for position, value in enumerate(frame[column].tolist()):
        label: dict[str, str] = {}
        where = f"{source}, row {rows[position]}, column {describe_column(column)}"
        if not _is_blank(value):
            for item in re.split(r"[;,\n]", str(value)):
                if not item.strip():
                    continue
                name, code = _split_code(item.strip().lstrip("'"))
                theme = themes.get(name.strip().lower())
                if theme is None:
                    raise ClassifierError(
                        f"{where}: unknown theme {describe_value(name.strip())}; the codebook's "
                        f"themes are {', '.join(scheme.themes)}"
                    )
                try:
                    polarity = parse_code(code, vocabulary)
                except ValueError:
                    polarity = None
                if polarity is None:
                    raise ClassifierError(
                        f"{where}: theme {theme} needs a polarity (e.g. {theme}+ or {theme}-), "
                        f"not {describe_value(code)}"
                    )
                label[theme] = polarity
        labels.append(label)
    return labels


def parse_labels_objects(
    values: Sequence[object], scheme: LabelScheme, source: str, rows: Sequence[int]
) -> list[dict[str, str]]:
    """Label dicts from corpus-style ``labels`` objects, values normalised, themes checked."""
    vocabulary = scheme.vocabulary()
    known = set(scheme.themes)
    labels = []
    for position, value in enumerate(values):
        where = f"{source}, row {rows[position]}, column {describe_column(LABELS_FIELD)}"
        if not isinstance(value, Mapping):
            if _is_blank(value):
                labels.append({})
                continue
            raise ClassifierError(f"{where}: expected an object of theme to polarity")
        label = {}
        for theme, code in value.items():
            if theme not in known:
                raise ClassifierError(
                    f"{where}: unknown theme {describe_value(theme)}; the codebook's themes are "
                    f"{', '.join(scheme.themes)}"
                )
            try:
                polarity = parse_code(code, vocabulary)
            except ValueError:
                raise ClassifierError(
                    f"{where}: unknown value {describe_value(code)} for {theme}; use "
                    f"{scheme.accepted()}"
                ) from None
            if polarity is not None:
                label[theme] = polarity
        labels.append(label)
    return labels


def _find_id_column(columns: Sequence[str], requested: str | None, source: str) -> str | None:
    names = [str(column) for column in columns]
    if requested is not None:
        if requested not in names:
            raise ClassifierError(
                f"{source}: no id column {describe_column(requested)}; "
                f"columns are: {describe_columns(names)}"
            )
        return requested
    exact = [name for name in names if name.strip().lower() == ID_FIELD]
    if len(exact) == 1:
        return exact[0]
    suffixed = [name for name in names if re.search(r"[_ ]id$", name.strip().lower())]
    return suffixed[0] if len(suffixed) == 1 else None


def _coded_mask(frame: pd.DataFrame, source: str) -> tuple[pd.Series | None, str | None]:
    """Rows marked in a ``coded`` column, or None when the column is absent or all blank."""
    column = next((c for c in frame.columns if str(c).strip().lower() == CODED_COLUMN), None)
    if column is None:
        return None, None
    marks = []
    for row, value in enumerate(frame[column].tolist(), start=1):
        key = "" if _is_blank(value) else str(value).strip().lower()
        if isinstance(value, int | float) and not _is_blank(value):
            key = "1" if value == 1 else "0" if value == 0 else key
        if key in CODED_YES:
            marks.append(True)
        elif key in CODED_NO:
            marks.append(False)
        else:
            raise ClassifierError(
                f"{source}, row {row}, column {describe_column(column)}: unknown mark "
                f"{describe_value(value)}; put x (or yes) in rows you coded, leave the others blank"
            )
    mask = pd.Series(marks, index=frame.index, dtype=bool)
    return (mask if mask.any() else None), str(column)


def _looks_like_codes(values: pd.Series, vocabulary: Mapping[str, str | None]) -> bool:
    """A column whose non-blank cells all read as polarity words (not bare numbers or signs)."""
    words = {key for key, polarity in vocabulary.items() if polarity and key.isalpha()}
    seen = False
    for value in values.tolist()[:2000]:
        if _is_blank(value) or not str(value).strip():
            continue
        if str(value).strip().lower() not in words:
            return False
        seen = True
    return seen


def labels_from_frame(
    frame: pd.DataFrame,
    scheme: LabelScheme,
    source: str,
    text_column: str | None = None,
    id_column: str | None = None,
) -> CodedTable:
    """Read the coded rows of a DataFrame (see the module docstring for the layout).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as read (strings; numbers allowed in coding cells).
    scheme : LabelScheme
        Themes and polarities the codes are read with.
    source : str
        The file name, for messages.
    text_column, id_column : str, optional
        Found as ``classifier tag`` finds them when not given; the id column is optional.

    Returns
    -------
    CodedTable

    Raises
    ------
    ClassifierError
        Missing text or coding columns, a theme left without a column, an unknown theme or value
        (naming the row and the column).
    """
    from classifier.inference import text_status
    from classifier.tagging import find_text_column

    frame = frame.reset_index(drop=True)
    columns = [str(column) for column in frame.columns]
    frame.columns = columns
    if text_column is None and TEXT_FIELD in columns and LABELS_FIELD in columns:
        text_column = TEXT_FIELD  # a corpus: its text field, whatever else the records carry
    text_column = find_text_column(columns, text_column, source)
    id_column = _find_id_column(columns, id_column, source)
    rows = list(range(1, len(frame) + 1))
    notes: list[str] = []

    coding = find_coding_columns(columns, scheme, "{theme}")
    codes_column = next((c for c in columns if c.strip().lower() in CODES_COLUMNS), None)
    is_corpus = (
        LABELS_FIELD in columns
        and frame[LABELS_FIELD].map(lambda value: isinstance(value, Mapping)).any()
    )
    if is_corpus:
        labels = parse_labels_objects(frame[LABELS_FIELD].tolist(), scheme, source, rows)
        coding = {}
    elif coding:
        missing = [theme for theme in scheme.themes if theme not in coding]
        if missing:
            raise ClassifierError(
                f"{source}: no coding column for theme(s) {', '.join(missing)}; add them "
                "(blank cells mean the theme is absent)"
            )
        labels = parse_coding_columns(frame, coding, scheme, source, rows)
        if codes_column is not None:
            notes.append(
                f"column {describe_column(codes_column)} ignored: codes were read from the "
                "per-theme columns"
            )
    elif codes_column is not None:
        labels = parse_codes_column(frame, codes_column, scheme, source, rows)
    else:
        vocabulary = scheme.vocabulary()
        lookalikes = [
            c for c in columns if c != text_column and _looks_like_codes(frame[c], vocabulary)
        ]
        hint = (
            f"; column(s) {describe_columns(lookalikes)} hold codes but are not themes of the "
            "codebook (unknown theme: check the codebook or rename the column)"
            if lookalikes
            else ""
        )
        raise ClassifierError(
            f"{source}: no coding columns: expected one column per theme named "
            f"{', '.join(scheme.themes)} (or a 'themes' column such as 'empathy+; "
            f"boundaries-'){hint}"
        )
    if coding:
        vocabulary = scheme.vocabulary()
        used = {text_column, id_column, *coding.values()}
        extra = [
            c
            for c in columns
            if c not in used
            and not c.startswith("suggested_")
            and _looks_like_codes(frame[c], vocabulary)
        ]
        if extra:
            notes.append(
                f"column(s) {describe_columns(extra)} look like coding columns but are not "
                "themes of the codebook; ignored"
            )

    keep = pd.Series(True, index=frame.index)
    skipped: dict[str, int] = {}
    marked, coded_column = _coded_mask(frame, source)
    if marked is not None:
        skipped["not marked coded"] = int((~marked).sum())
        keep &= marked
    elif coded_column is not None:
        notes.append(f"column {describe_column(coded_column)} is blank in every row: all rows read")
    has_text = frame[text_column].map(lambda value: text_status(value) == "ok")
    skipped["no text"] = int((keep & ~has_text).sum())
    keep &= has_text
    skipped = {reason: count for reason, count in skipped.items() if count}

    splits = None
    split_column = next((c for c in columns if c.strip().lower() == "split"), None)
    if split_column is not None:
        values = frame.loc[keep, split_column].map(lambda v: str(v).strip().lower()).tolist()
        if values and set(values) <= {"train", "test"}:
            splits = values
    kept = [i for i, flag in enumerate(keep.tolist()) if flag]
    return CodedTable(
        path=source,
        texts=[frame[text_column].iloc[i] for i in kept],
        labels=[labels[i] for i in kept],
        rows=[rows[i] for i in kept],
        ids=[str(frame[id_column].iloc[i]) for i in kept] if id_column else None,
        text_column=text_column,
        id_column=id_column,
        coding_columns=dict(coding),
        frame=frame.iloc[kept].reset_index(drop=True),
        splits=splits,
        n_read=len(frame),
        skipped=skipped,
        notes=notes,
    )


def read_coded(
    path: str | Path,
    scheme: LabelScheme | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    fmt: str | None = None,
    encoding: str = "utf-8",
) -> CodedTable:
    """Read a coded table (CSV, TSV, Excel, Parquet or JSON Lines) into label dicts.

    Parameters
    ----------
    path : str or Path
    scheme : LabelScheme, optional
        Themes and polarities to read the codes with; the packaged codebook's by default.
    text_column, id_column : str, optional
        Found as ``classifier tag`` finds them when not given.
    fmt : str, optional
        The format when the extension does not say (csv, tsv, jsonl, xlsx, parquet).
    encoding : str, default="utf-8"
        Text encoding of CSV, TSV and JSON Lines files.

    Returns
    -------
    CodedTable

    Examples
    --------
    >>> table = read_coded("to_code.xlsx")           # doctest: +SKIP
    >>> len(table), table.skipped                    # doctest: +SKIP
    (200, {})
    """
    scheme = scheme or LabelScheme.from_codebook()
    frame = read_table(path, fmt, encoding)
    return labels_from_frame(frame, scheme, str(path), text_column, id_column)


def second_coder_columns(spec: str, columns: Sequence[object], scheme: LabelScheme) -> dict:
    """Theme id -> column of a second coder in the same table, from ``spec``.

    ``spec`` is a pattern with ``{theme}`` (``{theme}_2``, ``coder2 {theme}``), a comma-separated
    list of ``theme=column`` pairs, or a comma-separated list of column names in codebook order.
    """
    names = [str(column) for column in columns]
    if "{theme}" in spec:
        found = find_coding_columns(names, scheme, spec)
    else:
        parts = [part.strip() for part in spec.split(",") if part.strip()]
        if parts and all("=" in part for part in parts):
            found = {}
            for part in parts:
                theme, column = (piece.strip() for piece in part.split("=", 1))
                if theme not in scheme.themes:
                    raise ClassifierError(
                        f"--second-coder: unknown theme {describe_value(theme)}; the codebook's "
                        f"themes are {', '.join(scheme.themes)}"
                    )
                found[theme] = column
        elif len(parts) == len(scheme.themes):
            found = dict(zip(scheme.themes, parts, strict=True))
        else:
            raise ClassifierError(
                f"--second-coder: give a pattern such as '{{theme}}_2', theme=column pairs, or "
                f"{len(scheme.themes)} column names in codebook order ({', '.join(scheme.themes)})"
            )
    absent = [column for column in found.values() if column not in names]
    if absent:
        raise ClassifierError(
            f"--second-coder: no column(s) {describe_columns(absent)}; columns are: "
            f"{describe_columns(names)}"
        )
    missing = [theme for theme in scheme.themes if theme not in found]
    if missing:
        raise ClassifierError(
            f"--second-coder: no column for theme(s) {', '.join(missing)}; columns are: "
            f"{describe_columns(names)}"
        )
    return found


# ----------------------------------------------------------------------------------- writing
def labels_frame(
    labels: Sequence[Mapping[str, str]], scheme: LabelScheme, prefix: str = ""
) -> pd.DataFrame:
    """One column per theme (``prefix`` + theme id) holding the polarity or ``""``."""
    return pd.DataFrame(
        {f"{prefix}{theme}": [label.get(theme, "") for label in labels] for theme in scheme.themes},
        columns=[f"{prefix}{theme}" for theme in scheme.themes],
    )


def write_coded(
    path: str | Path,
    texts: Sequence[object],
    labels: Sequence[Mapping[str, str]],
    scheme: LabelScheme | None = None,
    ids: Sequence[object] | None = None,
    fmt: str | None = None,
    force: bool = False,
) -> Path:
    """Write texts and labels as a coded table; :func:`read_coded` reads it back unchanged.

    Tables get ``id`` (when given), ``text`` and one column per theme; JSON Lines gets corpus
    records ``{"id", "text", "labels"}``. The write is atomic.

    Parameters
    ----------
    path : str or Path
        Where to write; the format comes from the extension unless ``fmt`` says.
    texts : sequence of str
    labels : sequence of dict
        ``{theme: polarity}`` per text.
    scheme : LabelScheme, optional
        The packaged codebook's by default.
    ids : sequence, optional
    fmt : str, optional
    force : bool, default=False
        Overwrite an existing file.
    """
    scheme = scheme or LabelScheme.from_codebook()
    if len(texts) != len(labels) or (ids is not None and len(ids) != len(texts)):
        raise ClassifierError("texts, labels and ids must have the same length")
    known = set(scheme.themes)
    for row, label in enumerate(labels, start=1):
        for theme, polarity in label.items():
            if theme not in known or polarity not in scheme.polarities:
                raise ClassifierError(
                    f"labels row {row}: unknown theme or polarity {describe_value(theme)}"
                )
    path = str(path)
    fmt = detect_format(path, fmt)
    frame = pd.DataFrame({TEXT_FIELD: list(texts)})
    if ids is not None:
        frame.insert(0, ID_FIELD, [str(value) for value in ids])
    writer = ChunkWriter(path, fmt, force=force)
    try:
        if fmt == "jsonl":
            records = [
                {**({ID_FIELD: str(ids[i])} if ids is not None else {}), TEXT_FIELD: texts[i]}
                | {LABELS_FIELD: {t: labels[i][t] for t in scheme.themes if t in labels[i]}}
                for i in range(len(texts))
            ]
            writer.write(frame, records=records)
        else:
            writer.write(pd.concat([frame, labels_frame(labels, scheme)], axis=1))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return Path(path)
