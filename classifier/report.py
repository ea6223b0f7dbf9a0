"""An HTML report of a tagged table: the page a supervisor opens, reads and forwards.

:func:`build_report` reads the output of ``classifier tag`` (any format it writes, JSON Lines'
nested ``classification`` included) in chunks, adds up counts per chunk with pandas, so a
million rows take seconds and memory stays flat, and writes one self-contained HTML file:

* a headline (rows, rows tagged, share with any theme, the theme most often a concern);
* strengths against concerns per theme, with how many rows sit near the model's threshold;
* with ``date_column``: themes per week or month; with ``group_column``: groups side by side,
  where every group with fewer than ``min_group`` tagged rows is merged into "other";
* with ``quotes``: a few evidence sentences per theme and polarity (off by default: the text is
  sensitive);
* a footer with the model, codebook, held-out metrics and limitations from the model card.

Why matplotlib, rendered to inline SVG: the report has to open from an e-mail attachment with no
network, print cleanly and stay small. Vector SVG prints sharp at any size; with
``svg.fonttype = "none"`` labels stay real text (selectable, searchable, read by screen readers,
and far smaller than glyph outlines), and a chart costs tens of kilobytes. Vega-Lite (Altair)
and plotly would need their JavaScript bundles inlined, about 0.8 MB and 3.5 MB, plus scripts
that mail clients often block; a PNG would blur in print and hide its text. The page itself has
no script at all, and a Content-Security-Policy forbids any fetch.

Feedback text never appears in errors or logs, and only appears in the report with ``quotes``.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from classifier._errors import ClassifierError
from classifier._files import write_text_atomically
from classifier.io import STDIO, TableReader, describe_column, describe_columns, detect_format
from classifier.prediction import STATUS_EMPTY, STATUS_NOT_TEXT, STATUS_OK, STATUS_TRUNCATED
from classifier.tagging import STATUS_COLUMN, THEMES_COLUMN, missing_column

DEFAULT_NEAR = 0.1
DEFAULT_MIN_GROUP = 10
DEFAULT_MAX_GROUPS = 20
# Rows per chunk: larger chunks amortise pandas' per-call overhead; 50,000 rows of a tagged CSV
# are ~15-60 MB in memory, which keeps a million-row report flat and fast.
REPORT_CHUNK_SIZE = 50_000
PERIODS = ("auto", "week", "month")
OTHER = "other"
BLANK_GROUP = "(blank)"
NESTED_COLUMN = "classification"  # JSON Lines output nests each row's result under this key
ID_CANDIDATES = ("id", "response_id", "row_id", "record_id", "respondent_id", "comment_id")
# Scores are written with 3 decimals; a score exactly `near` away from the threshold counts as
# near, whatever the last bit of the float subtraction says.
_EPSILON = 1e-9
# Spans up to this many days are shown per week (at most ~27 points), longer ones per month.
_WEEKLY_SPAN_DAYS = 183
_QUOTE_CHARS = 300
_STATUSES = (STATUS_OK, STATUS_EMPTY, STATUS_NOT_TEXT, STATUS_TRUNCATED)
_TAGGED = (_STATUSES.index(STATUS_OK), _STATUSES.index(STATUS_TRUNCATED))

# Okabe & Ito (2008), the palette designed to stay distinct under every common colour-vision
# deficiency. Blue against vermillion also stays apart in greyscale print; concerns are hatched
# and drawn on the left besides, so polarity never rests on colour alone.
STRENGTH_COLOUR = "#0072B2"  # blue
CONCERN_COLOUR = "#D55E00"  # vermillion
VOLUME_COLOUR = "#999999"  # grey
INK = "#222222"


# ----------------------------------------------------------------------------------- summary
@dataclass
class ReportSummary:
    """The numbers behind a report, as written into it; :func:`build_report` returns it.

    Shares in the report are of ``rows_tagged`` (rows whose text the model read), overall, per
    period and per group.

    Attributes
    ----------
    rows, rows_tagged, rows_with_theme, rows_empty_text, rows_not_text : int
        Rows read; rows with status ``ok``; of those, rows with at least one theme; rows with
        status ``empty`` and ``not_text``.
    themes : list of str
        Theme ids, from the tagged file (or the model card, for JSON Lines), in codebook order.
    polarities : tuple of str
        The (strength, concern) polarity names, e.g. ``("positive", "negative")``.
    theme_counts : dict
        ``{theme: {polarity: rows}}`` over tagged rows.
    near_threshold, near_threshold_tagged : dict
        Per theme, tagged rows whose score is within ``near`` of the theme's threshold, and how
        many of those carry the theme.
    periods : list of dict
        With a date column: ``{"period", "start", "rows", "rows_tagged", "counts"}`` per week or
        month, gaps included; ``period_kind`` says which.
    groups : list of dict
        With a group column: ``{"group", "rows", "rows_tagged", "counts"}`` per group shown,
        ``other`` (the merged small groups) last.
    """

    tagged: str
    output: str
    rows: int = 0
    rows_tagged: int = 0
    rows_with_theme: int = 0
    rows_empty_text: int = 0
    rows_not_text: int = 0
    themes: list[str] = field(default_factory=list)
    polarities: tuple[str, str] = ("positive", "negative")
    theme_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    near: float = DEFAULT_NEAR
    near_threshold: dict[str, int] = field(default_factory=dict)
    near_threshold_tagged: dict[str, int] = field(default_factory=dict)
    date_column: str | None = None
    period_kind: str | None = None
    periods: list[dict] = field(default_factory=list)
    rows_without_date: int = 0
    group_column: str | None = None
    min_group: int = DEFAULT_MIN_GROUP
    groups: list[dict] = field(default_factory=list)
    groups_merged: int = 0
    groups_below_minimum: int = 0
    quotes: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (no feedback text: quotes are not part of it)."""
        return asdict(self)

    @property
    def most_concern(self) -> list[str]:
        """The theme(s) most often tagged as a concern; empty when there is no concern at all."""
        negative = self.polarities[1]
        counts = {t: self.theme_counts[t][negative] for t in self.themes}
        top = max(counts.values(), default=0)
        return [t for t, n in counts.items() if n == top] if top else []

    def render(self) -> str:
        """One line for stderr."""
        return (
            f"Report {self.tagged} -> {self.output} ({self.rows:,} rows, "
            f"{self.bytes / 1024:,.0f} KB, {self.seconds:.1f} s)"
        )


# ---------------------------------------------------------------------------- model details
def require_matplotlib() -> None:
    """Raise a one-line ClassifierError naming the extra when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ClassifierError(
            "the report needs matplotlib: pip install 'therapy-themes-classifier[report]'"
        ) from None


def load_card(model_path: str | Path | None = None) -> dict:
    """The model card JSON beside ``model_path`` (default: the shipped model), or ``{}``."""
    import json

    from classifier.persistence import CARD_JSON, default_model_path

    path = Path(model_path) if model_path else default_model_path()
    card_path = path.with_name(CARD_JSON)
    if not card_path.is_file():
        return {}
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ClassifierError(f"{card_path}: not a readable model card") from None


def _thresholds(card: dict, model_path: str | Path | None) -> dict[str, float]:
    if card.get("thresholds"):
        return {str(k): float(v) for k, v in card["thresholds"].items()}
    # No card beside the model (e.g. a bare .npz): the compiled model carries them too.
    from classifier.persistence import load_model

    return {str(k): float(v) for k, v in load_model(model_path).thresholds_.items()}


def _polarities(card: dict) -> tuple[str, str]:
    from classifier.codebook import Codebook

    names = card.get("codebook", {}).get("polarities") or Codebook.polarities
    return (str(names[0]), str(names[1]))


# ------------------------------------------------------------------------------ table layout
@dataclass
class _Layout:
    """Where the tagging results sit in the tagged table."""

    nested: bool
    themes: list[str]
    input_columns: list[str]
    has_evidence: bool


def _layout(columns: Sequence, source: str, thresholds: dict[str, float]) -> _Layout:
    names = [str(c) for c in columns]
    not_tagged = (
        f"{source}: not a tagged file (no {THEMES_COLUMN!r} and {STATUS_COLUMN!r} columns, "
        f"nor a {NESTED_COLUMN!r} key); run `classifier tag` on it first"
    )
    if NESTED_COLUMN in names and THEMES_COLUMN not in names:
        # JSON Lines: themes come from the model card, in codebook order.
        return _Layout(True, list(thresholds), [n for n in names if n != NESTED_COLUMN], True)
    if THEMES_COLUMN not in names or STATUS_COLUMN not in names:
        raise ClassifierError(not_tagged)
    # output_columns(): themes, one column per theme, then <theme>_score... and status.
    start = names.index(THEMES_COLUMN)
    themes = []
    for name in names[start + 1 :]:
        if name.endswith("_score") or name == STATUS_COLUMN:
            break
        themes.append(name)
    missing = [f"{t}_score" for t in themes if f"{t}_score" not in names]
    if not themes or missing:
        raise ClassifierError(
            not_tagged
            if not themes
            else f"{source}: not a tagged file (no column(s) {describe_columns(missing)})"
        )
    unknown = [t for t in themes if t not in thresholds]
    if unknown:
        raise ClassifierError(
            f"{source}: theme column(s) {describe_columns(unknown)} are not in the model card; "
            "pass --model with the model that tagged the file"
        )
    return _Layout(
        nested=False,
        themes=themes,
        input_columns=names[:start],
        has_evidence=all(f"{t}_evidence" in names for t in themes),
    )


def _find_id_column(layout: _Layout, requested: str | None, source: str) -> str | None:
    if requested is not None:
        if requested not in layout.input_columns:
            raise missing_column(source, requested, "id")
        return requested
    for name in layout.input_columns:
        if name.strip().lower() in ID_CANDIDATES:
            return name
    return None  # quotes then cite the row number


def _require_column(layout: _Layout, name: str, what: str, source: str) -> None:
    if name not in layout.input_columns:
        raise missing_column(source, name, what)


# ------------------------------------------------------------------------------- one chunk
@dataclass
class _Chunk:
    """One chunk in flat form, as small integer codes rather than strings (fast to compare).

    ``status`` indexes ``_STATUSES``; ``labels[theme]`` is 0 (no theme), 1 (first polarity,
    a strength) or 2 (a concern); ``scores[theme]`` is NaN where the row has no score.
    """

    status: np.ndarray
    labels: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    evidence: dict[str, np.ndarray]


NONE, STRENGTH, CONCERN = 0, 1, 2


def _text(values: pd.Series) -> np.ndarray:
    """Cells as Python strings, missing ones as "" (Parquet and Excel give None or NaN)."""
    return values.fillna("").astype(str).to_numpy(dtype=object)


def _codes(values: pd.Series, names: Sequence[str]) -> np.ndarray:
    """``names.index(cell)`` per cell, -1 for any other value (empty cells count as "")."""
    values = values.fillna("")
    codes = np.full(len(values), -1, dtype=np.int8)
    for code, name in enumerate(names):
        codes[(values == name).to_numpy(dtype=bool)] = code
    return codes


def _first_row(mask: np.ndarray, first: int) -> int:
    return first + int(np.flatnonzero(mask)[0]) + 1


def _numbers(values: pd.Series, column: str, first: int, source: str) -> np.ndarray:
    """A score column as floats, NaN for empty cells; a one-line error for anything else."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float)
    text = _text(values)
    try:
        # Twice as fast as pd.to_numeric on a million cells; the slow path only finds the row.
        return np.where(text == "", "nan", text).astype(float)
    except ValueError:
        parsed = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(parsed) & (text != "")
        raise ClassifierError(
            f"{source}, data row {_first_row(bad, first)}: column {describe_column(column)} "
            "is not a number"
        ) from None


def _flat_chunk(chunk, layout: _Layout, first: int, source: str, polarities, evidence: bool):
    status = _codes(chunk[STATUS_COLUMN], _STATUSES)
    if (status < 0).any():
        raise ClassifierError(
            f"{source}, data row {_first_row(status < 0, first)}: column {STATUS_COLUMN!r} is "
            f"not one of {', '.join(_STATUSES)}; not a tagged file?"
        )
    labels, scores, sentences = {}, {}, {}
    for theme in layout.themes:
        labels[theme] = _codes(chunk[theme], ("", *polarities))
        if (labels[theme] < 0).any():
            raise ClassifierError(
                f"{source}, data row {_first_row(labels[theme] < 0, first)}: column "
                f"{describe_column(theme)} is not {polarities[0]!r}, {polarities[1]!r} or "
                "empty; not a tagged file?"
            )
        scores[theme] = _numbers(chunk[f"{theme}_score"], f"{theme}_score", first, source)
        if evidence:  # the widest columns: converted only when quotes are asked for
            sentences[theme] = _text(chunk[f"{theme}_evidence"])
    return _Chunk(status, labels, scores, sentences)


def _nested_chunk(chunk, layout: _Layout, first: int, source: str, polarities, evidence: bool):
    n = len(chunk)
    themes = layout.themes
    status = np.empty(n, dtype=np.int8)
    labels = {t: np.zeros(n, dtype=np.int8) for t in themes}
    scores = {t: np.full(n, np.nan) for t in themes}
    sentences = {t: np.full(n, "", dtype=object) for t in themes}
    status_codes = {name: code for code, name in enumerate(_STATUSES)}
    polarity_codes = {polarities[0]: STRENGTH, polarities[1]: CONCERN}
    for i, record in enumerate(chunk[NESTED_COLUMN].tolist()):
        where = f"{source}, record {first + i + 1}"
        if not isinstance(record, dict) or record.get("status") not in status_codes:
            raise ClassifierError(f"{where}: no valid {NESTED_COLUMN!r}; not a tagged file?")
        status[i] = status_codes[record["status"]]
        for theme, score in (record.get("scores") or {}).items():
            if theme not in scores:
                raise ClassifierError(
                    f"{where}: theme {describe_column(theme)} is not in the model card; "
                    "pass --model with the model that tagged the file"
                )
            scores[theme][i] = score
        for result in record.get("themes") or ():
            theme, polarity = result.get("theme"), result.get("polarity")
            if theme not in labels or polarity not in polarity_codes:
                raise ClassifierError(f"{where}: a theme entry is not valid; not a tagged file?")
            labels[theme][i] = polarity_codes[polarity]
            if evidence:
                sentences[theme][i] = result.get("evidence") or ""
    return _Chunk(status, labels, scores, sentences)


def _indicators(part: _Chunk, themes, thresholds, near) -> pd.DataFrame:
    """Per-row 0/1 columns whose sums are every count of the report."""
    ok = np.isin(part.status, _TAGGED)  # truncated texts were tagged too
    columns = {
        "rows": np.ones(len(ok), dtype=np.int64),
        "tagged": ok,
        "empty": part.status == _STATUSES.index(STATUS_EMPTY),
        "not_text": part.status == _STATUSES.index(STATUS_NOT_TEXT),
    }
    any_theme = np.zeros(len(ok), dtype=bool)
    for theme in themes:
        labels = part.labels[theme]
        has = ok & (labels != NONE)
        any_theme |= has
        columns[f"pos:{theme}"] = ok & (labels == STRENGTH)
        columns[f"neg:{theme}"] = ok & (labels == CONCERN)
        with np.errstate(invalid="ignore"):  # NaN scores (untagged rows) are never near
            is_near = ok & (np.abs(part.scores[theme] - thresholds[theme]) <= near + _EPSILON)
        columns[f"near:{theme}"] = is_near
        columns[f"near_tagged:{theme}"] = is_near & has
    columns["with_theme"] = any_theme
    return pd.DataFrame(columns).astype(np.int64)


# ----------------------------------------------------------------------------------- dates
def _parse_dates(values: pd.Series, fmt: str | None, column: str, first: int, source: str):
    """Dates as naive UTC day timestamps (NaT for empty cells), or a one-line error."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
        return pd.DatetimeIndex(parsed).tz_convert(None).normalize()
    text = pd.Series(_text(values)).str.strip()
    # Dates repeat heavily (a few hundred distinct days in a million rows): parse each once.
    codes, uniques = pd.factorize(text)
    parsed = pd.to_datetime(
        pd.Index(uniques, dtype=object), format=fmt or "ISO8601", errors="coerce", utc=True
    )
    bad = np.asarray(parsed.isna() & (pd.Index(uniques) != ""))
    if bad.any():
        row = first + int(np.flatnonzero(bad[codes])[0]) + 1
        if fmt:
            problem = f"is not a date in the format {fmt!r} (--date-format)"
        else:
            problem = (
                "is not an ISO 8601 date (YYYY-MM-DD); pass --date-format, e.g. "
                "--date-format %d/%m/%Y"
            )
        raise ClassifierError(
            f"{source}, data row {row}: column {describe_column(column)} {problem}"
        )
    days = parsed.tz_convert(None).normalize()
    return pd.DatetimeIndex(days.take(codes))


def _periods(by_day: pd.DataFrame, period: str, min_rows: int) -> tuple[str, pd.DataFrame]:
    """Day counts summed per week (Monday to Sunday) or month, empty periods included.

    ``auto`` takes weeks for a span of up to six months, unless weeks would hold fewer than
    ``min_rows`` tagged rows on average: a share of a handful of rows is mostly noise.
    """
    kind = period
    if period == "auto":
        weeks = (by_day.index.max() - by_day.index.min()).days / 7 + 1
        dense = by_day["tagged"].sum() / weeks >= min_rows
        kind = "week" if weeks <= _WEEKLY_SPAN_DAYS / 7 and dense else "month"
    freq = "W-SUN" if kind == "week" else "M"
    summed = by_day.groupby(by_day.index.to_period(freq)).sum()
    full = pd.period_range(summed.index.min(), summed.index.max(), freq=freq)
    return kind, summed.reindex(full, fill_value=0)


def _period_label(period: pd.Period, kind: str) -> str:
    start = period.start_time
    return f"week of {start:%Y-%m-%d}" if kind == "week" else f"{start:%b %Y}"


def _tick_labels(periods: list[dict], positions: list[int], kind: str) -> list[str]:
    """Short axis labels ("5 Jan" for weeks, "Jan" for months) that fit under small panels,
    with the year under the first label and wherever it changes."""
    labels, last_year = [], None
    for i in positions:
        day = dt.date.fromisoformat(periods[i]["start"])
        label = f"{day.day} {day:%b}" if kind == "week" else f"{day:%b}"
        labels.append(label + (f"\n{day.year}" if day.year != last_year else ""))
        last_year = day.year
    return labels


# ---------------------------------------------------------------------------------- groups
def _merge_small_groups(by_group: pd.DataFrame, min_group: int, max_groups: int):
    """Groups shown alone, and "other" (every group below ``min_group`` tagged rows, merged).

    "other" itself must not be small, or it would show a small group under another name: while
    it holds fewer than ``min_group`` tagged rows, the smallest shown group joins it. Groups
    beyond the ``max_groups`` largest join it too, to keep the chart legible.
    """
    ordered = by_group.sort_values(["tagged", "rows"], ascending=False, kind="stable")
    big = ordered[ordered["tagged"] >= min_group]
    below = len(ordered) - len(big)
    shown = big.iloc[:max_groups]
    other = pd.concat([ordered[ordered["tagged"] < min_group], big.iloc[max_groups:]])
    while len(shown) and 0 < other["tagged"].sum() < min_group:
        other = pd.concat([other, shown.iloc[-1:]])
        shown = shown.iloc[:-1]
    if len(other) and other["tagged"].sum() < min_group and not len(shown):
        # Every group is small and together they are still small: show no groups at all.
        return shown, None, len(other), below
    merged = other.sum() if len(other) else None
    return shown, merged, len(other), below


# ---------------------------------------------------------------------------------- quotes
_WORD = re.compile(r"\w+")


def _quote_key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _pool_quotes(pools: dict, part: _Chunk, ids: np.ndarray, first: int, themes, polarities, size):
    """Keep the ``size`` highest-scoring distinct evidence sentences per theme and polarity."""
    ok = np.isin(part.status, _TAGGED)  # truncated texts were tagged too
    for theme in themes:
        evidence = part.evidence[theme]
        for code, polarity in zip((STRENGTH, CONCERN), polarities, strict=True):
            mask = ok & (part.labels[theme] == code) & (evidence != "")
            if not mask.any():
                continue
            rows = np.flatnonzero(mask)
            candidates = pd.DataFrame(
                {
                    "score": part.scores[theme][rows],
                    "text": evidence[rows],
                    "id": ids[rows],
                    "order": rows + first,
                }
            )
            old = pools.get((theme, polarity))
            pool = candidates if old is None else pd.concat([old, candidates], ignore_index=True)
            pool = pool.sort_values(["score", "order"], ascending=[False, True], kind="stable")
            # Exact repeats go first (cheap), so only a short list needs the normalised key.
            pool = pool.drop_duplicates("text").head(2 * size)
            pool = pool[~pool["text"].map(_quote_key).duplicated()].head(size)
            pools[(theme, polarity)] = pool.reset_index(drop=True)


def _choose_quotes(pool: pd.DataFrame | None, n: int) -> list[dict]:
    """Up to ``n`` quotes, highest score first, skipping near-repeats of one already chosen.

    A high score makes a clear example; requiring little word overlap (Jaccard < 0.5) with the
    quotes already chosen keeps the set varied, so the page does not show one complaint N times.
    """
    if pool is None:
        return []
    chosen, chosen_words = [], []
    for row in pool.itertuples(index=False):
        words = set(_WORD.findall(row.text.lower()))
        if any(len(words & w) / max(len(words | w), 1) >= 0.5 for w in chosen_words):
            continue
        chosen.append({"id": row.id, "score": float(row.score), "text": row.text})
        chosen_words.append(words)
        if len(chosen) == n:
            break
    return chosen


# ------------------------------------------------------------------------------- the report
def build_report(
    tagged: str | Path,
    output: str | Path,
    *,
    model_path: str | Path | None = None,
    card: dict | None = None,
    date_column: str | None = None,
    date_format: str | None = None,
    period: str = "auto",
    group_column: str | None = None,
    min_group: int = DEFAULT_MIN_GROUP,
    max_groups: int = DEFAULT_MAX_GROUPS,
    quotes: int = 0,
    id_column: str | None = None,
    near: float = DEFAULT_NEAR,
    title: str | None = None,
    input_format: str | None = None,
    encoding: str = "utf-8",
    force: bool = False,
    chunk_size: int = REPORT_CHUNK_SIZE,
    charts: bool = True,
) -> ReportSummary:
    """Write a self-contained HTML report of a tagged table; return its numbers.

    Parameters
    ----------
    tagged : str or Path
        Output of ``classifier tag``: CSV, TSV, JSON Lines, Excel or Parquet, or ``-`` (stdin).
    output : str or Path
        The HTML file to write (atomically: a half-written report never appears).
    model_path : str or Path, optional
        The model that tagged the file; its model card (beside it) gives thresholds, names and
        limitations. Default: the shipped model.
    card : dict, optional
        The model card itself, instead of reading it from beside ``model_path``.
    date_column, date_format : str, optional
        Column of dates for the themes-over-time chart, and its ``strptime`` format (default
        ISO 8601). Empty cells are left out of the chart and counted.
    period : {"auto", "week", "month"}
        Time unit; ``auto`` chooses weeks for spans up to six months that hold ``min_group``
        tagged rows a week on average, months otherwise.
    group_column : str, optional
        Column of teams, services or clinician codes to compare.
    min_group : int
        Groups with fewer tagged rows are merged into "other" and never shown alone.
    max_groups : int
        At most this many groups are shown alone (the largest); the rest join "other".
    quotes : int
        Evidence sentences per theme and polarity to quote (needs ``tag --explain`` output).
        0, the default, puts no feedback text in the report.
    id_column : str, optional
        Column naming rows in quotes (default: an ``id``/``response_id``... column, else the row
        number).
    near : float
        A score within this distance of the theme's threshold counts as "near the threshold".
    title : str, optional
        The report's heading.
    input_format, encoding : str, optional
        As for ``classifier tag``: format when the extension does not say; text encoding.
    force : bool
        Overwrite an existing ``output``.
    chunk_size : int
        Rows read at a time.
    charts : bool
        Draw the charts (needs matplotlib); without, the tables alone.

    Returns
    -------
    ReportSummary
        Every number shown in the report.

    Raises
    ------
    ClassifierError
        A one-line message naming the file, column or row: not a tagged file, a missing column,
        a date in another format, an existing output, matplotlib missing.

    Examples
    --------
    >>> from classifier.report import build_report
    >>> build_report("tagged.csv", "report.html", date_column="submitted",
    ...              group_column="service")                         # doctest: +SKIP
    ReportSummary(tagged='tagged.csv', output='report.html', rows=52, ...)
    """
    started = time.perf_counter()
    tagged, output = str(tagged), str(output)
    if period not in PERIODS:
        raise ClassifierError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")
    if tagged != STDIO and Path(tagged).resolve() == Path(output).resolve():
        raise ClassifierError(f"{output}: the report would overwrite the tagged file")
    if Path(output).exists() and not force:
        raise ClassifierError(f"{output}: already exists; pass --force to overwrite it")
    if not Path(output).resolve().parent.is_dir():
        raise ClassifierError(f"{output}: the folder {Path(output).parent} does not exist")
    if charts:
        require_matplotlib()
    card = load_card(model_path) if card is None else card
    thresholds = _thresholds(card, model_path)
    polarities = _polarities(card)
    fmt = detect_format(tagged, input_format, default="jsonl")
    reader = TableReader(tagged, fmt, chunk_size=chunk_size, encoding=encoding)

    summary = ReportSummary(
        tagged=tagged,
        output=output,
        polarities=polarities,
        near=near,
        date_column=date_column,
        group_column=group_column,
        min_group=min_group,
    )
    layout: _Layout | None = None
    quote_id: str | None = None
    totals: pd.Series | None = None
    by_day: list[pd.DataFrame] = []
    by_group: list[pd.DataFrame] = []
    pools: dict = {}
    pool_size = max(4 * quotes, 20)
    first = 0
    for chunk in reader:
        if layout is None:
            layout = _layout(chunk.columns, tagged, thresholds)
            for name, what in ((date_column, "date"), (group_column, "group")):
                if name is not None:
                    _require_column(layout, name, what, tagged)
            if quotes:
                if not layout.has_evidence:
                    raise ClassifierError(
                        f"{tagged}: no evidence columns to quote; tag with --explain first"
                    )
                quote_id = _find_id_column(layout, id_column, tagged)
        read = _nested_chunk if layout.nested else _flat_chunk
        part = read(chunk, layout, first, tagged, polarities, quotes > 0)
        rows = _indicators(part, layout.themes, thresholds, near)
        totals = rows.sum() if totals is None else totals + rows.sum()
        if date_column is not None:
            days = _parse_dates(chunk[date_column], date_format, date_column, first, tagged)
            dated = ~days.isna()
            summary.rows_without_date += int((~dated).sum())
            if dated.any():
                by_day.append(rows[dated].groupby(days[dated]).sum())
        if group_column is not None:
            groups = pd.Series(_text(chunk[group_column])).str.strip()
            groups = groups.mask(groups == "", BLANK_GROUP).to_numpy(dtype=object)
            by_group.append(rows.groupby(groups).sum())
        if quotes:
            ids = (
                _text(chunk[quote_id])
                if quote_id is not None
                else np.array([f"row {first + i + 1}" for i in range(len(chunk))], dtype=object)
            )
            _pool_quotes(pools, part, ids, first, layout.themes, polarities, pool_size)
        first += len(chunk)
    if layout is None or totals is None or first == 0:
        raise ClassifierError(f"{tagged}: no rows")

    _fill_totals(summary, totals, layout.themes, thresholds)
    if date_column is not None and by_day:
        day_counts = pd.concat(by_day).groupby(level=0).sum()
        summary.period_kind, per_period = _periods(day_counts, period, min_group)
        summary.periods = [
            _counts_entry(row, summary, period=_period_label(p, summary.period_kind),
                          start=f"{p.start_time:%Y-%m-%d}")
            for p, row in per_period.iterrows()
        ]  # fmt: skip
    if group_column is not None:
        group_counts = pd.concat(by_group).groupby(level=0).sum()
        shown, merged, n_merged, below = _merge_small_groups(group_counts, min_group, max_groups)
        summary.groups = [_counts_entry(row, summary, group=str(g)) for g, row in shown.iterrows()]
        if merged is not None:
            # A real group may be called "other" too; the merged one must not pass for it.
            name = OTHER if OTHER not in shown.index else f"{OTHER} (merged)"
            summary.groups.append(_counts_entry(merged, summary, group=name))
        summary.groups_merged, summary.groups_below_minimum = n_merged, below
    chosen = {
        (theme, polarity): _choose_quotes(pools.get((theme, polarity)), quotes)
        for theme in layout.themes
        for polarity in polarities
    } if quotes else {}  # fmt: skip
    summary.quotes = sum(len(q) for q in chosen.values())
    if quotes and not pools and summary.rows_with_theme:
        # JSON Lines always has an evidence key, empty unless tagged with --explain.
        raise ClassifierError(f"{tagged}: no evidence sentences to quote; tag with --explain")

    page = render_html(summary, card, chosen, title=title, charts=charts)
    write_text_atomically(output, page)
    summary.bytes = len(page.encode("utf-8"))
    summary.seconds = time.perf_counter() - started
    return summary


def _fill_totals(summary: ReportSummary, totals: pd.Series, themes, thresholds) -> None:
    totals = totals.astype(int)
    positive, negative = summary.polarities
    summary.rows = int(totals["rows"])
    summary.rows_tagged = int(totals["tagged"])
    summary.rows_with_theme = int(totals["with_theme"])
    summary.rows_empty_text = int(totals["empty"])
    summary.rows_not_text = int(totals["not_text"])
    summary.themes = list(themes)
    summary.thresholds = {t: thresholds[t] for t in themes}
    summary.theme_counts = {
        t: {positive: int(totals[f"pos:{t}"]), negative: int(totals[f"neg:{t}"])} for t in themes
    }
    summary.near_threshold = {t: int(totals[f"near:{t}"]) for t in themes}
    summary.near_threshold_tagged = {t: int(totals[f"near_tagged:{t}"]) for t in themes}


def _counts_entry(row: pd.Series, summary: ReportSummary, **label) -> dict:
    positive, negative = summary.polarities
    return {
        **label,
        "rows": int(row["rows"]),
        "rows_tagged": int(row["tagged"]),
        "counts": {
            t: {positive: int(row[f"pos:{t}"]), negative: int(row[f"neg:{t}"])}
            for t in summary.themes
        },
    }


# ---------------------------------------------------------------------------------- charts
def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _pct(count: int, total: int) -> str:
    return f"{_share(count, total):.0%}" if total else "–"


def _svg(figure, key: str, title: str, description: str) -> str:
    """A matplotlib figure as inline SVG: unique ids, a text alternative, no external refs."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    # Its `*{...}` rule would apply to the whole page once inlined; the page CSS has it, scoped.
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    # Namespace declarations are not needed inline in HTML; dropping them leaves no URL at all.
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    # Several charts share one document: prefix every id and reference to keep them apart.
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{key}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{key}-\1"', svg)
    svg = re.sub(r">\s+<", "><", svg)
    svg = re.sub(r"\s*\n\s*", " ", svg)
    # Size comes from the page (CSS width 100%), the aspect ratio from the viewBox.
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)
    svg = svg.replace(
        "<svg",
        f'<svg role="img" aria-labelledby="{key}-title {key}-desc"',
        1,
    )
    head = (
        f'<title id="{key}-title">{html.escape(title)}</title>'
        f'<desc id="{key}-desc">{html.escape(description)}</desc>'
    )
    opening = svg.index(">") + 1
    return svg[:opening] + head + svg[opening:]


def _chart_style():
    import matplotlib

    return matplotlib.rc_context(
        {
            "svg.fonttype": "none",  # real <text>: selectable, read aloud, small
            "svg.hashsalt": "classifier-report",  # stable ids: the same input, the same file
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
            "font.size": 9.5,
            "axes.edgecolor": "#666666",
            "axes.labelcolor": INK,
            "text.color": INK,
            "xtick.color": INK,
            "ytick.color": INK,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "hatch.linewidth": 1.2,
            "legend.frameon": False,
        }
    )


def _figure(width: float, height: float):
    # A bare Figure, not pyplot: nothing is registered globally, so a long-lived process (or a
    # notebook) keeps its own backend and no figure leaks; savefig(format="svg") needs no
    # display and no server, like the Agg backend.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _percent_axis(axis, absolute: bool = False) -> None:
    """Percent ticks at round steps (1, 2, 2.5, 5, 10...), so no label is rounded to a lie;
    ``absolute`` for the diverging bars, whose concerns are drawn at negative values."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))

    def label(value: float, _position) -> str:
        value = abs(value) if absolute else value
        text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
        return f"{text}%"

    axis.set_major_formatter(FuncFormatter(label))


def _legend_handles():
    from matplotlib.patches import Patch

    return [
        Patch(facecolor=STRENGTH_COLOUR, label="Strength (right)"),
        Patch(facecolor=CONCERN_COLOUR, hatch="///", edgecolor="white", label="Concern (left)"),
    ]


def _diverging(ax, labels, strengths, concerns) -> None:
    """Concerns to the left (hatched), strengths to the right (solid): shares of tagged rows."""
    y = np.arange(len(labels))
    ax.barh(y, strengths, height=0.62, color=STRENGTH_COLOUR, edgecolor="white", linewidth=0.5)
    ax.barh(
        y,
        [-v for v in concerns],
        height=0.62,
        color=CONCERN_COLOUR,
        hatch="///",
        edgecolor="white",
        linewidth=0.5,
    )
    ax.axvline(0, color=INK, linewidth=0.8)
    ax.set_yticks(y, labels)
    # First theme (or largest group) on top. Limits, not invert_yaxis(): panels share this axis,
    # and inverting a shared axis once per panel would flip it back and forth.
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    _percent_axis(ax.xaxis, absolute=True)


def chart_themes(summary: ReportSummary) -> str:
    """Strengths against concerns per theme, with the near-threshold count under each name."""
    positive, negative = summary.polarities
    total = summary.rows_tagged
    themes = summary.themes
    strengths = [_share(summary.theme_counts[t][positive], total) for t in themes]
    concerns = [_share(summary.theme_counts[t][negative], total) for t in themes]
    labels = [f"{t}\n{summary.near_threshold[t]:,} near threshold" for t in themes]
    with _chart_style():
        figure = _figure(7.0, 0.55 * len(themes) + 1.2)
        ax = figure.add_subplot()
        _diverging(ax, labels, strengths, concerns)
        reach = max(strengths + concerns + [0.01]) * 1.45  # room for the value labels
        ax.set_xlim(-reach, reach)
        for y, t in enumerate(themes):
            for sign, polarity in ((1, positive), (-1, negative)):
                n = summary.theme_counts[t][polarity]
                share = _share(n, total)
                ax.text(
                    sign * (share + reach * 0.02),
                    y,
                    f"{n:,} ({share:.0%})",
                    va="center",
                    ha="left" if sign > 0 else "right",
                    fontsize=8.5,
                )
        ax.set_xlabel(f"share of the {total:,} tagged rows")
        figure.legend(handles=_legend_handles(), loc="outside upper center", ncols=2)
        description = "; ".join(
            f"{t}: {summary.theme_counts[t][positive]:,} strengths "
            f"({_pct(summary.theme_counts[t][positive], total)}), "
            f"{summary.theme_counts[t][negative]:,} concerns "
            f"({_pct(summary.theme_counts[t][negative], total)}), "
            f"{summary.near_threshold[t]:,} near the threshold"
            for t in themes
        )
        return _svg(
            figure,
            "themes",
            "Strengths and concerns per theme, as shares of tagged rows",
            description + ". The same numbers are in the table below.",
        )


def _tick_positions(n: int, most: int = 8) -> list[int]:
    step = max(1, math.ceil(n / most))
    return list(range(0, n, step))


def chart_periods(summary: ReportSummary) -> str:
    """Tagged rows per period, then one small panel per theme: strength and concern shares."""
    positive, negative = summary.polarities
    periods = summary.periods
    themes = summary.themes
    x = np.arange(len(periods))
    tagged = np.array([p["rows_tagged"] for p in periods])
    few = tagged < summary.min_group

    def shares(theme, polarity):
        counts = np.array([p["counts"][theme][polarity] for p in periods], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tagged > 0, counts / np.maximum(tagged, 1), np.nan)

    columns = 2 if len(themes) > 1 else 1
    panel_rows = math.ceil(len(themes) / columns)
    kind = summary.period_kind or "month"
    ticks = _tick_positions(len(periods), 10)
    tick_labels = _tick_labels(periods, ticks, kind)
    panel_ticks = _tick_positions(len(periods), 5 if columns > 1 else 10)
    panel_labels = _tick_labels(periods, panel_ticks, kind)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    with _chart_style():
        figure = _figure(7.0, 1.5 + 1.55 * panel_rows)
        grid = figure.add_gridspec(panel_rows + 1, columns, height_ratios=[0.8] + [1] * panel_rows)
        volume = figure.add_subplot(grid[0, :])
        volume.bar(x, tagged, color=VOLUME_COLOUR, width=0.8)
        volume.set_title(f"Tagged rows per {summary.period_kind}", loc="left", fontsize=9.5)
        volume.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        volume.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        volume.set_xticks(ticks, tick_labels, fontsize=8)
        top = max(
            [np.nanmax(shares(t, p)) for t in themes for p in summary.polarities if tagged.any()]
            + [0.05]
        )
        for k, theme in enumerate(themes):
            ax = figure.add_subplot(grid[1 + k // columns, k % columns])
            for polarity, colour, style, marker in (
                (positive, STRENGTH_COLOUR, "-", "o"),
                (negative, CONCERN_COLOUR, "--", "s"),
            ):
                values = shares(theme, polarity)
                ax.plot(x, values, linestyle=style, color=colour, linewidth=1.4)
                # Filled markers where the share rests on at least min_group rows; hollow where
                # it rests on fewer, so a jump in a thin week is read as the noise it is.
                ax.plot(x[~few], values[~few], linestyle="", marker=marker, ms=3.5, color=colour)
                ax.plot(
                    x[few], values[few], linestyle="", marker=marker, ms=3.5, color=colour,
                    markerfacecolor="white",
                )  # fmt: skip
            ax.set_title(theme, loc="left", fontsize=9.5)
            ax.set_ylim(0, top * 1.1)
            _percent_axis(ax.yaxis)
            bottom = k >= len(themes) - columns
            ax.set_xticks(panel_ticks, panel_labels if bottom else [], fontsize=8)
            ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        from matplotlib.lines import Line2D

        figure.legend(
            handles=[
                Line2D([], [], color=STRENGTH_COLOUR, marker="o", label="Strength (solid)"),
                Line2D([], [], color=CONCERN_COLOUR, marker="s", ls="--", label="Concern (dashed)"),
                Line2D([], [], color=INK, marker="o", ls="", markerfacecolor="white",
                       label=f"fewer than {summary.min_group} tagged rows"),
            ],
            loc="outside upper center",
            ncols=3,
        )  # fmt: skip
        busiest = max(periods, key=lambda p: p["rows_tagged"])
        description = (
            f"{len(periods)} {summary.period_kind}s from {periods[0]['period']} to "
            f"{periods[-1]['period']}, {summary.rows_tagged:,} tagged rows in all; the busiest "
            f"{summary.period_kind} is {busiest['period']} with {busiest['rows_tagged']:,} rows. "
            "For each theme, the share of each period's tagged rows with it as a strength and "
            "as a concern; every count is in the table that follows."
        )
        return _svg(figure, "periods", "Themes over time", description)


def chart_groups(summary: ReportSummary) -> str:
    """One panel per theme: each group's strength and concern shares, side by side."""
    positive, negative = summary.polarities
    groups = summary.groups
    themes = summary.themes
    labels = [f"{_cut(g['group'], 26)} ({g['rows_tagged']:,})" for g in groups]
    columns = min(3, len(themes))
    panel_rows = math.ceil(len(themes) / columns)
    reach = 0.05
    for g in groups:
        for t in themes:
            for polarity in summary.polarities:
                reach = max(reach, _share(g["counts"][t][polarity], g["rows_tagged"]))
    with _chart_style():
        figure = _figure(7.0, panel_rows * (0.24 * len(groups) + 0.9) + 0.5)
        axes = figure.subplots(panel_rows, columns, sharex=True, sharey=True, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= len(themes):
                ax.set_visible(False)
                continue
            theme = themes[k]
            _diverging(
                ax,
                labels,
                [_share(g["counts"][theme][positive], g["rows_tagged"]) for g in groups],
                [_share(g["counts"][theme][negative], g["rows_tagged"]) for g in groups],
            )
            ax.set_xlim(-reach * 1.1, reach * 1.1)
            ax.set_title(theme, loc="left", fontsize=9.5)
            ax.tick_params(axis="x", labelsize=7.5)
        figure.legend(handles=_legend_handles(), loc="outside upper center", ncols=2)
        description = (
            f"{len(groups)} groups of column {summary.group_column}, each with the share of its "
            "tagged rows showing each theme as a strength and as a concern. "
            + "; ".join(f"{g['group']}: {g['rows_tagged']:,} tagged rows" for g in groups)
            + ". Every count is in the table that follows."
        )
        return _svg(figure, "groups", "Themes by group", description)


# -------------------------------------------------------------------------------------- HTML
CSS = """
:root{--strength:#0072B2;--concern:#D55E00;--ink:#222;--muted:#555;--rule:#d0d0d0;
 color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--ink);
 font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
main{max-width:52rem;margin:0 auto;padding:1rem}
h1{font-size:1.55rem;line-height:1.25;margin:.4rem 0}
h2{font-size:1.2rem;margin:2.2rem 0 .6rem;padding-bottom:.2rem;border-bottom:2px solid var(--ink)}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
p{margin:.5rem 0}
.meta,.muted,figcaption{color:var(--muted);font-size:.9rem}
.lead{font-size:1.08rem}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(10.5rem,1fr));gap:.6rem;
 list-style:none;margin:1rem 0;padding:0}
.kpis li{border:1px solid var(--rule);border-radius:.4rem;padding:.55rem .75rem}
.kpis b{display:block;font-size:1.5rem;line-height:1.2}
.kpis span{display:block;font-size:.85rem;color:var(--muted)}
figure{margin:1rem 0}
.chart{overflow-x:auto}
.chart svg{display:block;width:100%;height:auto;min-width:34rem}
.chart svg *{stroke-linejoin:round;stroke-linecap:butt}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.88rem;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{padding:.25rem .45rem;border-bottom:1px solid var(--rule);text-align:right}
td{white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{border-bottom:2px solid var(--ink);vertical-align:bottom}
.s::before,.c::before{content:"";display:inline-block;width:.75em;height:.75em;margin-right:.3em}
.s::before{background:var(--strength)}
.c::before{background:repeating-linear-gradient(135deg,var(--concern) 0 2px,#fff 2px 3.5px)}
details{margin:.6rem 0}
summary{cursor:pointer;color:var(--muted)}
.note{background:#fff6e0;border-left:4px solid #E69F00;padding:.5rem .8rem;margin:1rem 0}
blockquote{margin:.5rem 0;padding:.4rem .8rem;border-left:4px solid var(--rule)}
blockquote.s{border-left-color:var(--strength)}
blockquote.c{border-left-style:dashed;border-left-color:var(--concern)}
blockquote.s::before,blockquote.c::before{display:none}
blockquote p{margin:0}
blockquote footer{font-size:.8rem;color:var(--muted)}
.quotes{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:0 1rem}
code{font-size:.9em}
footer.card{margin-top:2.5rem;padding-top:.6rem;border-top:2px solid var(--ink);font-size:.85rem}
footer.card h2{font-size:1.05rem;border:0;margin:.8rem 0 .3rem}
footer.card h3{font-size:.95rem}
footer.card ul{padding-left:1.2rem}
@media (max-width:40rem){body{font-size:15px}main{padding:.7rem}.kpis b{font-size:1.3rem}}
@media print{
 @page{size:A4;margin:14mm 13mm}
 body{font-size:10pt}
 main{max-width:none;padding:0}
 h1{font-size:1.35rem}
 h2{margin-top:1.4rem}
 .kpis{grid-template-columns:repeat(4,1fr)}
 .chart{overflow:visible}
 .chart svg{min-width:0}
 h2,h3{break-after:avoid}
 figure,table,tr,blockquote,.kpis li,.note{break-inside:avoid}
 .scroll{overflow:visible}
 summary{display:none}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt_kpi(value: str, label: str, note: str = "") -> str:
    small = f"<span>{_e(note)}</span>" if note else ""
    return f"<li><b>{_e(value)}</b>{_e(label)}{small}</li>"


def _theme_table(summary: ReportSummary) -> str:
    positive, negative = summary.polarities
    total = summary.rows_tagged
    rows = []
    for t in summary.themes:
        pos, neg = summary.theme_counts[t][positive], summary.theme_counts[t][negative]
        rows.append(
            f'<tr><th scope="row">{_e(t)}</th><td>{pos:,}</td><td>{_pct(pos, total)}</td>'
            f"<td>{neg:,}</td><td>{_pct(neg, total)}</td>"
            f"<td>{summary.near_threshold[t]:,}</td><td>{summary.near_threshold_tagged[t]:,}</td>"
            f"<td>{summary.thresholds[t]:.3f}</td></tr>"
        )
    return (
        '<div class="scroll"><table id="theme-table">'
        f"<caption>Strengths and concerns per theme (shares of {total:,} tagged rows)</caption>"
        '<thead><tr><th scope="col">Theme</th>'
        '<th scope="col"><span class="s">Strengths</span></th><th scope="col">% of tagged</th>'
        '<th scope="col"><span class="c">Concerns</span></th><th scope="col">% of tagged</th>'
        f'<th scope="col">Near threshold (±{summary.near:.2f})</th>'
        '<th scope="col">of them tagged</th><th scope="col">Threshold</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _counts_table(entries: list[dict], summary: ReportSummary, key: str, label: str, table_id):
    positive, negative = summary.polarities
    head = "".join(
        f'<th scope="col">{_e(t)} <span class="s">strength</span></th>'
        f'<th scope="col">{_e(t)} <span class="c">concern</span></th>'
        for t in summary.themes
    )
    body = []
    for entry in entries:
        cells = "".join(
            f"<td>{entry['counts'][t][positive]:,}</td><td>{entry['counts'][t][negative]:,}</td>"
            for t in summary.themes
        )
        body.append(
            f'<tr><th scope="row">{_e(entry[key])}</th><td>{entry["rows"]:,}</td>'
            f"<td>{entry['rows_tagged']:,}</td>{cells}</tr>"
        )
    return (
        f'<div class="scroll"><table id="{table_id}"><thead><tr><th scope="col">{_e(label)}</th>'
        f'<th scope="col">Rows</th><th scope="col">Tagged</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _markdown_to_html(text: str) -> str:
    """The model card's limitations (headings, bullets, `code`) as HTML, escaped first."""
    parts: list[str] = []
    items: list[str] = []

    def inline(line: str) -> str:
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(line))

    def close() -> None:
        if items:
            parts.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.strip().splitlines():
        if line.startswith("#"):
            close()
            parts.append(f"<h3>{inline(line.lstrip('#').strip())}</h3>")
        elif line.startswith("- "):
            items.append(line[2:].strip())
        elif line.strip() and items:
            items[-1] += " " + line.strip()
        elif line.strip():
            close()
            parts.append(f"<p>{inline(line.strip())}</p>")
    close()
    return "".join(parts)


def _footer(summary: ReportSummary, card: dict) -> str:
    from classifier.rendering import LIMITATIONS

    codebook = card.get("codebook", {})
    versions = card.get("library_versions", {})
    model_file = card.get("model_file", "")
    name = Path(model_file).stem if model_file else "theme classifier"
    lines = []
    if card:
        lines.append(
            f"<li>Model: <b>{_e(name)}</b>, therapy-themes-classifier "
            f"{_e(versions.get('therapy-themes-classifier', '?'))}, trained on "
            f"{_e(card.get('trained_on', '?'))}"
            + (
                f" from <code>{_e(card['training_data'].get('path', ''))}</code> "
                f"(sha256 {_e(card['training_data'].get('sha256', '')[:12])}…)"
                if isinstance(card.get("training_data"), dict)
                else ""
            )
            + "</li>"
        )
        lines.append(
            f"<li>Codebook: {_e(codebook.get('name', '?'))} version "
            f"{_e(codebook.get('version', '?'))}</li>"
        )
    else:
        lines.append("<li>No model card was found beside the model: name and version unknown.</li>")
    lines.append(
        "<li>Decision thresholds (a theme is tagged at or above): "
        + ", ".join(f"{_e(t)} {v:.3f}" for t, v in summary.thresholds.items())
        + f"; near the threshold means within ±{summary.near:.2f}.</li>"
    )
    metrics = card.get("metrics", {}).get("test", {})
    table = ""
    if metrics:
        rows = "".join(
            f'<tr><th scope="row">{_e(group)}</th><td>{m.get("n_texts", 0):,}</td>'
            f"<td>{_num(m.get('macro_f1'))}</td><td>{_num(m.get('micro_f1'))}</td>"
            f"<td>{_num(m.get('polarity_accuracy'))}</td></tr>"
            for group, m in metrics.items()
            if isinstance(m, dict)
        )
        table = (
            '<div class="scroll"><table><caption>How well the model did on held-out test texts '
            '(1 is perfect)</caption><thead><tr><th scope="col">Test rows</th>'
            '<th scope="col">Texts</th><th scope="col">Macro F1</th><th scope="col">Micro F1</th>'
            '<th scope="col">Polarity accuracy</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    return (
        '<footer class="card"><h2>What produced these numbers</h2>'
        f"<ul>{''.join(lines)}</ul>{table}{_markdown_to_html(LIMITATIONS)}</footer>"
    )


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and value == value else "–"


def _figure_html(svg: str, caption: str, table: str = "", details: str = "") -> str:
    extra = ""
    if table:
        extra = f"<details><summary>{_e(details)}</summary>{table}</details>"
    return (
        f'<figure><div class="chart">{svg}</div><figcaption>{caption}</figcaption></figure>{extra}'
    )


def render_html(
    summary: ReportSummary,
    card: dict,
    quotes: dict | None = None,
    title: str | None = None,
    charts: bool = True,
) -> str:
    """The report page for ``summary``: one HTML document, no script, nothing to fetch.

    ``quotes`` maps ``(theme, polarity)`` to chosen quotes; without it no feedback text appears.
    """
    positive, negative = summary.polarities
    total = summary.rows_tagged
    source = Path(summary.tagged).name if summary.tagged != STDIO else "standard input"
    heading = title or "Therapeutic relationship themes in client feedback"
    today = dt.date.today().isoformat()
    concern = summary.most_concern
    concern_text = " and ".join(concern) if concern else "none"
    concern_n = summary.theme_counts[concern[0]][negative] if concern else 0
    strength_top = max(summary.themes, key=lambda t: summary.theme_counts[t][positive])
    strength_n = summary.theme_counts[strength_top][positive]
    body = [
        f"<header><h1>{_e(heading)}</h1>"
        f'<p class="meta">{_e(source)} · report made {today} by <code>classifier report</code>'
        "</p></header>"
    ]
    if quotes and any(quotes.values()):
        body.append(
            '<p class="note" role="note"><b>Contains quotes from client feedback.</b> Handle this '
            "report as you would the feedback itself.</p>"
        )
    lead = (
        f"{summary.rows_with_theme:,} of {total:,} tagged rows "
        f"({_pct(summary.rows_with_theme, total)}) mention at least one relationship theme."
    )
    if concern:
        lead += (
            f" Concerns are most often about <b>{_e(concern_text)}</b> ({concern_n:,} rows, "
            f"{_pct(concern_n, total)})"
        )
        lead += (
            f"; strengths most often about <b>{_e(strength_top)}</b> ({strength_n:,} rows)."
            if strength_n
            else "."
        )
    body.append('<section aria-labelledby="h-headline"><h2 id="h-headline">Headline</h2>')
    body.append(f'<p class="lead">{lead}</p><ul class="kpis" id="headline">')
    untagged = summary.rows - total
    body.append(_fmt_kpi(f"{summary.rows:,}", "rows", ""))
    body.append(
        _fmt_kpi(
            f"{total:,}",
            "rows tagged",
            f"{untagged:,} not: {summary.rows_empty_text:,} empty, "
            f"{summary.rows_not_text:,} not text",
        )
    )
    body.append(
        _fmt_kpi(
            _pct(summary.rows_with_theme, total),
            "with any theme",
            f"{summary.rows_with_theme:,} of the tagged rows",
        )
    )
    body.append(
        _fmt_kpi(concern_text, "most often a concern", f"{concern_n:,} rows" if concern else "")
    )
    body.append("</ul></section>")

    body.append('<section aria-labelledby="h-themes"><h2 id="h-themes">Themes</h2>')
    if charts and total:
        body.append(
            _figure_html(
                chart_themes(summary),
                f"Share of the {total:,} tagged rows with each theme as a strength (to the "
                "right, solid) or a concern (to the left, hatched); the number under each theme "
                "counts rows whose score is close to the model's threshold.",
            )
        )
    body.append(_theme_table(summary))
    body.append(
        f'<p class="muted">Near threshold: rows whose score is within ±{summary.near:.2f} of the '
        "theme's decision threshold. The model is unsure about them, so a theme's total could "
        "move by about that many rows either way.</p></section>"
    )

    if summary.date_column is not None:
        body.append('<section aria-labelledby="h-time"><h2 id="h-time">Over time</h2>')
        kind = summary.period_kind or "period"
        if summary.periods:
            table = _counts_table(summary.periods, summary, "period", kind.title(), "period-table")
            caption = (
                f"Per {kind} (by column {_e(summary.date_column)}): tagged rows, then for each "
                "theme the share of that "
                f"{kind}'s tagged rows with it as a strength (solid line) or concern (dashed). "
                f"Hollow points rest on fewer than {summary.min_group} tagged rows."
            )
            details = f"The counts behind each point ({len(summary.periods)} {kind}s)"
            if charts:
                body.append(_figure_html(chart_periods(summary), caption, table, details))
            else:
                body.append(table)
        else:
            body.append("<p>No row has a date.</p>")
        if summary.rows_without_date:
            body.append(
                f'<p class="muted">{summary.rows_without_date:,} rows without a date are left '
                "out of this section.</p>"
            )
        body.append("</section>")

    if summary.group_column is not None:
        body.append('<section aria-labelledby="h-groups"><h2 id="h-groups">By group</h2>')
        small = (
            f"Groups with fewer than {summary.min_group} tagged rows are merged into “other” and "
            "never shown alone, so no small group, and no individual, can be picked out"
        )
        if summary.groups_merged:
            small += f" ({summary.groups_merged:,} groups are in “other”)"
        if summary.groups:
            table = _counts_table(summary.groups, summary, "group", "Group", "group-table")
            caption = (
                f"Each group of column {_e(summary.group_column)} (tagged rows in brackets): the "
                "share of its tagged rows with each theme as a strength (right, solid) or a "
                f"concern (left, hatched). {small}."
            )
            if charts:
                body.append(
                    _figure_html(
                        chart_groups(summary), caption, table, "The counts behind each bar"
                    )
                )
            else:
                body.append(table + f"<p class='muted'>{small}.</p>")
        else:
            body.append(f"<p>No group has {summary.min_group} tagged rows or more. {small}.</p>")
        body.append("</section>")

    if quotes:
        body.append('<section aria-labelledby="h-quotes"><h2 id="h-quotes">In their words</h2>')
        body.append(
            '<p class="muted">Evidence sentences with high scores, chosen to differ from each '
            "other; each with the row it comes from.</p>"
        )
        for theme in summary.themes:
            body.append(f"<h3>{_e(theme)}</h3><div class='quotes'>")
            for polarity, css, name in ((positive, "s", "Strength"), (negative, "c", "Concern")):
                chosen = quotes.get((theme, polarity), [])
                body.append(f"<div><p><span class='{css}'>{name}</span></p>")
                if not chosen:
                    body.append("<p class='muted'>No quote.</p>")
                for q in chosen:
                    body.append(
                        f"<blockquote class='{css}'><p>“{_e(_cut(q['text'], _QUOTE_CHARS))}”</p>"
                        f"<footer>{_e(_cut(str(q['id']), 40))} · score {q['score']:.2f}</footer>"
                        "</blockquote>"
                    )
                body.append("</div>")
            body.append("</div>")
        body.append("</section>")

    body.append(_footer(summary, card))
    # The policy forbids every fetch (scripts, fonts, images, frames); inline styles only.
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(heading)} – {_e(source)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
