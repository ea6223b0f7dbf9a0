import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier import ClassifierError, load_model
from classifier.tagging import (
    TagSummary,
    find_text_column,
    output_columns,
    scores_frame,
    tag_file,
    tag_frame,
)

ROWS = [
    {"id": "001", "feedback": "She never once cancelled and always started on time.", "n": "1"},
    {"id": "002", "feedback": "", "n": "2"},
    {"id": "003", "feedback": '=HYPERLINK("http://x") felt judged', "n": "-3"},
    {"id": "004", "feedback": "I felt heard, but nothing has changed.", "n": "4"},
]


@pytest.fixture()
def csv_input(tmp_path):
    path = tmp_path / "export.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    return path


def _tag(src, dst, model, **options):
    return tag_file(str(src), str(dst), model_path=model, **options)


def test_every_row_and_column_comes_back_in_order(csv_input, tmp_path, tiny_model_path):
    before = csv_input.read_bytes()
    summary = _tag(csv_input, tmp_path / "out.csv", tiny_model_path)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    model = load_model(tiny_model_path)
    assert list(out.columns) == ["id", "feedback", "n", *output_columns(model.themes_)]
    assert out["id"].tolist() == ["001", "002", "003", "004"]
    assert out["status"].tolist() == ["ok", "empty", "ok", "ok"]
    assert csv_input.read_bytes() == before  # the input is never modified
    assert summary.rows_read == 4 and summary.rows_empty_text == 1 and summary.rows_tagged == 3
    assert summary.rows_with_theme + summary.rows_no_theme == 3


def test_spreadsheet_formulas_are_neutralised_but_numbers_kept(
    csv_input, tmp_path, tiny_model_path
):
    _tag(csv_input, tmp_path / "out.csv", tiny_model_path)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out.loc[2, "feedback"].startswith("'=")
    assert out.loc[2, "n"] == "-3"


def test_jsonl_output_nests_the_prediction(csv_input, tmp_path, tiny_model_path):
    _tag(csv_input, tmp_path / "out.jsonl", tiny_model_path, explain=True)
    records = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert [r["id"] for r in records] == ["001", "002", "003", "004"]
    assert set(records[0]["classification"]) == {"labels", "themes", "scores", "status"}
    assert records[1]["classification"]["status"] == "empty"


@pytest.mark.parametrize("suffix", [".xlsx", ".parquet", ".tsv"])
def test_other_formats_in_and_out(tmp_path, tiny_model_path, suffix):
    source = tmp_path / f"in{suffix}"
    # (no formula-like cell here: pandas itself would write it to Excel as a live formula)
    frame = pd.DataFrame(ROWS).replace({"feedback": {ROWS[2]["feedback"]: "I felt judged."}})
    {
        ".xlsx": lambda p: frame.to_excel(p, index=False),
        ".parquet": lambda p: frame.to_parquet(p, index=False),
        ".tsv": lambda p: frame.to_csv(p, sep="\t", index=False),
    }[suffix](source)
    _tag(source, tmp_path / f"out{suffix}", tiny_model_path)
    reader = {
        ".xlsx": lambda p: pd.read_excel(p, dtype=str, keep_default_na=False),
        ".parquet": pd.read_parquet,
        ".tsv": lambda p: pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False),
    }
    out = reader[suffix](tmp_path / f"out{suffix}")
    assert out["id"].astype(str).tolist() == ["001", "002", "003", "004"]
    assert out["status"].tolist() == ["ok", "empty", "ok", "ok"]


def test_existing_output_needs_force(csv_input, tmp_path, tiny_model_path):
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    with pytest.raises(ClassifierError, match="already exists; pass --force"):
        _tag(csv_input, target, tiny_model_path)
    assert target.read_text() == "keep me"
    _tag(csv_input, target, tiny_model_path, force=True)
    assert target.read_text() != "keep me"


def test_a_failure_midway_leaves_no_output(tmp_path, tiny_model_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n" + "".join(f"{i},fine\n" for i in range(30)) + '31,"unclosed\n')
    target = tmp_path / "out.csv"
    with pytest.raises(ClassifierError, match="bad.csv"):
        _tag(bad, target, tiny_model_path, chunk_size=5)
    assert not target.exists()
    assert not list(tmp_path.glob(".out.csv*"))


def test_undecodable_bytes_point_to_encoding(tmp_path, tiny_model_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,text\n1,caf\xe9 ok\n".encode("latin-1"))
    with pytest.raises(ClassifierError, match="--encoding"):
        _tag(path, tmp_path / "o.csv", tiny_model_path)
    _tag(path, tmp_path / "o.csv", tiny_model_path, encoding="latin-1")


def test_text_column_detection():
    assert find_text_column(["id", "Feedback"], None, "f.csv") == "Feedback"
    with pytest.raises(ClassifierError, match="several candidate text columns; pass --text"):
        find_text_column(["id", "text", "comment"], None, "f.csv")
    with pytest.raises(ClassifierError, match="no obvious text column"):
        find_text_column(["id", "body"], None, "f.csv")
    with pytest.raises(ClassifierError, match="no column 'x'"):
        find_text_column(["id", "body"], "x", "f.csv")


def test_clashing_column_names_are_refused(tiny_model):
    with pytest.raises(ClassifierError, match="already has column.*trust"):
        tag_frame(pd.DataFrame({"text": ["a"], "trust": ["b"]}), tiny_model, "text")


@pytest.mark.parametrize("fork", [True, False], ids=["forked workers", "loky workers"])
def test_parallel_jobs_give_the_same_output(
    csv_input, tmp_path, tiny_model_path, monkeypatch, fork
):
    # Linux forks workers from the loaded model; elsewhere joblib's loky workers load it.
    import classifier.tagging

    monkeypatch.setattr(classifier.tagging, "_can_fork", lambda: fork)
    _tag(csv_input, tmp_path / "one.csv", tiny_model_path)
    _tag(csv_input, tmp_path / "two.csv", tiny_model_path, jobs=2, chunk_size=1)
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_refused_model_is_a_clear_error_with_any_number_of_jobs(csv_input, tmp_path, jobs):
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    crafted = tmp_path / "evil.skops"
    sio.dump(FunctionTransformer(func=os.system), crafted)
    with pytest.raises(ClassifierError, match="refused to load"):
        _tag(csv_input, tmp_path / "o.csv", crafted, jobs=jobs)
    assert not (tmp_path / "o.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.csv")] == []


def test_jsonl_output_nests_like_prediction_to_dict_with_jobs(
    csv_input, tmp_path, tiny_model, tiny_model_path
):
    _tag(csv_input, tmp_path / "two.jsonl", tiny_model_path, jobs=2, chunk_size=2)
    rows = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    texts = pd.read_csv(csv_input, dtype=str, keep_default_na=False)["feedback"].tolist()
    expected = [p.to_dict() for p in tiny_model.classify_many(texts, explain=False)]
    assert [row["classification"] for row in rows] == json.loads(json.dumps(expected))


cell = st.one_of(st.text(max_size=40), st.sampled_from(["", "=1+1", "-", "@x", "\t", "n/a"]))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(cell, cell), min_size=1, max_size=25), st.integers(1, 6))
def test_any_table_of_strings_comes_back_whole_and_in_order(
    tiny_model_path, tmp_path_factory, rows, chunk_size
):
    folder = tmp_path_factory.mktemp("prop")
    frame = pd.DataFrame(
        {
            "key": [str(i) for i in range(len(rows))],
            "text": [r[0] for r in rows],
            "other": [r[1] for r in rows],
        }
    )
    frame.to_json(folder / "in.jsonl", orient="records", lines=True)
    tag_file(
        str(folder / "in.jsonl"),
        str(folder / "out.jsonl"),
        model_path=tiny_model_path,
        chunk_size=chunk_size,
    )
    out = pd.read_json(folder / "out.jsonl", lines=True, dtype=False)
    assert out["key"].astype(str).tolist() == frame["key"].tolist()
    assert out["text"].tolist() == frame["text"].tolist()
    assert out["other"].tolist() == frame["other"].tolist()


def test_flat_columns_and_counts_agree_with_the_predictions(tiny_model, corpus):
    # The CLI's columns and summary are built from arrays, the library's Prediction objects
    # from the same arrays by another route: they must tell the same story, row by row.
    texts = corpus["text"].head(60).tolist() + ["", None, "Nothing", "Nothing", 3.5]
    batch = tiny_model.score_batch(texts, explain=True)
    predictions = tiny_model.classify_many(texts, explain=True)
    frame = scores_frame(batch, explain=True)
    summary = TagSummary(input="", output="")
    summary.add(batch)
    marks = {"positive": "+", "negative": "-"}
    assert len(frame) == len(predictions)
    for (_, row), prediction in zip(frame.iterrows(), predictions, strict=True):
        assert row["status"] == prediction.status
        assert row["themes"] == "; ".join(f"{t}{marks[p]}" for t, p in prediction.labels.items())
        for theme in tiny_model.themes_:
            assert row[theme] == prediction.labels.get(theme, "")
            score = prediction.scores.get(theme)
            assert (pd.isna(row[f"{theme}_score"]) if score is None
                    else row[f"{theme}_score"] == round(score, 3))  # fmt: skip
        for result in prediction.themes:
            assert row[f"{result.theme}_evidence"] == result.evidence
    assert summary.rows_read == len(texts)
    assert summary.rows_with_theme == sum(bool(p.themes) for p in predictions)
    assert summary.rows_empty_text == 2 and summary.rows_not_text == 1  # "" and None; 3.5
    for theme, counts in summary.theme_counts.items():
        for polarity, count in counts.items():
            assert count == sum(p.labels.get(theme) == polarity for p in predictions)


FRAME_CELLS = st.sampled_from(["She listened.", "", None, "Cancelled again.", "ok", 4])


@settings(max_examples=25, deadline=None)
@given(st.lists(FRAME_CELLS, max_size=12), st.integers(1, 5))
def test_tag_frame_keeps_index_and_order_whatever_the_chunk_size(tiny_model, texts, chunk_size):
    frame = pd.DataFrame({"feedback": texts}, index=[f"r{i}" for i in range(len(texts))][::-1])
    whole = tag_frame(frame, tiny_model, "feedback", chunk_size=max(len(texts), 1))
    chunked = tag_frame(frame, tiny_model, "feedback", chunk_size=chunk_size)
    assert list(chunked.index) == list(frame.index)
    pd.testing.assert_series_equal(chunked["feedback"], frame["feedback"])  # NaN == NaN here
    pd.testing.assert_frame_equal(chunked, whole)
    assert list(chunked.columns) == ["feedback", *output_columns(tiny_model.themes_)]


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_line_breaks_inside_texts_never_split_rows(tmp_path, tiny_model_path, suffix):
    # A bare carriage return used to go out unquoted: the row split in two on reading back.
    texts = ["SECRET a\rb", "two\nlines", "crlf\r\nhere", "tab\there", "plain"]
    source = tmp_path / "in.jsonl"
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_json(
        source, orient="records", lines=True
    )
    target = tmp_path / f"out{suffix}"
    _tag(source, target, tiny_model_path)
    back = pd.read_csv(target, sep="\t" if suffix == ".tsv" else ",", dtype=str)
    assert back["text"].tolist() == texts
    assert back["id"].tolist() == [str(i) for i in range(len(texts))]


def test_a_lone_surrogate_is_analysed_and_written_not_a_crash(tmp_path, tiny_model_path):
    # '\ud800' (from a JSON escape) used to crash classify_many for the whole batch.
    model = load_model(tiny_model_path)
    assert [p.status for p in model.classify_many(["a \ud800 b", "fine"])] == ["ok", "ok"]
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "text": "she \\ud800 listened"}\n{"id": 2, "text": "ok"}\n')
    for suffix in (".csv", ".jsonl"):
        _tag(source, tmp_path / f"out{suffix}", tiny_model_path)
    back = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert back["text"].tolist() == ["she ? listened", "ok"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_pii_flags_and_redaction_keep_rows_and_change_only_the_text(
    tmp_path, tiny_model_path, suffix
):
    texts = ["Email me at jo.bloggs@example.com please", "She listened.", None, "Dr XXX was kind"]
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "feedback": texts}).to_csv(source, index=False)
    out = tmp_path / f"out{suffix}"
    summary = tag_file(str(source), str(out), model_path=tiny_model_path, pii=True, redact=True)
    if suffix == ".csv":
        frame = pd.read_csv(out, dtype=str, keep_default_na=False)
        pii, redacted = frame["pii"].tolist(), frame["pii_redacted"].astype(int).tolist()
    else:
        frame = pd.read_json(out, lines=True, dtype=False)
        pii, redacted = frame["pii"].tolist(), frame["pii_redacted"].tolist()
        assert "pii" not in frame["classification"][0]  # beside the classification, not in it
    assert frame["id"].tolist() == ["a", "b", "c", "d"]
    assert pii == ["email", "", "", ""]
    assert redacted == [0, 0, 0, 1]  # "XXX" was already redacted: counted, not found
    assert frame["feedback"][0] == "Email me at [EMAIL] please"
    assert frame["feedback"][3] == "Dr XXX was kind"
    assert summary.pii_counts["email"] == 1 and summary.pii_counts["name"] == 0


def test_without_pii_options_no_pii_columns_and_the_text_is_unchanged(tiny_model):
    frame = pd.DataFrame({"text": ["mail jo@example.com"]})
    tagged = tag_frame(frame, tiny_model, "text")
    assert "pii" not in tagged.columns and tagged["text"][0] == "mail jo@example.com"
    flagged = tag_frame(frame, tiny_model, "text", pii=True)
    assert flagged["pii"][0] == "email" and flagged["text"][0] == "mail jo@example.com"
    assert list(flagged.columns)[-2:] == ["pii", "pii_redacted"]


def test_a_text_over_the_analysed_length_is_tagged_and_marked_truncated(tmp_path, tiny_model_path):
    long_text = "She listened and I felt heard. " * 3_300  # ~102,000 characters
    source = tmp_path / "in.jsonl"
    rows = [{"id": 1, "text": long_text}, {"id": 2, "text": "She listened."}]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.csv"
    summary = tag_file(str(source), str(out), model_path=tiny_model_path)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert frame["status"].tolist() == ["truncated", "ok"]
    assert frame["text"][0] == long_text  # the whole text is written back
    assert summary.rows_tagged == 2 and summary.rows_truncated == 1
    assert any("over 100,000 characters" in line for line in summary.warnings())
    prediction = load_model(tiny_model_path).classify(long_text, explain=False)
    assert prediction.status == "truncated" and prediction.scores
