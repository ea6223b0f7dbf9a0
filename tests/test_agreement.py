"""Agreement reports: numbers equal scikit-learn's; files, second coders and the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)
from typer.testing import CliRunner

from classifier.agreement import agree_with_coder, agreement_report, compare_labels
from classifier.cli import app
from classifier.labels import LabelScheme

SCHEME = LabelScheme.from_codebook()
THEMES, POLARITIES = SCHEME.themes, SCHEME.polarities


def random_labels(rng, n):
    labels = []
    for _ in range(n):
        label = {}
        for theme in THEMES:
            draw = rng.random()
            if draw < 0.15:
                label[theme] = POLARITIES[0]
            elif draw < 0.3:
                label[theme] = POLARITIES[1]
        labels.append(label)
    return labels


def noisy_copy(rng, labels, flip=0.2):
    copy = []
    for label in labels:
        new = dict(label)
        for theme in THEMES:
            if rng.random() < flip:
                if theme in new:
                    del new[theme]
                else:
                    new[theme] = POLARITIES[int(rng.random() < 0.5)]
            elif theme in new and rng.random() < 0.1:
                new[theme] = POLARITIES[1 - POLARITIES.index(new[theme])]
        copy.append(new)
    return copy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numbers_equal_scikit_learn_on_the_same_columns(seed):
    rng = np.random.default_rng(seed)
    coder = random_labels(rng, 150)
    model = noisy_copy(rng, coder)
    report = compare_labels(coder, model, THEMES, POLARITIES)
    for theme, m in report["per_theme"].items():
        a = [int(theme in labels) for labels in coder]
        b = [int(theme in labels) for labels in model]
        a3 = [labels.get(theme, "absent") for labels in coder]
        b3 = [labels.get(theme, "absent") for labels in model]
        assert m["kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
        assert m["kappa_polarity"] == pytest.approx(cohen_kappa_score(a3, b3), abs=1e-12)
        assert m["f1"] == pytest.approx(f1_score(a, b), abs=1e-12)
        assert m["precision"] == pytest.approx(precision_score(a, b), abs=1e-12)
        assert m["recall"] == pytest.approx(recall_score(a, b), abs=1e-12)
        expected = confusion_matrix(a3, b3, labels=["absent", *POLARITIES])
        assert m["confusion"]["matrix"] == expected.tolist()
        tn, fp, fn, tp = confusion_matrix(a, b).ravel()
        assert m["presence"] == {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
        both = [i for i in range(len(a)) if a[i] and b[i]]
        assert m["polarity_n"] == len(both)
        assert m["polarity_agreement"] == pytest.approx(np.mean([a3[i] == b3[i] for i in both]))
        assert m["tagged_reference"] == sum(a) and m["tagged_other"] == sum(b)
    truth = np.array([[t in labels for t in THEMES] for labels in coder], dtype=int)
    guess = np.array([[t in labels for t in THEMES] for labels in model], dtype=int)
    assert report["micro_f1"] == pytest.approx(f1_score(truth, guess, average="micro"))
    assert report["macro_f1"] == pytest.approx(f1_score(truth, guess, average="macro"))
    kappas = [report["per_theme"][t]["kappa"] for t in THEMES]
    assert report["mean_kappa"] == pytest.approx(np.mean(kappas))


def test_identical_labels_agree_perfectly_and_undefined_kappa_is_none():
    coder = [{"empathy": "positive"}, {}, {"empathy": "negative"}]
    report = compare_labels(coder, coder, THEMES, POLARITIES)
    assert report["per_theme"]["empathy"]["kappa"] == 1.0
    assert report["per_theme"]["trust"]["kappa"] is None  # nobody tagged it: undefined
    assert report["mean_kappa"] == 1.0 and report["identical_share"] == 1.0
    assert report["polarity_agreement"] == 1.0


def test_second_coder_adds_the_ceiling_beside_the_model():
    rng = np.random.default_rng(3)
    coder = random_labels(rng, 80)
    second, model = noisy_copy(rng, coder, 0.05), noisy_copy(rng, coder, 0.3)
    report = agreement_report(coder, model, THEMES, POLARITIES, second=second)
    assert report["coder2_vs_coder"] == compare_labels(coder, second, THEMES, POLARITIES)
    assert report["model_vs_coder2"] == compare_labels(second, model, THEMES, POLARITIES)
    assert report["coder2_vs_coder"]["micro_f1"] > report["model_vs_coder"]["micro_f1"]
    json.dumps(report)  # JSON-serialisable as it is


@pytest.fixture()
def coded_csv(tmp_path, tiny_corpus, tiny_model):
    """Test rows of the tiny corpus as a coder's sheet, with a second coder's columns."""
    test = tiny_corpus[tiny_corpus["split"] == "test"].head(80)
    frame = pd.DataFrame({"id": test["id"].tolist(), "feedback": test["text"].tolist()})
    for theme in THEMES:
        frame[theme] = [labels.get(theme, "") for labels in test["labels"]]
    rng = np.random.default_rng(0)
    second = noisy_copy(rng, test["labels"].tolist(), 0.05)
    for theme in THEMES:
        frame[f"{theme}_2"] = [labels.get(theme, "") for labels in second]
    path = tmp_path / "coded.csv"
    frame.to_csv(path, index=False)
    return path, test, second


def test_agree_with_coder_scores_the_model_on_the_coders_rows(coded_csv, tiny_model):
    path, test, second = coded_csv
    report = agree_with_coder(str(path), tiny_model, second_coder="{theme}_2")
    predicted = tiny_model.predict(test["text"].tolist())
    assert report["model_vs_coder"] == compare_labels(
        test["labels"].tolist(), predicted, THEMES, POLARITIES
    )
    assert report["coder2_vs_coder"] == compare_labels(
        test["labels"].tolist(), second, THEMES, POLARITIES
    )
    assert report["info"]["rows_used"] == len(test)


def test_second_coder_in_another_file_is_matched_by_id(coded_csv, tiny_model, tmp_path):
    path, test, second = coded_csv
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    other = frame[["id", "feedback"]].copy()
    for theme in THEMES:
        other[theme] = frame[f"{theme}_2"]
    other = other.iloc[::-1].head(60)  # another order, and some rows missing
    other_path = tmp_path / "second.csv"
    other.to_csv(other_path, index=False)
    report = agree_with_coder(str(path), tiny_model, second_coder=str(other_path))
    assert report["n_texts"] == 60 and report["info"]["second_coder"]["matched_by"] == "id"
    kept = set(other["id"])
    rows = [i for i, record_id in enumerate(test["id"]) if record_id in kept]
    assert report["coder2_vs_coder"] == compare_labels(
        [test["labels"].iloc[i] for i in rows], [second[i] for i in rows], THEMES, POLARITIES
    )


def test_cli_agree_text_and_json(coded_csv, tiny_model_path):
    path, test, _ = coded_csv
    runner = CliRunner()
    result = runner.invoke(
        app, ["agree", str(path), "--model", str(tiny_model_path), "--second-coder", "{theme}_2"]
    )
    assert result.exit_code == 0, result.output
    assert "kappa" in result.output and "coder 2 vs coder" in result.output
    for text in test["text"]:
        assert text not in result.output
    result = runner.invoke(app, ["agree", str(path), "--model", str(tiny_model_path), "--json"])
    report = json.loads(result.stdout)
    assert report["n_texts"] == len(test) and set(report["model_vs_coder"]["per_theme"]) == set(
        THEMES
    )


def test_cli_agree_bad_value_is_one_line(tmp_path, tiny_model_path):
    path = tmp_path / "coded.csv"
    frame = pd.DataFrame({"text": ["She listened.", "Late again."]})
    for theme in THEMES:
        frame[theme] = ""
    frame.loc[1, "boundaries"] = "late"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["agree", str(path), "--model", str(tiny_model_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "row 2, column 'boundaries': unknown value 'late'" in lines[0]
