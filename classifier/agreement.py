"""Agreement between label sets: the model against a coder, and a second coder beside it.

Behind ``classifier agree``. Per theme: Cohen's kappa of presence and of the three-way code
(absent/positive/negative), precision, recall and F1 of presence (the first label set is the
reference), polarity agreement where both tagged the theme, and the confusion counts. Every number
comes from scikit-learn (``cohen_kappa_score``, ``precision_recall_fscore_support`` through
:func:`classifier.evaluation.theme_metrics`, ``confusion_matrix``), so it equals what a researcher
computes from the same columns.

With a second coder's labels on the same rows, coder-vs-coder agreement is reported beside
model-vs-coder: a model cannot be expected to agree with a coder more than a second coder does.

Examples
--------
>>> from classifier.agreement import agreement_report, render_agreement   # doctest: +SKIP
>>> report = agreement_report(coder, model.predict(texts), model.themes_, model.polarities_)
>>> print(render_agreement(report))                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from classifier.evaluation import theme_metrics

Labels = Mapping[str, str]
ABSENT = "absent"
# The comparisons of a report, in the order they are shown: (key, reference, other).
COMPARISONS = (
    ("model_vs_coder", "coder", "model"),
    ("coder2_vs_coder", "coder", "coder 2"),
    ("model_vs_coder2", "coder 2", "model"),
)


def _kappa(a: Sequence[object], b: Sequence[object]) -> float | None:
    """scikit-learn's Cohen's kappa; None when it is undefined (one category on both sides)."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:
        return None
    value = float(cohen_kappa_score(a, b))
    return None if math.isnan(value) else value


def compare_labels(
    reference: Sequence[Labels],
    other: Sequence[Labels],
    themes: Sequence[str],
    polarities: Sequence[str],
) -> dict:
    """Agreement of ``other`` with ``reference`` (e.g. model with coder), per theme and overall.

    Parameters
    ----------
    reference : sequence of dict
        ``{theme: polarity}`` per text: the labels treated as truth for precision and recall.
    other : sequence of dict
        The labels compared with them, same texts in the same order.
    themes : sequence of str
        Theme ids, in codebook order.
    polarities : sequence of str
        The (positive, negative) polarity names.

    Returns
    -------
    dict
        ``per_theme[theme]`` with ``kappa`` (presence), ``kappa_polarity`` (absent/positive/
        negative), ``precision``, ``recall``, ``f1``, ``support``, ``tagged_reference``,
        ``tagged_other``, ``polarity_agreement`` (share of rows both tagged where the polarity is
        the same; None if none), ``polarity_n``, ``confusion`` (``labels`` and a ``matrix`` of
        counts, rows the reference, columns the other) and ``presence`` counts (``tp``, ``fp``,
        ``fn``, ``tn``); and overall ``n_texts``, ``micro_f1``, ``macro_f1``, ``mean_kappa``
        (over themes with a defined kappa), ``polarity_agreement``, ``identical_share`` (texts
        with identical label sets).
    """
    from sklearn.metrics import confusion_matrix

    reference, other = [dict(r) for r in reference], [dict(o) for o in other]
    if len(reference) != len(other):
        raise ValueError(f"{len(reference)} reference label rows but {len(other)} others")
    categories = [ABSENT, *polarities]
    metrics = theme_metrics(reference, other, list(themes))
    per_theme = {}
    agree_total = both_total = 0
    for theme in themes:
        a = [theme in labels for labels in reference]
        b = [theme in labels for labels in other]
        a3 = [labels.get(theme, ABSENT) for labels in reference]
        b3 = [labels.get(theme, ABSENT) for labels in other]
        both = [i for i in range(len(a)) if a[i] and b[i]]
        agree = sum(a3[i] == b3[i] for i in both)
        agree_total, both_total = agree_total + agree, both_total + len(both)
        matrix = confusion_matrix(a3, b3, labels=categories) if a3 else np.zeros((3, 3), int)
        presence = confusion_matrix(a, b, labels=[False, True]) if a else np.zeros((2, 2), int)
        per_theme[theme] = {
            **metrics["per_theme"][theme],
            "kappa": _kappa(a, b),
            "kappa_polarity": _kappa(a3, b3),
            "tagged_reference": int(sum(a)),
            "tagged_other": int(sum(b)),
            "polarity_agreement": agree / len(both) if both else None,
            "polarity_n": len(both),
            "confusion": {"labels": categories, "matrix": matrix.astype(int).tolist()},
            "presence": {
                "tp": int(presence[1, 1]),
                "fp": int(presence[0, 1]),
                "fn": int(presence[1, 0]),
                "tn": int(presence[0, 0]),
            },
        }
    kappas = [m["kappa"] for m in per_theme.values() if m["kappa"] is not None]
    return {
        "n_texts": len(reference),
        "per_theme": per_theme,
        "micro_f1": metrics["micro_f1"],
        "macro_f1": metrics["macro_f1"],
        "mean_kappa": float(np.mean(kappas)) if kappas else None,
        "polarity_agreement": agree_total / both_total if both_total else None,
        "polarity_n": both_total,
        "identical_share": (
            float(np.mean([r == o for r, o in zip(reference, other, strict=True)]))
            if reference
            else None
        ),
    }


def agreement_report(
    coder: Sequence[Labels],
    model: Sequence[Labels],
    themes: Sequence[str],
    polarities: Sequence[str],
    second: Sequence[Labels] | None = None,
    info: Mapping[str, object] | None = None,
) -> dict:
    """Model vs coder; with ``second``, also coder 2 vs coder and model vs coder 2.

    Parameters
    ----------
    coder : sequence of dict
        The coder's labels (the reference).
    model : sequence of dict
        The model's labels for the same texts.
    themes, polarities : sequence of str
    second : sequence of dict, optional
        A second coder's labels for the same texts.
    info : mapping, optional
        Where the rows came from (file, columns, skipped rows...), kept in the report as is.

    Returns
    -------
    dict
        ``n_texts``, ``themes``, ``info`` and one :func:`compare_labels` result per comparison
        (``model_vs_coder``, and with ``second`` ``coder2_vs_coder`` and ``model_vs_coder2``).
    """
    report: dict = {
        "n_texts": len(coder),
        "themes": list(themes),
        "info": dict(info or {}),
        "model_vs_coder": compare_labels(coder, model, themes, polarities),
    }
    if second is not None:
        report["coder2_vs_coder"] = compare_labels(coder, second, themes, polarities)
        report["model_vs_coder2"] = compare_labels(second, model, themes, polarities)
    return report


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def render_agreement(report: Mapping) -> str:
    """The report as plain-text tables (what ``classifier agree`` prints)."""
    info = report.get("info", {})
    model = report["model_vs_coder"]
    lines = []
    header = f"Agreement on {report['n_texts']:,} coded rows"
    if info.get("file"):
        header += f" of {info['file']}"
    lines.append(header + (f" (model: {info['model']})" if info.get("model") else ""))
    for note in info.get("notes", []):
        lines.append(f"  note: {note}")
    lines += [
        "",
        "Model vs coder (the coder's labels as truth):",
        f"  {'theme':<15}{'coder':>6}{'model':>6}{'kappa':>7}{'kappa3':>7}{'prec':>6}"
        f"{'recall':>7}{'F1':>6}   polarity agreement   TP   FP   FN    TN",
    ]
    for theme, m in model["per_theme"].items():
        p = m["presence"]
        polarity = f"{_f(m['polarity_agreement'])} ({m['polarity_n']})" if m["polarity_n"] else "–"
        # scikit-learn's zero_division=0 in the numbers; shown as undefined when nothing to divide
        precision = m["precision"] if m["tagged_other"] else None
        recall = m["recall"] if m["tagged_reference"] else None
        f1 = m["f1"] if m["tagged_other"] or m["tagged_reference"] else None
        lines.append(
            f"  {theme:<15}{m['tagged_reference']:>6}{m['tagged_other']:>6}"
            f"{_f(m['kappa']):>7}{_f(m['kappa_polarity']):>7}{_f(precision):>6}"
            f"{_f(recall):>7}{_f(f1):>6}   {polarity:<19}"
            f"{p['tp']:>5}{p['fp']:>5}{p['fn']:>5}{p['tn']:>6}"
        )
    lines.append(
        f"  overall: micro F1 {_f(model['micro_f1'])}, macro F1 {_f(model['macro_f1'])}, "
        f"mean kappa {_f(model['mean_kappa'])}, polarity agreement "
        f"{_f(model['polarity_agreement'])} ({model['polarity_n']} both tagged), identical "
        f"label sets {_f(model['identical_share'])}"
    )
    if "coder2_vs_coder" in report:
        ceiling = report["coder2_vs_coder"]
        lines += [
            "",
            "Beside a second coder on the same rows (coder vs coder is the ceiling):",
            f"  {'theme':<15}{'kappa coder 2':>14}{'kappa model':>12}{'F1 coder 2':>12}"
            f"{'F1 model':>10}",
        ]
        for theme in report["themes"]:
            c, m = ceiling["per_theme"][theme], model["per_theme"][theme]
            lines.append(
                f"  {theme:<15}{_f(c['kappa']):>14}{_f(m['kappa']):>12}"
                f"{_f(c['f1']):>12}{_f(m['f1']):>10}"
            )
        lines += [
            f"  {'comparison':<22}{'micro F1':>9}{'macro F1':>9}{'mean kappa':>11}{'polarity':>9}",
        ]
        for key, reference, other in COMPARISONS:
            m = report[key]
            lines.append(
                f"  {other + ' vs ' + reference:<22}{_f(m['micro_f1']):>9}"
                f"{_f(m['macro_f1']):>9}{_f(m['mean_kappa']):>11}"
                f"{_f(m['polarity_agreement']):>9}"
            )
        if ceiling["micro_f1"]:
            lines.append(
                f"  The model reaches {model['micro_f1'] / ceiling['micro_f1']:.0%} of the "
                "coder-vs-coder micro F1."
            )
    lines += [
        "",
        "kappa: Cohen's kappa of presence; kappa3: of absent/strength/concern; – where undefined "
        "(e.g. neither tagged the theme). Polarity agreement: rows both tagged, same polarity. "
        "Micro and macro F1 count an undefined F1 as 0 (scikit-learn's zero_division=0).",
    ]
    return "\n".join(lines)


def _align(first, second) -> tuple[list[int], list[int], str]:
    """Matching rows of two coded tables: by id when both have ids, else by text."""
    from classifier.data import normalise_for_duplicates

    if first.ids is not None and second.ids is not None and len(set(second.ids)) == len(second):
        keys_first, keys_second, by = first.ids, second.ids, "id"
    else:
        keys_first = [normalise_for_duplicates(str(text)) for text in first.texts]
        keys_second = [normalise_for_duplicates(str(text)) for text in second.texts]
        by = "text"
    position: dict[str, int] = {}
    for index, key in enumerate(keys_second):
        position.setdefault(key, index)
    pairs = [(i, position[key]) for i, key in enumerate(keys_first) if key in position]
    return [i for i, _ in pairs], [j for _, j in pairs], by


def agree_with_coder(
    coded_path: str,
    model,
    second_coder: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    fmt: str | None = None,
    encoding: str = "utf-8",
    model_name: str | None = None,
) -> dict:
    """Read a coded table, run the model on its rows and report agreement (``classifier agree``).

    Parameters
    ----------
    coded_path : str
        The coder's table (see :mod:`classifier.labels`); its coding columns are named by the
        model's themes.
    model : CompiledModel or ThemeClassifier
    second_coder : str, optional
        A second coder's labels: a file (rows matched by id when both files have an id column,
        else by text), or columns of the same table (``{theme}_2``, ``theme=column,...`` or column
        names in codebook order; see :func:`classifier.labels.second_coder_columns`).
    text_column, id_column, fmt, encoding
        As for :func:`classifier.labels.read_coded`.
    model_name : str, optional
        How to name the model in the report.

    Returns
    -------
    dict
        :func:`agreement_report` of the rows, with ``info`` on where they came from.
    """
    from pathlib import Path

    from classifier._errors import ClassifierError
    from classifier.labels import (
        LabelScheme,
        labels_from_frame,
        parse_coding_columns,
        read_coded,
        read_table,
        second_coder_columns,
    )

    scheme = LabelScheme.from_model(model)
    table = read_coded(coded_path, scheme, text_column, id_column, fmt, encoding)
    info: dict = {
        "file": str(coded_path),
        "model": model_name,
        "rows_read": table.n_read,
        "rows_used": len(table),
        "skipped": table.skipped,
        "notes": list(table.notes),
    }
    if table.skipped:
        skipped = ", ".join(f"{count} {reason}" for reason, count in table.skipped.items())
        info["notes"].append(f"rows left out: {skipped}")
    coder, texts = table.labels, table.texts
    second = None
    if second_coder is not None:
        if Path(second_coder).is_file():
            frame = read_table(second_coder, None, encoding)
            other = labels_from_frame(
                frame,
                scheme,
                second_coder,
                text_column if text_column in frame.columns else None,
                id_column if id_column in frame.columns else None,
            )
            mine, theirs, by = _align(table, other)
            if not mine:
                raise ClassifierError(
                    f"{second_coder}: no row matches a row of {coded_path} (matched by {by})"
                )
            if len(mine) < len(table):
                info["notes"].append(
                    f"{len(table) - len(mine)} coded rows have no match in {second_coder} "
                    f"(matched by {by}); agreement is on the {len(mine)} that do"
                )
            coder, texts = [coder[i] for i in mine], [texts[i] for i in mine]
            second = [other.labels[j] for j in theirs]
            info["second_coder"] = {"file": second_coder, "matched_by": by, "rows": len(mine)}
        else:
            columns = second_coder_columns(second_coder, table.frame.columns, scheme)
            second = parse_coding_columns(table.frame, columns, scheme, coded_path, table.rows)
            info["second_coder"] = {"columns": columns}
    if not coder:
        raise ClassifierError(f"{coded_path}: no coded rows with text")
    info["notes"] += _sampling_notes(table.frame)
    predicted = model.predict(list(texts))
    return agreement_report(coder, predicted, scheme.themes, scheme.polarities, second, info)


def _sampling_notes(frame) -> list[str]:
    """Warnings about how rows chosen by ``classifier review`` bias agreement."""
    from classifier.review import RANDOM_REASON, REASON_COLUMN, SUGGESTED_PREFIX

    notes = []
    if REASON_COLUMN in frame.columns:
        reasons = frame[REASON_COLUMN].astype(str)
        if (reasons != RANDOM_REASON).any():
            notes.append(
                "these rows were chosen by `classifier review` because the model was unsure "
                "about them: expect lower agreement than on a random sample (review --random)"
            )
    suggested = [c for c in frame.columns if str(c).startswith(SUGGESTED_PREFIX)]
    if suggested and (frame[suggested].astype(str).apply(lambda c: c.str.strip()) != "").any(
        axis=None
    ):
        notes.append(
            "the coder could see the model's suggestions, which pulls coder and model together: "
            "for an unbiased measure code a sheet written with review --blind"
        )
    return notes
