"""Rendering reports as text: model cards, metrics tables and README blocks.

Kept apart from training so that rendering a card needs no scikit-learn. Tables are pandas'
``DataFrame.to_markdown``; values are formatted here first, so they show as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from classifier._files import write_text_atomically

REAL = "real"  # the group of real-feedback rows (every source but "authored")


def _f(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table of already formatted values.

    Examples
    --------
    >>> print(markdown_table(["theme", "F1"], [["trust", "0.812"]]))
    | theme   |    F1 |
    |:--------|------:|
    | trust   | 0.812 |
    """
    import pandas as pd

    frame = pd.DataFrame([[str(value) for value in row] for row in rows], columns=list(header))
    # disable_numparse: "0.810" stays "0.810" (tabulate would re-format it as 0.81); the
    # first column names the row, the others hold numbers and are right-aligned.
    align = ("left",) + ("right",) * (len(frame.columns) - 1)
    return frame.to_markdown(index=False, disable_numparse=True, colalign=align)


def render_metrics(report: dict) -> str:
    """Markdown tables for a report from :func:`~classifier.evaluation.evaluate_model`."""
    test = report["test"]
    # Real rows first: they are what the model is for; authored rows come last.
    groups = sorted(test, key=lambda group: (group != REAL, group == "source=authored"))
    per_theme = test[REAL if REAL in test else "all"]["per_theme"]
    lines = [
        f"Test split: {report['n_test']:,} texts never used for training or tuning "
        f"(train split: {report['n_train']:,}).",
        "",
        "Per theme, on the test split's real rows:"
        if REAL in test
        else "Per theme, on the whole test split:",
        "",
        markdown_table(
            ["theme", "precision", "recall", "F1", "support"],
            [
                [theme, _f(m["precision"]), _f(m["recall"]), _f(m["f1"]), m["support"]]
                for theme, m in per_theme.items()
            ],
        ),
        "",
        markdown_table(
            ["rows", "texts", "macro F1", "micro F1", "polarity accuracy", "no-theme untagged"],
            [
                [
                    group,
                    test[group]["n_texts"],
                    _f(test[group]["macro_f1"]),
                    _f(test[group]["micro_f1"]),
                    _f(test[group]["polarity_accuracy"]),
                    _f(test[group]["untagged_share_of_no_theme"]),
                ]
                for group in groups
            ],
        ),
    ]
    if "coder_agreement" in report:
        agreement = report["coder_agreement"]
        comparisons = [
            ("coder 1 vs coder 2 (the ceiling)", "coder_vs_coder"),
            ("this model vs coder 1", "model_vs_first_coder"),
            ("this model vs coder 2", "model_vs_second_coder"),
            ("this model vs final labels", "model_vs_final_labels"),
        ]
        ceiling = agreement["coder_vs_coder"]["micro_f1"]
        model = agreement["model_vs_final_labels"]["micro_f1"]
        lines += [
            "",
            f"Agreement on the {agreement['n_texts']} double-coded real test rows (two coders, "
            "blind to each other; final labels adjudicated):",
            "",
            markdown_table(
                ["comparison", "micro F1", "macro F1", "polarity agreement", "no-theme untagged"],
                [
                    [
                        name,
                        _f(agreement[key]["micro_f1"]),
                        _f(agreement[key]["macro_f1"]),
                        _f(agreement[key]["polarity_accuracy"]),
                        _f(agreement[key]["untagged_share_of_no_theme"]),
                    ]
                    for name, key in comparisons
                ],
            ),
            "",
            f"Mean presence kappa: coder vs coder "
            f"{agreement['presence_kappa_coder_vs_coder']['mean']:.3f}, model vs final labels "
            f"{agreement['presence_kappa_model_vs_final']['mean']:.3f}. The model reaches "
            f"{model / ceiling:.0%} of the coder-vs-coder micro F1.",
        ]
    if "baselines" in report:
        real_group = REAL if REAL in test else "source=nhs-fft"
        nan = float("nan")
        lines += [
            "",
            markdown_table(
                [
                    "model (same train/test split)",
                    "micro F1, real rows",
                    "macro F1, real rows",
                    "micro F1, all rows",
                    "macro F1, all rows",
                    "polarity accuracy, all rows",
                ],
                [
                    [
                        name,
                        _f(m.get(real_group, {}).get("micro_f1", nan)),
                        _f(m.get(real_group, {}).get("macro_f1", nan)),
                        _f(m["all"]["micro_f1"]),
                        _f(m["all"]["macro_f1"]),
                        _f(m["all"]["polarity_accuracy"]),
                    ]
                    for name, m in [("this model", test), *report["baselines"].items()]
                ],
            ),
        ]
    if "cross_validation" in report:
        cv = report["cross_validation"]
        scored = (
            f"the train split, scored on its {cv.get('n_scored', 0):,} real rows drawn at random "
            "(authored rows and rows chosen as likely to carry a theme always in training)"
            if cv.get("scored_rows") == "a subset"
            else "the train split"
        )
        lines += [
            "",
            f"{cv['folds']}-fold cross-validation on {scored}: macro F1 "
            f"{_pm(cv['macro_f1'])}, micro F1 {_pm(cv['micro_f1'])}, polarity accuracy "
            f"{_pm(cv['polarity_accuracy'])}.",
        ]
    if "ablation" in report:
        # Polarity accuracy too: negation marking is there to tell a strength from a concern
        # ("never felt judged"), which presence F1 alone does not show.
        lines += [
            "",
            markdown_table(
                [
                    "pipeline step switched off (CV, as above)",
                    "macro F1",
                    "micro F1",
                    "polarity accuracy",
                ],
                [
                    [
                        name,
                        _pm(cv["macro_f1"]),
                        _pm(cv["micro_f1"]),
                        _pm(cv["polarity_accuracy"]),
                    ]
                    for name, cv in report["ablation"].items()
                ],
            ),
        ]
    brier_group = REAL if REAL in test else "all"
    brier = test[brier_group].get("brier")
    if brier:
        where = "the test split's real rows" if brier_group == REAL else "the test split"
        lines += [
            "",
            f"Calibration (Brier score of the presence probability on {where}; lower "
            "is better): " + ", ".join(f"{t} {v:.3f}" for t, v in brier.items()) + ".",
        ]
    return "\n".join(lines) + "\n"


def _pm(summary: dict) -> str:
    """A cross-validated value as "mean ± std"."""
    return f"{summary['mean']:.3f} ± {summary['std']:.3f}"


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
        + render_added_data(card)
        + "## Evaluation\n\n"
        + render_metrics(card["metrics"])
        + "\n"
        + LIMITATIONS
    )


def render_added_data(card: dict) -> str:
    """The Markdown section of a card that says which data went in (empty without ``added``)."""
    data = card.get("training_data", {})
    if "added" not in data:
        return ""
    base = data.get("base")
    lines = ["## Training data", ""]
    if base:
        lines.append(
            f"- Base corpus: `{base['path']}` (sha256 `{base['sha256'][:16]}…`), "
            f"{base['rows']:,} records"
            + (
                f", {base['replaced_by_coded']} replaced by the same text coded"
                if base["replaced_by_coded"]
                else ""
            )
        )
    else:
        lines.append("- Base corpus: none (coded rows only)")
    header = [
        "added file", "sha256", "rows read", "rows added", "train", "test", "with a theme",
        "chosen by review", "left out",
    ]  # fmt: skip
    rows = [
        [
            f"`{added['file']}`",
            f"`{added['sha256'][:12]}…`",
            added["rows_read"],
            added["rows_added"],
            added["train"],
            added["test"],
            added["with_a_theme"],
            added.get("chosen_by_review", 0),
            ", ".join(f"{n} {reason}" for reason, n in added["skipped"].items()) or "–",
        ]
        for added in data["added"]
    ]
    lines += ["", markdown_table(header, rows)]
    lines += [
        "",
        "Each added file's test rows (split: "
        + "; ".join(f"{a['file']}: {a['split_from']}" for a in data["added"])
        + ") were held out from training and tuning; they are the `source=coded:<file>` rows "
        "below. Rows chosen by `classifier review` for being uncertain are trained on but not "
        "used to calibrate the scores.",
        "",
    ]
    return "\n".join(lines) + "\n"


# The same for every model trained with this code; the numbers above say how much each matters.
LIMITATIONS = """## Intended use and limitations

- For reading feedback in aggregate (a service's strengths and concerns over a quarter, trends
  across sites) and as a research instrument whose error rates are reported above. Not for
  judging an individual clinician or client from a handful of comments.
- Judge it by the `real` rows: real survey comments drawn at random, as an export looks (most
  carry no theme). The authored rows were written for the corpus; the model treats every text
  it tags as real, so its numbers on authored rows are lower than a model tuned for them.
- The real rows are NHS survey comments (mental-health, community, ambulance, 111, transport,
  children's centres), not comments on individual psychotherapy. Genuineness, collaboration and
  boundaries are rare there (a few dozen real test rows each), and the model finds them poorly:
  read their counts as indicative only. Empathy and progress are measured on hundreds of rows.
- A score is a probability calibrated on real rows drawn at random (Brier scores above). The
  decision threshold of each theme is the F1-optimal cut of out-of-fold scores, so a tag means
  "more likely than not worth a look", not certainty.
- The coders were language-model helpers working from the codebook. Their agreement with each
  other is the ceiling of this labelling process, not of human judgement (two people agree less
  on such text).
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
