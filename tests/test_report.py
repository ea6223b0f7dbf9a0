"""The HTML report: its numbers, its privacy rules, its self-containment and its errors.

Most tests build tagged tables directly (shaped like `classifier tag` output, with theme names
and thresholds made up on the spot), so they need no model; the end-to-end ones tag the sample
with the shipped model, which loads in seconds (the tiny test model takes a minute to fit).
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SAMPLE_CSV
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from classifier import ClassifierError
from classifier.cli import app
from classifier.report import build_report, load_card, require_matplotlib
from classifier.tagging import output_columns, tag_file

POSITIVE, NEGATIVE = "positive", "negative"
VOCABULARY = (
    "she listened never rushed cancelled late again kind plan goals progress stuck honest "
    "felt heard judged safe trust room week session talk notes letter told asked chose"
)
CHROMIUM = Path("/usr/bin/chromium")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------------------ table maker
def make_tagged(
    n: int,
    themes: list[str],
    seed: int = 0,
    groups: dict[str, int] | None = None,
    days: int = 60,
    evidence: bool = False,
) -> pd.DataFrame:
    """A table shaped like `classifier tag` output (see output_columns), from random numbers.

    ``groups`` maps a group name to its number of rows (the rest go to "G-rest"); evidence
    sentences, when asked for, are unique per row and theme so a test can look for them.
    """
    rng = np.random.default_rng(seed)
    words = np.array(VOCABULARY.split())
    status = rng.choice(["ok", "ok", "ok", "ok", "empty", "not_text"], n)
    ok = status == "ok"
    names = [name for name, size in (groups or {}).items() for _ in range(size)]
    names = (names + ["G-rest"] * n)[:n]
    start = pd.Timestamp("2025-01-01")
    dates = [
        "" if rng.random() < 0.05 else f"{start + pd.Timedelta(days=int(d)):%Y-%m-%d}"
        for d in rng.integers(0, days, n)
    ]
    frame = pd.DataFrame(
        {
            "response_id": [f"R-{i:05d}" for i in range(n)],
            "submitted": dates,
            "team": rng.permutation(names),
            "feedback": [f"private feedback text number {i}" for i in range(n)],
        }
    )
    labels, scores, sentences = {}, {}, {}
    for k, theme in enumerate(themes):
        score = np.round(rng.random(n), 3)
        found = ok & (score >= 0.5)
        polarity = np.where(rng.random(n) < 0.5, POSITIVE, NEGATIVE)
        labels[theme] = np.where(found, polarity, "")
        scores[f"{theme}_score"] = np.where(ok, score.astype(str), "")
        sentences[f"{theme}_evidence"] = [
            f"row{i} {theme}{k} " + " ".join(rng.choice(words, 5)) if found[i] else ""
            for i in range(n)
        ]
    marks = {POSITIVE: "+", NEGATIVE: "-"}
    frame["themes"] = [
        "; ".join(f"{t}{marks[labels[t][i]]}" for t in themes if labels[t][i]) for i in range(n)
    ]
    for theme in themes:
        frame[theme] = labels[theme]
    for name, values in scores.items():
        frame[name] = values
    if evidence:
        for name, values in sentences.items():
            frame[name] = values
    frame["status"] = status
    assert list(frame.columns[4:]) == output_columns(themes, explain=evidence)
    return frame


def card_for(themes: list[str], thresholds: list[float] | None = None) -> dict:
    values = thresholds or [0.5] * len(themes)
    return {"thresholds": dict(zip(themes, values, strict=True))}


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- HTML reading
class Tables(HTMLParser):
    """The cells of every <table id=...> in a page, as lists of row texts."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: list[str] = []
        self._table = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", f"t{len(self.tables)}"), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


# ------------------------------------------------------------------------ property: numbers
theme_names = st.lists(
    st.from_regex(r"[a-z]{3,9}", fullmatch=True).filter(lambda s: s not in {"themes", "status"}),
    min_size=1,
    max_size=4,
    unique=True,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    themes=theme_names,
    n=st.integers(1, 90),
    seed=st.integers(0, 2**16),
    min_group=st.integers(1, 15),
    thresholds=st.lists(st.floats(0.05, 0.95), min_size=4, max_size=4),
    sizes=st.lists(st.integers(0, 25), min_size=1, max_size=5),
    near=st.sampled_from([0.0, 0.05, 0.1, 0.25]),
)
def test_report_numbers_equal_counts_from_the_table(
    tmp_path, themes, n, seed, min_group, thresholds, sizes, near
):
    thresholds = [round(t, 3) for t in thresholds[: len(themes)]]
    groups = {f"G-{i}": size for i, size in enumerate(sizes)}
    frame = make_tagged(n, themes, seed, groups=groups)
    path = write(frame, tmp_path / f"t{seed}.csv")
    out = tmp_path / f"t{seed}.html"
    summary = build_report(
        path,
        out,
        card=card_for(themes, thresholds),
        date_column="submitted",
        group_column="team",
        min_group=min_group,
        near=near,
        chunk_size=29,  # several chunks even for small tables: the sums must add up
        charts=False,
        force=True,
    )
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    ok = table["status"] == "ok"
    assert summary.themes == themes
    assert summary.rows == n and summary.rows_tagged == ok.sum()
    assert summary.rows_empty_text == (table["status"] == "empty").sum()
    assert summary.rows_with_theme == (ok & (table[themes] != "").any(axis=1)).sum()
    for theme, threshold in zip(themes, thresholds, strict=True):
        assert summary.theme_counts[theme] == {
            POSITIVE: (ok & (table[theme] == POSITIVE)).sum(),
            NEGATIVE: (ok & (table[theme] == NEGATIVE)).sum(),
        }
        score = pd.to_numeric(table[f"{theme}_score"])
        near_rows = ok & ((score - threshold).abs() <= near + 1e-9)
        assert summary.near_threshold[theme] == near_rows.sum()
        assert summary.near_threshold_tagged[theme] == (near_rows & (table[theme] != "")).sum()

    # The page shows the same numbers as the summary.
    page = out.read_text()
    cells = Tables(page).tables["theme-table"]
    for row, theme in zip(cells[1:], themes, strict=True):
        assert row[0] == theme
        counts = summary.theme_counts[theme]
        assert [number(row[1]), number(row[3])] == [counts[POSITIVE], counts[NEGATIVE]]
        assert number(row[5]) == summary.near_threshold[theme]
    assert f"{n:,}</b>rows" in page

    # Periods: every dated row once, gaps included.
    dated = table[table["submitted"] != ""]
    assert sum(p["rows"] for p in summary.periods) == len(dated)
    assert summary.rows_without_date == n - len(dated)
    for theme in themes:
        assert (
            sum(p["counts"][theme][NEGATIVE] for p in summary.periods)
            == ((dated["status"] == "ok") & (dated[theme] == NEGATIVE)).sum()
        )

    # Groups: every shown group is big enough, "other" too, and every row is counted once.
    tagged_per_group = table[ok].groupby("team").size()
    shown = [g["group"] for g in summary.groups]
    for entry in summary.groups:
        assert entry["rows_tagged"] >= min_group or (
            entry["group"] == "other" and not entry["rows_tagged"]
        )
        if entry["group"] != "other":
            assert entry["rows_tagged"] == tagged_per_group[entry["group"]]
    small = set(tagged_per_group[tagged_per_group < min_group].index)
    assert not small & set(shown)
    if summary.groups:
        assert sum(g["rows"] for g in summary.groups) == n
    group_rows = Tables(page).tables.get("group-table", [])[1:]
    assert [row[0] for row in group_rows] == shown


def test_small_groups_never_appear_even_in_charts(tmp_path):
    themes = ["warmth", "pace"]
    frame = make_tagged(
        80, themes, seed=3, groups={"Big-A": 50, "Big-B": 14, "Tiny-X": 3, "Tiny-Y": 4}
    )
    frame["status"] = "ok"  # every row tagged, so group sizes are exactly the sizes above
    frame = frame[frame["team"] != "G-rest"]
    path = write(frame, tmp_path / "t.csv")
    summary = build_report(
        path, tmp_path / "r.html", card=card_for(themes), group_column="team", min_group=10
    )
    # Tiny-X and Tiny-Y (7 rows together) would make an "other" small enough to single them
    # out, so the smallest big group joins them.
    assert [(g["group"], g["rows"]) for g in summary.groups] == [("Big-A", 50), ("other", 21)]
    page = (tmp_path / "r.html").read_text()
    for name in ("Tiny-X", "Tiny-Y", "Big-B"):
        assert name not in page
    assert "Big-A" in page


def test_every_group_small_shows_none(tmp_path):
    themes = ["warmth"]
    frame = make_tagged(12, themes, groups={f"clinician-{i}": 2 for i in range(6)})
    summary = build_report(
        write(frame, tmp_path / "t.csv"),
        tmp_path / "r.html",
        card=card_for(themes),
        group_column="team",
        min_group=20,
        charts=False,
    )
    page = (tmp_path / "r.html").read_text()
    assert summary.groups == [] and "clinician-" not in page
    assert "No group has 20 tagged rows or more" in page


# ------------------------------------------------------------------------------------ quotes
def test_no_feedback_text_without_quotes_and_representative_quotes_with(tmp_path):
    themes = ["warmth", "pace"]
    frame = make_tagged(60, themes, seed=1, evidence=True)
    path = write(frame, tmp_path / "t.csv")
    texts = [t for name in themes for t in frame[f"{name}_evidence"] if t]
    texts += frame["feedback"].tolist()

    build_report(path, tmp_path / "plain.html", card=card_for(themes), charts=False)
    page = (tmp_path / "plain.html").read_text()
    assert not [t for t in texts if t in page]
    assert "private feedback" not in page

    summary = build_report(path, tmp_path / "q.html", card=card_for(themes), quotes=2)
    page = (tmp_path / "q.html").read_text()
    assert 0 < summary.quotes <= 2 * 2 * len(themes)
    assert "Contains quotes from client feedback" in page
    for theme in themes:
        for polarity in (POSITIVE, NEGATIVE):
            rows = frame[(frame[theme] == polarity) & (frame["status"] == "ok")]
            quoted = [t for t in rows[f"{theme}_evidence"] if t in page]
            assert len(quoted) == min(2, len(rows))
            # The highest score is always among them; each comes with its row id.
            best = rows.loc[pd.to_numeric(rows[f"{theme}_score"]).idxmax()]
            assert best[f"{theme}_evidence"] in page and best["response_id"] in page
    assert "private feedback" not in page  # quotes are evidence sentences, not whole texts
    assert not re.search("https?:", page)


def test_quotes_need_evidence_columns(tmp_path):
    path = write(make_tagged(10, ["warmth"]), tmp_path / "t.csv")
    with pytest.raises(ClassifierError, match="tag with --explain"):
        build_report(path, tmp_path / "r.html", card=card_for(["warmth"]), quotes=1)


# ---------------------------------------------------------------------- self-contained HTML
SCRIPT_GROUP = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def big_report(tmp_path_factory) -> Path:
    """The largest page without quotes: 21 groups shown, 24 months, six themes, charts drawn.

    Its size depends on groups and periods, not on rows, so this bounds a million-row report.
    """
    folder = tmp_path_factory.mktemp("report")
    themes = ["genuineness", "trust", "empathy", "collaboration", "boundaries", "progress"]
    groups = {f"team {i:02d}": 140 for i in range(20)}
    groups[SCRIPT_GROUP] = 140  # a group name is data, not markup
    frame = make_tagged(21 * 140, themes, groups=groups, days=730)
    path = write(frame, folder / "t.csv")
    summary = build_report(
        path,
        folder / "report.html",
        card=load_card(),
        date_column="submitted",
        group_column="team",
        min_group=5,
        max_groups=21,
    )
    assert summary.period_kind == "month" and len(summary.groups) == 21
    return folder / "report.html"


def test_the_report_fetches_nothing(big_report):
    page = big_report.read_text()
    assert "default-src 'none'" in page  # the browser refuses any fetch, should one slip in
    assert not re.search(r"https?:|ftp:|//[a-z]", page, re.IGNORECASE)
    assert not re.search(r"<(script|link|img|iframe|object|embed|source|audio|video)\b", page)
    assert "@import" not in page
    assert set(re.findall(r"url\((.)", page)) <= {"#"}  # only fragments of the page itself
    assert set(re.findall(r'href="(.)', page)) <= {"#"}
    assert html.escape(SCRIPT_GROUP) in page


def test_the_report_is_accessible(big_report):
    page = big_report.read_text()
    parsed = Tables(page)
    assert '<html lang="en">' in page and 'name="viewport"' in page
    svgs = re.findall(r"<svg[^>]*>", page)
    assert len(svgs) == 3
    for svg in svgs:
        assert 'role="img"' in svg and "aria-labelledby" in svg
    assert page.count("<title id=") == 3 and page.count("<desc id=") == 3
    assert "Model: <b>theme-classifier</b>" in page and "Intended use and limitations" in page
    assert len(parsed.ids) == len(set(parsed.ids))  # charts' ids do not collide
    for table in ("theme-table", "period-table", "group-table"):  # the data behind each chart
        assert table in parsed.tables
    assert "hatch" in page or "pattern" in page  # concerns are hatched, not just another colour
    assert "@media print" in page and "size:A4" in page


def test_the_largest_report_stays_under_2_mb(big_report):
    assert big_report.stat().st_size < 2_000_000


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_headless_chromium_renders_the_report(big_report, tmp_path):
    png = tmp_path / "shot.png"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "report_screenshot.py"),
            "--report",
            str(big_report),
            "--png",
            str(png),
            "--height",
            "1600",
            "--max-height",
            "1500",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


# ------------------------------------------------------------------------- dates and periods
@pytest.mark.parametrize(
    "days, n, period, expected", [(60, 400, "auto", "week"), (60, 30, "auto", "month"),
                                  (700, 400, "auto", "month"), (700, 400, "week", "week")]
)  # fmt: skip
def test_period_follows_the_span_and_the_rows(tmp_path, days, n, period, expected):
    frame = make_tagged(n, ["warmth"], days=days)
    summary = build_report(
        write(frame, tmp_path / "t.csv"),
        tmp_path / "r.html",
        card=card_for(["warmth"]),
        date_column="submitted",
        period=period,
        charts=False,
    )
    assert summary.period_kind == expected
    starts = [pd.Timestamp(p["start"]) for p in summary.periods]
    step = pd.offsets.Week(weekday=0) if expected == "week" else pd.offsets.MonthBegin()
    assert starts == list(pd.date_range(starts[0], periods=len(starts), freq=step))


def test_date_format_option(tmp_path):
    frame = make_tagged(40, ["warmth"])
    frame["submitted"] = pd.to_datetime(frame["submitted"]).dt.strftime("%d/%m/%Y").fillna("")
    path = write(frame, tmp_path / "t.csv")
    options = dict(card=card_for(["warmth"]), date_column="submitted", charts=False)
    with pytest.raises(ClassifierError, match=r"data row \d+: column 'submitted' is not an ISO"):
        build_report(path, tmp_path / "r.html", **options)
    summary = build_report(path, tmp_path / "r.html", date_format="%d/%m/%Y", **options)
    assert sum(p["rows"] for p in summary.periods) == (frame["submitted"] != "").sum()


# ---------------------------------------------------------------- every format `tag` writes
@pytest.fixture(scope="module")
def tagged_sample(tmp_path_factory) -> dict[str, Path]:
    """The sample tagged by the shipped model, in each output format (JSON Lines nested)."""
    folder = tmp_path_factory.mktemp("tagged")
    paths = {}
    for fmt in ("csv", "jsonl", "xlsx", "parquet"):
        paths[fmt] = folder / f"sample.{fmt}"
        tag_file(str(SAMPLE_CSV), str(paths[fmt]), explain=True)
    return paths


def test_every_tag_output_format_gives_the_same_report(tagged_sample, tmp_path):
    summaries = {
        fmt: build_report(
            path,
            tmp_path / f"{fmt}.html",
            date_column="submitted",
            group_column="service",
            quotes=1,
            charts=False,
        )
        for fmt, path in tagged_sample.items()
    }
    first = summaries["csv"]
    assert first.rows == 52 and first.rows_tagged == 51 and first.rows_empty_text == 1
    assert first.themes == load_card()["codebook"]["themes"]
    for fmt, summary in summaries.items():
        assert summary.theme_counts == first.theme_counts, fmt
        assert summary.periods == first.periods and summary.groups == first.groups, fmt
        assert summary.quotes == first.quotes, fmt
    page = (tmp_path / "csv.html").read_text()
    assert "therapeutic-relationship version" in page and "Intended use and limitations" in page
    assert "R-1" in page  # quotes cite the response_id column


def test_report_command_and_tag_report_option(tagged_sample, tmp_path):
    out = tmp_path / "r.html"
    result = run("report", tagged_sample["csv"], "-o", out, "--group-column", "service")
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0 and "Report " in result.output

    tagged, report = tmp_path / "t.csv", tmp_path / "t.html"
    result = run("tag", SAMPLE_CSV, "-o", tagged, "--report", report, "-q")
    assert result.exit_code == 0, result.output
    assert "<svg" in report.read_text()

    # An existing report stops `tag` before it tags anything.
    result = run("tag", SAMPLE_CSV, "-o", tmp_path / "new.csv", "--report", report)
    assert result.exit_code == 1 and "already exists" in result.output
    assert not (tmp_path / "new.csv").exists()
    # Standard output is no file to report on: a usage error.
    assert run("tag", SAMPLE_CSV, "-o", "-", "--report", tmp_path / "x.html").exit_code == 2


# ----------------------------------------------------------------------------------- errors
SECRET = "my private secret sentence"


@pytest.mark.parametrize(
    "change, options, message",
    [
        (None, ["--group-column", "clinic"], "t.csv: no group column 'clinic'"),
        (None, ["--date-column", "when"], "t.csv: no date column 'when'"),
        ("bad_date", ["--date-column", "submitted"], "t.csv, data row 4: column 'submitted'"),
        ("bad_status", [], "t.csv, data row 3: column 'status' is not one of"),
        ("bad_label", [], "t.csv, data row 2: column 'warmth' is not 'positive'"),
        ("bad_score", [], "t.csv, data row 5: column 'warmth_score' is not a number"),
        ("untagged", [], "t.csv: not a tagged file"),
        ("header_only", [], "t.csv: no rows"),
        ("unknown_theme", [], "theme column(s) 'pace' are not in the model card"),
        (None, ["--quotes", "1"], "no evidence columns"),
    ],
)
def test_bad_input_is_one_line_exit_1(tmp_path, monkeypatch, change, options, message):
    frame = make_tagged(8, ["warmth"])
    frame["feedback"] = SECRET
    if change == "bad_date":
        frame.loc[3, "submitted"] = SECRET
    elif change == "bad_status":
        frame.loc[2, "status"] = SECRET
    elif change == "bad_label":
        frame.loc[1, "warmth"] = SECRET
    elif change == "bad_score":
        frame.loc[4, "warmth_score"] = SECRET
    elif change == "untagged":
        frame = frame[["response_id", "feedback"]]
    elif change == "header_only":
        frame = frame.iloc[:0]
    elif change == "unknown_theme":
        frame = make_tagged(8, ["pace"])
    path = write(frame, tmp_path / "t.csv")
    # The shipped model card has no 'warmth': point --model at a folder whose card has one.
    model = tmp_path / "model" / "m.npz"
    model.parent.mkdir()
    (model.parent / "model-card.json").write_text('{"thresholds": {"warmth": 0.5}}')
    result = run("report", path, "-o", tmp_path / "r.html", "--model", model, *options)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert SECRET not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_existing_report_needs_force(tmp_path):
    path = write(make_tagged(5, ["warmth"]), tmp_path / "t.csv")
    out = tmp_path / "r.html"
    out.write_text("keep me")
    with pytest.raises(ClassifierError, match="already exists; pass --force"):
        build_report(path, out, card=card_for(["warmth"]), charts=False)
    assert out.read_text() == "keep me"
    build_report(path, out, card=card_for(["warmth"]), charts=False, force=True)
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(ClassifierError, match=r"needs matplotlib: pip install .*\[report\]"):
        require_matplotlib()
    path = write(make_tagged(5, ["warmth"]), tmp_path / "t.csv")
    with pytest.raises(ClassifierError, match=r"\[report\]"):
        build_report(path, tmp_path / "r.html", card=card_for(["warmth"]))
    # The tables alone need no matplotlib.
    build_report(path, tmp_path / "r.html", card=card_for(["warmth"]), charts=False)
