"""`train --add`: the base corpus plus a researcher's coded rows, and a card that says so."""

import json

import pandas as pd
import pytest
from conftest import TINY_PARAMS
from typer.testing import CliRunner

from classifier._errors import ClassifierError
from classifier.cli import app
from classifier.data import read_corpus
from classifier.labels import LabelScheme
from classifier.persistence import CARD_JSON, CARD_MARKDOWN, DEFAULT_MODEL_PATH, MODEL_FILE
from classifier.retrain import COMBINED_CORPUS, build_training_corpus, train_with_coded

SCHEME = LabelScheme.from_codebook()


@pytest.fixture()
def coded_sheet(tmp_path, corpus, tiny_corpus):
    """60 pool rows (not in the tiny corpus) coded in a sheet, plus one text of the base."""
    pool = corpus[(corpus["source"] == "nhs-pool") & ~corpus["id"].isin(tiny_corpus["id"])]
    rows = pd.concat([pool.head(60), tiny_corpus.head(1)], ignore_index=True)
    frame = pd.DataFrame({"response_id": rows["id"], "comment": rows["text"]})
    for theme in SCHEME.themes:
        frame[theme] = [labels.get(theme, "") for labels in rows["labels"]]
    path = tmp_path / "service_a.csv"
    frame.to_csv(path, index=False)
    return path, rows


def test_combined_corpus_has_the_coded_rows_with_their_source_and_split(
    coded_sheet, tiny_corpus_path, tmp_path
):
    path, rows = coded_sheet
    out = tmp_path / "combined.jsonl"
    data = build_training_corpus([path], out, corpus_path=tiny_corpus_path)
    combined = read_corpus(out)
    coded = combined[combined["source"] == "coded:service_a.csv"]
    assert len(coded) == 61
    assert coded["labels"].tolist() == rows["labels"].tolist()
    assert coded["coded_id"].tolist() == rows["id"].tolist()
    n_test = int((coded["split"] == "test").sum())
    assert n_test == data["added"][0]["test"] and 10 <= n_test <= 14  # about 20%
    # The base text that was also coded is replaced by the coded record.
    base = read_corpus(tiny_corpus_path)
    assert data["base"]["replaced_by_coded"] == 1
    assert len(combined) == len(base) - 1 + 61
    assert data["added"][0]["rows_read"] == 61 and data["added"][0]["rows_added"] == 61


def test_train_with_coded_writes_a_model_and_a_card_listing_the_added_file(
    coded_sheet, tiny_corpus_path, tmp_path
):
    path, _ = coded_sheet
    out = tmp_path / "my_model"
    card = train_with_coded(
        [path],
        out,
        corpus_path=tiny_corpus_path,
        cv_folds=0,
        ablation=False,
        params=TINY_PARAMS,
    )
    assert (out / MODEL_FILE).is_file() and (out / COMBINED_CORPUS).is_file()
    added = card["training_data"]["added"][0]
    assert added["file"] == "service_a.csv" and added["rows_added"] == 61
    assert card["training_data"]["path"] == COMBINED_CORPUS
    # The coded rows' test split is scored apart from the rest.
    scored = card["metrics"]["test"]["source=coded:service_a.csv"]
    assert scored["n_texts"] == added["test"]
    assert json.loads((out / CARD_JSON).read_text())["training_data"]["added"] == [added]
    markdown = (out / CARD_MARKDOWN).read_text()
    assert "| `service_a.csv` " in markdown and "source=coded:service_a.csv" in markdown
    assert markdown.index("## Training data") < markdown.index("## Evaluation")


def test_refuses_the_shipped_model_folder_and_name_clashes(coded_sheet, tmp_path):
    path, _ = coded_sheet
    with pytest.raises(ClassifierError, match="shipped model's folder"):
        train_with_coded([path], DEFAULT_MODEL_PATH.parent, cv_folds=0)
    other = tmp_path / "other"
    other.mkdir()
    (other / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ClassifierError, match="two --add files are named service_a.csv"):
        build_training_corpus([path, other / path.name], tmp_path / "c.jsonl")


def test_another_codebook_trains_on_the_coded_rows_only(tmp_path):
    codebook = tmp_path / "mine.toml"
    codebook.write_text(
        'name = "mine"\nversion = "1"\n'
        '[[themes]]\nid = "warmth"\nname = "Warmth"\ndefinition = "Warm."\n'
    )
    frame = pd.DataFrame(
        {"text": [f"text number {i}" for i in range(20)], "warmth": ["+", "", "-", ""] * 5}
    )
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    messages = []
    data = build_training_corpus(
        [path], tmp_path / "c.jsonl", codebook_path=codebook, log=messages.append
    )
    assert data["base"] is None and any("coded rows only" in m for m in messages)
    assert len(read_corpus(tmp_path / "c.jsonl")) == 20


def test_cli_train_add_reports_a_bad_cell_in_one_line(tmp_path):
    frame = pd.DataFrame({"text": ["She listened.", "Late again."]})
    for theme in SCHEME.themes:
        frame[theme] = ""
    frame.loc[0, "trust"] = "yes"
    path = tmp_path / "coded.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["train", "--add", str(path), "--output-dir", str(tmp_path / "m"), "--cv-folds", "0"]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "coded.csv, row 1, column 'trust': unknown value 'yes'" in lines[0]


def test_rows_review_chose_as_uncertain_are_marked_targeted(tmp_path):
    from classifier.review import RANDOM_REASON, REASON_COLUMN

    frame = pd.DataFrame({"text": [f"comment number {i}" for i in range(10)]})
    for theme in SCHEME.themes:
        frame[theme] = ""
    frame["empathy"] = ["+", "-"] * 5
    frame[REASON_COLUMN] = ["closest to a threshold: empathy", RANDOM_REASON] * 5
    path = tmp_path / "sheet.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "c.jsonl"
    base = tmp_path / "base.jsonl"
    base.write_text(
        json.dumps(
            {"id": "b", "text": "a base text", "labels": {}, "source": "authored", "split": "train"}
        )
        + "\n"
    )
    data = build_training_corpus([path], out, corpus_path=base)
    coded = read_corpus(out)
    coded = coded[coded["source"] == "coded:sheet.csv"]
    assert coded["selection"].tolist() == ["targeted", "random"] * 5
    assert data["added"][0]["chosen_by_review"] == 5
