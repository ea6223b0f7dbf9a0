"""Training the shipped model and writing its model card (``classifier train`` / ``evaluate``).

The test split is used once, after fitting, for the reported numbers; thresholds, calibration and
the ablation all use the train split only (cross-validation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from classifier._errors import ClassifierError
from classifier._files import write_text_atomically
from classifier._versions import library_versions
from classifier.codebook import load_codebook
from classifier.data import DEFAULT_CORPUS_PATH, corpus_hash, read_corpus
from classifier.evaluation import (
    KeywordBaseline,
    TfidfSvcBaseline,
    cross_validate,
    evaluate_on,
    presence_kappas,
    theme_metrics,
)
from classifier.model import ThemeClassifier
from classifier.persistence import save_model

MODEL_FILE = "theme-classifier.skops"
CARD_JSON = "model-card.json"
CARD_MARKDOWN = "MODEL_CARD.md"

# Preprocessing steps switched off one at a time; scored by cross-validation on the train split.
ABLATIONS = {
    "full pipeline (shipped)": {},
    "without negation scope": {"negation": False},
    "without word bigrams": {"ngram_range": (1, 1)},
    "without character n-grams": {"char_ngram_range": None},
}


def split_corpus(corpus: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = corpus[corpus["split"] == "train"], corpus[corpus["split"] == "test"]
    if train.empty or test.empty:
        raise ClassifierError("the corpus needs rows in both the train and the test split")
    return train, test


REAL = "real"  # every row not written for the corpus: the rows the model is for


def is_real(frame: pd.DataFrame) -> pd.Series:
    """Rows of real feedback (any source but ``authored``)."""
    return frame["source"] != "authored"


def _groups(test: pd.DataFrame) -> dict[str, pd.Series]:
    groups = {}
    if is_real(test).any() and not is_real(test).all():
        groups[REAL] = is_real(test)
    for source in sorted(test["source"].unique()):
        groups[f"source={source}"] = test["source"] == source
    return groups


def coder_agreement(model, test: pd.DataFrame) -> dict | None:
    """Model-vs-coder next to coder-vs-coder agreement on the double-coded test rows.

    Coder-vs-coder agreement is the honest ceiling: a model cannot be expected to agree with one
    coder more than a second coder does. Returns None when no test row is double-coded.
    """
    if "double_coded" not in test:
        return None
    coded = test[test["double_coded"].map(lambda value: isinstance(value, dict))]
    if coded.empty:
        return None
    first = coded["double_coded"].map(lambda value: value["first"]).tolist()
    second = coded["double_coded"].map(lambda value: value["second"]).tolist()
    predicted = model.predict(coded["text"].tolist())
    themes = model.themes_
    return {
        "n_texts": len(coded),
        "coder_vs_coder": theme_metrics(first, second, themes),
        "model_vs_first_coder": theme_metrics(first, predicted, themes),
        "model_vs_second_coder": theme_metrics(second, predicted, themes),
        "model_vs_final_labels": theme_metrics(coded["labels"].tolist(), predicted, themes),
        "presence_kappa_coder_vs_coder": presence_kappas(first, second, themes),
        "presence_kappa_model_vs_final": presence_kappas(
            coded["labels"].tolist(), predicted, themes
        ),
    }


def evaluate_model(
    model,
    corpus: pd.DataFrame,
    baselines: bool = True,
    cv_folds: int = 5,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Test-split metrics (all rows, real rows, per source), coder agreement, baselines, CV.

    Cross-validation folds the train split's real rows and scores only them (authored rows are
    always training data), as model choices for real text are made.
    """
    train, test = split_corpus(corpus)
    report: dict = {"n_train": len(train), "n_test": len(test)}
    log("scoring the model on the test split")
    report["test"] = {"all": evaluate_on(model, test["text"], test["labels"])}
    for name, mask in _groups(test).items():
        report["test"][name] = evaluate_on(model, test[mask]["text"], test[mask]["labels"])
    agreement = coder_agreement(model, test)
    if agreement:
        report["coder_agreement"] = agreement
    if baselines:
        report["baselines"] = {}
        for name, baseline in (
            ("keyword lexicon from the codebook", KeywordBaseline(codebook=model.codebook)),
            ("TF-IDF + LinearSVC, raw text, no spaCy", TfidfSvcBaseline(codebook=model.codebook)),
        ):
            log(f"baseline: {name}")
            fitted = baseline.fit(train["text"].tolist(), train["labels"].tolist())
            report["baselines"][name] = {
                "all": evaluate_on(fitted, test["text"], test["labels"], with_scores=False),
                **{
                    group: evaluate_on(
                        fitted, test[mask]["text"], test[mask]["labels"], with_scores=False
                    )
                    for group, mask in _groups(test).items()
                },
            }
    if cv_folds:
        real = is_real(train)
        scored = "real rows" if real.any() and not real.all() else "all rows"
        log(f"{cv_folds}-fold cross-validation on the train split ({scored} scored)")
        report["cross_validation"] = cross_validate(
            ThemeClassifier(**model.get_params()),
            train["text"].tolist(),
            train["labels"].tolist(),
            folds=cv_folds,
            target_domain=real.tolist() if scored == "real rows" else None,
        )
    return report


def train_model(
    corpus_path: str | Path = DEFAULT_CORPUS_PATH,
    output_dir: str | Path = "models",
    codebook_path: str | None = None,
    cv_folds: int = 5,
    ablation: bool = True,
    params: dict | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Fit on the train split, evaluate, write the model file and its card; return the card."""
    corpus_path = Path(corpus_path)
    codebook = load_codebook(codebook_path)
    corpus = read_corpus(corpus_path)
    train, _ = split_corpus(corpus)
    model_params = {"codebook": codebook_path, **(params or {})}

    log(f"fitting on {len(train):,} training texts")
    model = ThemeClassifier(**model_params).fit(
        train["text"].tolist(),
        train["labels"].tolist(),
        target_domain=is_real(train).tolist(),
    )
    report = evaluate_model(model, corpus, baselines=True, cv_folds=cv_folds, log=log)

    if ablation and cv_folds:
        report["ablation"] = {}
        for name, change in ABLATIONS.items():
            if not change and "cross_validation" in report:
                report["ablation"][name] = report["cross_validation"]
                continue
            log(f"ablation: {name}")
            real = is_real(train)
            cv = cross_validate(
                ThemeClassifier(**{**model_params, **change}),
                train["text"].tolist(),
                train["labels"].tolist(),
                folds=cv_folds,
                target_domain=real.tolist() if real.any() and not real.all() else None,
            )
            report["ablation"][name] = cv

    output_dir = Path(output_dir)
    model_path = save_model(model, output_dir / MODEL_FILE)
    card = {
        "model_file": MODEL_FILE,
        "trained_on": dt.date.today().isoformat(),
        "training_data": {
            "path": corpus_path.name,
            "sha256": corpus_hash(corpus_path),
            "n_train": report["n_train"],
            "n_test": report["n_test"],
        },
        "codebook": {
            "name": codebook.name,
            "version": codebook.version,
            "sha256": hashlib.sha256(Path(codebook.path).read_bytes()).hexdigest(),
            "themes": list(codebook.theme_ids),
        },
        "library_versions": library_versions(),
        "parameters": {k: v for k, v in model.get_params().items()},
        "thresholds": {theme: round(value, 4) for theme, value in model.thresholds_.items()},
        "metrics": report,
    }
    write_text_atomically(output_dir / CARD_JSON, json.dumps(card, indent=2, default=list) + "\n")
    write_text_atomically(output_dir / CARD_MARKDOWN, render_card(card))
    log(f"wrote {model_path}, {output_dir / CARD_JSON}, {output_dir / CARD_MARKDOWN}")
    return card


# ------------------------------------------------------------------------------ rendering
def _f(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"


def render_metrics(report: dict) -> str:
    """Markdown tables for a report from :func:`evaluate_model`."""
    test = report["test"]
    groups = list(test)
    lines = [
        f"Test split: {report['n_test']:,} texts never used for training or tuning "
        f"(train split: {report['n_train']:,}).",
        "",
        f"Per theme, on the test split's {'real' if REAL in test else ''} rows:".replace("  ", " "),
        "",
        "| theme | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for theme, m in test[REAL if REAL in test else "all"]["per_theme"].items():
        lines.append(
            f"| {theme} | {_f(m['precision'])} | {_f(m['recall'])} | {_f(m['f1'])} "
            f"| {m['support']} |"
        )
    lines += [
        "",
        "| rows | texts | macro F1 | micro F1 | polarity accuracy | no-theme untagged |",
        "|---|---|---|---|---|---|",
    ]
    for group in groups:
        m = test[group]
        lines.append(
            f"| {group} | {m['n_texts']} | {_f(m['macro_f1'])} | {_f(m['micro_f1'])} | "
            f"{_f(m['polarity_accuracy'])} | {_f(m['untagged_share_of_no_theme'])} |"
        )
    if "coder_agreement" in report:
        agreement = report["coder_agreement"]
        rows = [
            ("coder 1 vs coder 2 (the ceiling)", "coder_vs_coder"),
            ("this model vs coder 1", "model_vs_first_coder"),
            ("this model vs coder 2", "model_vs_second_coder"),
            ("this model vs final labels", "model_vs_final_labels"),
        ]
        lines += [
            "",
            f"Agreement on the {agreement['n_texts']} double-coded real test rows (two coders, "
            "blind to each other; final labels adjudicated):",
            "",
            "| comparison | micro F1 | macro F1 | polarity agreement | no-theme untagged |",
            "|---|---|---|---|---|",
        ]
        for name, key in rows:
            m = agreement[key]
            lines.append(
                f"| {name} | {_f(m['micro_f1'])} | {_f(m['macro_f1'])} | "
                f"{_f(m['polarity_accuracy'])} | {_f(m['untagged_share_of_no_theme'])} |"
            )
        ceiling = agreement["coder_vs_coder"]["micro_f1"]
        model = agreement["model_vs_final_labels"]["micro_f1"]
        lines += [
            "",
            f"Mean presence kappa: coder vs coder "
            f"{agreement['presence_kappa_coder_vs_coder']['mean']:.3f}, model vs final labels "
            f"{agreement['presence_kappa_model_vs_final']['mean']:.3f}. The model reaches "
            f"{model / ceiling:.0%} of the coder-vs-coder micro F1.",
        ]
    if "baselines" in report:
        real_group = REAL if REAL in test else "source=nhs-fft"
        lines += [
            "",
            "| model (same train/test split) | macro F1 | micro F1 | "
            "micro F1, real rows | polarity accuracy |",
            "|---|---|---|---|---|",
        ]
        rows = [("this model", test)] + list(report["baselines"].items())
        for name, m in rows:
            real = m.get(real_group, {}).get("micro_f1", float("nan"))
            lines.append(
                f"| {name} | {_f(m['all']['macro_f1'])} | {_f(m['all']['micro_f1'])} | "
                f"{_f(real)} | {_f(m['all']['polarity_accuracy'])} |"
            )
    if "cross_validation" in report:
        cv = report["cross_validation"]
        scored = (
            "the train split's real rows (authored rows always in training)"
            if cv.get("scored_rows") == "target domain"
            else "the train split"
        )
        lines += [
            "",
            f"{cv['folds']}-fold cross-validation on {scored}: macro F1 "
            f"{cv['macro_f1']['mean']:.3f} ± {cv['macro_f1']['std']:.3f}, micro F1 "
            f"{cv['micro_f1']['mean']:.3f} ± {cv['micro_f1']['std']:.3f}, polarity "
            f"accuracy {cv['polarity_accuracy']['mean']:.3f} ± "
            f"{cv['polarity_accuracy']['std']:.3f}.",
        ]
    if "ablation" in report:
        # Polarity accuracy too: negation marking is there to tell a strength from a concern
        # ("never felt judged"), which presence F1 alone does not show.
        lines += [
            "",
            "| preprocessing (CV, as above) | macro F1 | polarity accuracy |",
            "|---|---|---|",
        ]
        for name, cv in report["ablation"].items():
            f1, polarity = cv["macro_f1"], cv["polarity_accuracy"]
            lines.append(
                f"| {name} | {f1['mean']:.3f} ± {f1['std']:.3f} | "
                f"{polarity['mean']:.3f} ± {polarity['std']:.3f} |"
            )
    brier = test["all"].get("brier")
    if brier:
        lines += [
            "",
            "Calibration (Brier score of the presence probability, test split; lower "
            "is better): " + ", ".join(f"{t} {v:.3f}" for t, v in brier.items()) + ".",
        ]
    return "\n".join(lines) + "\n"


def render_card(card: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in card["library_versions"].items())
    thresholds = ", ".join(f"{k} {v:.3f}" for k, v in card["thresholds"].items())
    return (
        "# Model card: therapeutic-relationship theme classifier\n\n"
        "Generated by `classifier train`; do not edit by hand.\n\n"
        f"- Model file: `{card['model_file']}`; trained on {card['trained_on']}\n"
        f"- Training data: `{card['training_data']['path']}`, sha256 "
        f"`{card['training_data']['sha256'][:16]}…`\n"
        f"- Codebook: {card['codebook']['name']} v{card['codebook']['version']}; themes: "
        f"{', '.join(card['codebook']['themes'])}\n"
        f"- Libraries: {versions}\n"
        f"- Decision thresholds (tuned by CV on the train split): {thresholds}\n\n"
        "## Evaluation\n\n" + render_metrics(card["metrics"]) + "\n" + LIMITATIONS
    )


# The same for every model trained with this code; the numbers above say how much each matters.
LIMITATIONS = """## Intended use and limitations

- For reading feedback in aggregate (a service's strengths and concerns over a quarter, trends
  across sites) and as a research instrument whose error rates are reported above. Not for
  judging an individual clinician or client from a handful of comments.
- Compare the `source=nhs-fft` row with the `source=authored` row: most training and test texts
  were written for this corpus, and the model does markedly worse on real survey comments, which
  are shorter, vaguer and mostly about no theme at all. Check a sample of your own export before
  relying on the counts.
- A score is a probability calibrated by cross-validation on the train split, where about one
  text in five carries no theme (Brier scores above are on the test split). Real survey exports
  carry far more texts without a theme: there, read a score as a ranking, not a frequency.
- English only. The model sees word and character n-grams with negation marked, not meaning:
  sarcasm, double negation and texts that mix several themes are where to expect errors. The
  evidence sentence shows what it relied on.
"""


def update_readme_block(readme: Path, name: str, content: str) -> bool:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a README."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
    if not pattern.search(text):
        return False
    write_text_atomically(readme, pattern.sub(lambda m: m.group(1) + content + m.group(2), text))
    return True
