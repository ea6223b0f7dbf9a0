"""Choosing the rows a coder should code next: the ones that would teach the model most.

Behind ``classifier review``. Every row of an export is scored once; a row's priority is its
*uncertainty* about its most uncertain theme, where uncertainty is how close the calibrated
presence score lies to the theme's decision threshold (1 at the threshold, 0 at a score of 0 or
1), weighted up for *themes the model rarely predicts* in this export (their examples are what the
model lacks), and multiplied by how *typical* the text is of the export (its mean TF-IDF cosine
similarity to a sample of it), so that odd one-off texts do not crowd the sheet. Rows are then
taken greedily in order of priority, each one's priority lowered by its similarity to the rows
already taken (so the sheet covers *diverse texts*); near-duplicates of a taken row (cosine >=
0.8) and exact duplicates are never taken twice. Half the rows (``explore``) are drawn at random
from the rest and interleaved. Ties and draws follow a seed: the same export, model and seed give
the same sheet.

The settings were chosen on the simulated loop (``benchmarks/review_loop.py``, sample seeds 0-5)
and then measured on fresh samples (seeds 10-14): uncertain rows alone taught the model less than
half uncertain, half random, since the coded rows also tune the calibration and thresholds for
real text and must not all be borderline; weighting by typicality helped the rare themes; a
stronger diversity penalty did not help.

The sheet has the input columns of the chosen rows, ``review_rank`` and ``review_reason``, the
model's suggestions in ``suggested_<theme>`` columns (left out with ``blind=True``), an empty
coding column per theme and an empty ``coded`` column: filled in, it reads straight back with
:func:`classifier.labels.read_coded` (``classifier agree``, ``classifier train --add``).

``strategy="random"`` draws a simple random sample instead: what measuring agreement needs, as
uncertain rows are harder than typical ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from classifier._errors import ClassifierError
from classifier.io import ChunkWriter, describe_columns, detect_format

RANK_COLUMN = "review_rank"
REASON_COLUMN = "review_reason"
SUGGESTED_PREFIX = "suggested_"
RANDOM_REASON = "random sample"
STRATEGIES = ("informative", "random")
NEAR_DUPLICATE_COSINE = 0.8
# Weight of the similarity penalty (on priorities scaled to [0, 1]), share of random rows and the
# power of the typicality weight: see the module docstring for how they were chosen.
DIVERSITY = 0.2
EXPLORE = 0.5
DENSITY = 1.0
RARE_BOOST_CAP = 3.0


@dataclass
class ReviewSelection:
    """Rows chosen for coding, in the order to code them.

    Attributes
    ----------
    index : list of int
        Positions of the chosen rows in the input.
    priority : list of float
        Each chosen row's priority (weighted uncertainty; 0 for a random sample).
    reasons : list of str
        Why each row was chosen (the theme closest to its threshold, or ``random sample``).
    themes : tuple of str
    presence : numpy.ndarray, shape (n_chosen, n_themes)
        The model's calibrated presence scores of the chosen rows.
    n_rows, n_eligible : int
        Input rows, and rows with text that are neither duplicates nor excluded.
    weights : dict of str to float
        The rarity weight of each theme.
    strategy : str
    """

    index: list[int]
    priority: list[float]
    reasons: list[str]
    themes: tuple[str, ...]
    presence: np.ndarray
    n_rows: int = 0
    n_eligible: int = 0
    weights: dict[str, float] = field(default_factory=dict)
    strategy: str = "informative"

    def __len__(self) -> int:
        return len(self.index)


def presence_scores(model, texts: Sequence[object], batch_size: int = 5000) -> np.ndarray:
    """Calibrated presence scores, shape (n_texts, n_themes); NaN for rows without text."""
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = model.score_batch(list(texts[start : start + batch_size]))
        parts.append(batch.per_text(batch.presence, np.nan))
    if not parts:
        return np.zeros((0, len(model.themes_)))
    return np.vstack(parts)


def uncertainty(presence: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """1 at a theme's threshold, falling linearly to 0 at a score of 0 (below) or 1 (above).

    Examples
    --------
    >>> uncertainty(np.array([[0.2, 0.4, 0.7, 1.0]]), np.array([0.4, 0.4, 0.4, 0.4])).round(2)
    array([[0.5, 1. , 0.5, 0. ]])
    """
    thresholds = np.asarray(thresholds, dtype=float)[None, :]
    span = np.where(presence >= thresholds, 1.0 - thresholds, thresholds)
    distance = np.abs(presence - thresholds) / np.maximum(span, 1e-9)
    return 1.0 - np.clip(distance, 0.0, 1.0)


def rarity_weights(detected_share: np.ndarray, n_rows: int, cap: float = RARE_BOOST_CAP):
    """Weight per theme: sqrt(share of the most predicted theme / this theme's share), 1..cap.

    A theme the model never predicts counts as predicted once in ``n_rows``.
    """
    share = np.maximum(np.asarray(detected_share, dtype=float), 1.0 / max(n_rows, 1))
    return np.clip(np.sqrt(share.max() / share), 1.0, cap)


def _normalised(texts: Iterable[object]) -> list[str]:
    from classifier.data import normalise_for_duplicates

    return [normalise_for_duplicates(text) if isinstance(text, str) else "" for text in texts]


def select_for_review(
    texts: Sequence[object],
    model,
    n: int = 200,
    seed: int = 0,
    strategy: str = "informative",
    exclude: Iterable[str] = (),
    presence: np.ndarray | None = None,
    diversity: float = DIVERSITY,
    near_duplicate: float = NEAR_DUPLICATE_COSINE,
    explore: float = EXPLORE,
    density: float = DENSITY,
) -> ReviewSelection:
    """Choose ``n`` rows of ``texts`` to code (see the module docstring).

    Parameters
    ----------
    texts : sequence of str
        The export's texts; rows without text are never chosen.
    model : CompiledModel or ThemeClassifier
        Supplies presence scores (``score_batch``), ``thresholds_`` and ``themes_``.
    n : int, default=200
    seed : int, default=0
        Seed of the tie-breaking shuffle (and of the random sample).
    strategy : {"informative", "random"}, default="informative"
    exclude : iterable of str
        Texts already coded (e.g. earlier sheets): never chosen again (compared after
        :func:`classifier.data.normalise_for_duplicates`).
    presence : numpy.ndarray, optional
        Precomputed :func:`presence_scores` of ``texts``.
    diversity : float, default=0.2
        How much the cosine similarity to a chosen row lowers a row's (0-1 scaled) priority.
    near_duplicate : float, default=0.8
        Rows at least this similar to a chosen row are not taken.
    explore : float, default=0.5
        Share of the rows drawn at random from the rest (interleaved with the informative ones),
        which keeps the coded rows partly representative of the export; 0 for uncertain rows
        only.
    density : float, default=1.0
        Weight typical texts over outliers: priorities are multiplied by each candidate's mean
        TF-IDF similarity to a sample of the export, to this power (0: off).

    Returns
    -------
    ReviewSelection
    """
    if strategy not in STRATEGIES:
        raise ClassifierError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if n < 1:
        raise ClassifierError("the number of rows to choose must be at least 1")
    if not 0.0 <= explore <= 1.0:
        raise ClassifierError(f"explore must be between 0 and 1, not {explore}")
    themes = tuple(model.themes_)
    thresholds = np.array([model.thresholds_[theme] for theme in themes], dtype=float)
    scores = presence_scores(model, texts) if presence is None else np.asarray(presence)
    normalised = _normalised(texts)
    excluded = set(_normalised(exclude))
    seen: set[str] = set()
    eligible = []
    for i, key in enumerate(normalised):
        if not key or np.isnan(scores[i]).any() or key in excluded or key in seen:
            continue
        seen.add(key)
        eligible.append(i)
    eligible_arr = np.array(eligible, dtype=int)
    rng = np.random.default_rng(seed)
    empty = ReviewSelection([], [], [], themes, np.zeros((0, len(themes))), len(texts), 0)
    if not len(eligible_arr):
        return empty

    if strategy == "random":
        chosen = rng.permutation(eligible_arr)[:n]
        return ReviewSelection(
            index=chosen.tolist(),
            priority=[0.0] * len(chosen),
            reasons=[RANDOM_REASON] * len(chosen),
            themes=themes,
            presence=scores[chosen],
            n_rows=len(texts),
            n_eligible=len(eligible_arr),
            strategy=strategy,
        )

    pool = scores[eligible_arr]
    detected_share = (pool >= thresholds).mean(axis=0)
    weights = rarity_weights(detected_share, len(eligible_arr))
    weighted = uncertainty(pool, thresholds) * weights
    priority = weighted.max(axis=1)
    # Candidates: the most uncertain rows, in priority order, ties in a seeded random order.
    n_random = int(round(n * explore)) if n > 1 else 0
    n_informative = n - n_random
    n_candidates = min(len(eligible_arr), max(10 * n, 1000))
    order = np.lexsort((rng.random(len(eligible_arr)), -priority))[:n_candidates]
    reference = (
        [texts[i] for i in rng.choice(eligible_arr, min(len(eligible_arr), 1000), replace=False)]
        if density
        else []
    )
    picked = _diverse_greedy(
        [texts[i] for i in eligible_arr[order]],
        priority[order],
        n_informative,
        diversity,
        near_duplicate,
        reference,
        density,
    )
    informative = order[picked].tolist()
    rest = np.setdiff1d(np.arange(len(eligible_arr)), informative)
    drawn = rng.permutation(rest)[:n_random].tolist()
    # Interleaved, so that a coder who stops early has coded both kinds in proportion.
    slots = np.argsort(
        np.concatenate(
            [
                (np.arange(len(informative)) + 0.5) / max(len(informative), 1),
                (np.arange(len(drawn)) + 0.5) / max(len(drawn), 1),
            ]
        ),
        kind="stable",
    )
    kinds = [("informative", i) for i in informative] + [("random", i) for i in drawn]
    chosen_local = np.array([kinds[slot][1] for slot in slots], dtype=int)
    chosen = eligible_arr[chosen_local]
    reasons = []
    for slot in slots:
        kind, local = kinds[slot]
        if kind == "random":
            reasons.append(RANDOM_REASON)
            continue
        col = int(np.argmax(weighted[local]))
        reason = (
            f"closest to a threshold: {themes[col]} (score {pool[local, col]:.2f}, "
            f"threshold {thresholds[col]:.2f})"
        )
        if weights[col] > 1.5:
            reason += f"; {themes[col]} is rarely predicted here"
        reasons.append(reason)
    return ReviewSelection(
        index=chosen.tolist(),
        priority=[float(priority[local]) for local in chosen_local],
        reasons=reasons,
        themes=themes,
        presence=scores[chosen],
        n_rows=len(texts),
        n_eligible=len(eligible_arr),
        weights=dict(zip(themes, weights.round(3).tolist(), strict=True)),
        strategy=strategy,
    )


def _diverse_greedy(
    texts: Sequence[str],
    priority: np.ndarray,
    n: int,
    diversity: float,
    near_duplicate: float,
    reference: Sequence[str] = (),
    density: float = 0.0,
) -> np.ndarray:
    """Greedy maximal-marginal-relevance pick: priority minus similarity to what was taken.

    With ``density`` > 0, priorities are first multiplied by each text's mean similarity to the
    ``reference`` texts (a sample of the export) to that power: typical texts over outliers.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not len(texts):
        return np.zeros(0, dtype=int)
    try:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        vectorizer.fit(list(texts) + list(reference))
        vectors = vectorizer.transform(texts)
    except ValueError:  # no word at all in any candidate (only digits or symbols)
        return np.arange(min(n, len(texts)))
    if density and len(reference):
        typical = np.asarray((vectors @ vectorizer.transform(reference).T).mean(axis=1)).ravel()
        if typical.max() > 0:
            priority = priority * (typical / typical.max()) ** density
    top = priority.max()
    gain_base = priority / top if top > 0 else np.zeros(len(texts))
    closest = np.zeros(len(texts))
    available = np.ones(len(texts), dtype=bool)
    picked: list[int] = []
    while len(picked) < n and available.any():
        gain = np.where(available, gain_base - diversity * closest, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        similarity = (vectors @ vectors[best].T).toarray().ravel()
        closest = np.maximum(closest, similarity)
        available &= similarity < near_duplicate
    return np.array(picked, dtype=int)


def review_frame(
    frame: pd.DataFrame,
    selection: ReviewSelection,
    model,
    text_column: str,
    blind: bool = False,
) -> pd.DataFrame:
    """The sheet for the coder: chosen rows, rank and reason, suggestions, empty coding columns.

    Raises
    ------
    ClassifierError
        When the input already has a column that the sheet adds (e.g. a tagged file, whose theme
        columns are the model's: review the untagged export instead).
    """
    from classifier.labels import CODED_COLUMN, LabelScheme, labels_frame

    scheme = LabelScheme.from_model(model)
    added = [RANK_COLUMN, REASON_COLUMN, *scheme.themes, CODED_COLUMN]
    added += [] if blind else [f"{SUGGESTED_PREFIX}{theme}" for theme in scheme.themes]
    clash = [c for c in frame.columns if str(c) in added or str(c).lower() in added]
    if clash:
        raise ClassifierError(
            f"input already has column(s) {describe_columns(clash)}, which the review sheet adds "
            "(is it a tagged file? review the untagged export)"
        )
    chosen = frame.iloc[selection.index].reset_index(drop=True)
    parts = [
        chosen,
        pd.DataFrame({RANK_COLUMN: range(1, len(selection) + 1), REASON_COLUMN: selection.reasons}),
    ]
    if not blind:
        suggestions = model.predict(chosen[text_column].tolist()) if len(chosen) else []
        parts.append(labels_frame(suggestions, scheme, SUGGESTED_PREFIX))
    coding = labels_frame([{}] * len(chosen), scheme)
    coding[CODED_COLUMN] = ""
    parts.append(coding)
    return pd.concat(parts, axis=1)


@dataclass
class ReviewSummary:
    """What ``classifier review`` did."""

    input: str
    output: str
    text_column: str
    rows_read: int
    rows_eligible: int
    rows_written: int
    strategy: str
    blind: bool
    reasons: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            f"Wrote {self.rows_written:,} rows to code to {self.output} "
            f"(from {self.rows_read:,} rows of {self.input}; {self.rows_eligible:,} distinct "
            f"texts eligible; text column: {self.text_column}; {self.strategy}"
            f"{', blind' if self.blind else ''})",
        ]
        if self.reasons:
            lines.append("  theme closest to its threshold:")
            lines += [f"    {theme:<15}{count:>6,}" for theme, count in self.reasons.items()]
        lines.append(
            "Fill in the theme columns (positive/negative, blank for none); mark rows you coded "
            "with x in 'coded' if you stop before the end. Then: classifier agree "
            f"{self.output}  /  classifier train --add {self.output} --output-dir my_model"
        )
        return "\n".join(lines)


def review_file(
    input_path: str,
    output_path: str,
    model=None,
    n: int = 200,
    seed: int = 0,
    strategy: str = "informative",
    blind: bool = False,
    exclude: Sequence[str] = (),
    explore: float = EXPLORE,
    text_column: str | None = None,
    id_column: str | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    encoding: str = "utf-8",
    force: bool = False,
) -> ReviewSummary:
    """Read an export, choose rows to code, write the coding sheet (``classifier review``).

    Parameters
    ----------
    input_path, output_path : str
        The export (any table format) and the sheet to write (format from the extension).
    model : CompiledModel, ThemeClassifier, str or Path, optional
        A model, or the path of a model file; the shipped model by default.
    n, seed, strategy, explore
        See :func:`select_for_review`.
    blind : bool, default=False
        Leave out the model's suggestions (for measuring agreement without anchoring the coder).
    exclude : sequence of str
        Tables of rows already coded; their texts are never chosen again.
    text_column, id_column, input_format, output_format, encoding, force
        As for ``classifier tag``.
    """
    from classifier.labels import read_table
    from classifier.persistence import load_model
    from classifier.tagging import find_text_column, missing_column

    if Path(input_path).resolve() == Path(output_path).resolve():
        raise ClassifierError(f"{output_path}: the output would overwrite the input")
    out_fmt = detect_format(output_path, output_format)
    if model is None or isinstance(model, str | Path):
        model = load_model(model)
    frame = read_table(input_path, input_format, encoding)
    text_column = find_text_column(frame.columns, text_column, input_path)
    if id_column is not None and id_column not in frame.columns:
        raise missing_column(input_path, id_column, "id")
    already: list[str] = []
    for path in exclude:
        done = read_table(path, None, encoding)
        column = text_column if text_column in done.columns else None
        already += done[find_text_column(done.columns, column, path)].tolist()
    texts = frame[text_column].tolist()
    selection = select_for_review(
        texts, model, n=n, seed=seed, strategy=strategy, exclude=already, explore=explore
    )
    if not len(selection):
        raise ClassifierError(f"{input_path}: no row with text left to choose")
    sheet = review_frame(frame, selection, model, text_column, blind=blind)
    writer = ChunkWriter(output_path, out_fmt, force=force)
    try:
        writer.write(sheet)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    reasons: dict[str, int] = {}
    if strategy == "informative":
        for reason in selection.reasons:
            if reason != RANDOM_REASON:
                theme = reason.split(": ", 1)[1].split(" ", 1)[0]
                reasons[theme] = reasons.get(theme, 0) + 1
        n_random = selection.reasons.count(RANDOM_REASON)
        reasons = {t: reasons[t] for t in selection.themes if t in reasons}
        if n_random:
            reasons[RANDOM_REASON] = n_random
    return ReviewSummary(
        input=input_path,
        output=output_path,
        text_column=text_column,
        rows_read=len(frame),
        rows_eligible=selection.n_eligible,
        rows_written=len(selection),
        strategy=strategy,
        blind=blind,
        reasons=reasons,
    )
