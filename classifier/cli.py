"""The ``classifier`` command line: thin typer commands over importable functions.

Every command parses its options and calls a plain function (``tag_file``, ``train_model``...).
User errors print one line, ``Error: ...``, and exit with code 1; usage errors exit with 2.
Heavy libraries are imported inside the commands so that ``classifier --help`` starts quickly.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import typer

from classifier import __version__
from classifier._errors import ClassifierError

app = typer.Typer(
    name="classifier",
    help="Tag client feedback about therapy with therapeutic-relationship themes.\n\n"
    "Example: classifier tag training_data/sample_feedback.csv -o tagged.csv",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(
    help="Check and split a labelled corpus.\n\nExample: classifier data check",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data")


@contextmanager
def user_errors():
    """Turn ClassifierError into a one-line message and exit code 1; Ctrl-C into exit 130."""
    try:
        yield
    except ClassifierError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted; no output was written.", err=True)
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"classifier {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Tag client feedback about therapy with therapeutic-relationship themes."""


# ----------------------------------------------------------------------------------- tag
def _default_output(input_path: str) -> str:
    if input_path == "-":
        return "-"
    path = Path(input_path)
    return str(path.with_name(f"{path.stem}.tagged{path.suffix}"))


@app.command()
def tag(
    input: str = typer.Argument(
        ..., help="Table to tag (.csv, .tsv, .jsonl, .xlsx, .parquet), or - for stdin."
    ),
    output: str | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Where to write; format from the extension; - for stdout (JSON Lines). "
        "Default: INPUT's name with .tagged before the extension.",
    ),
    text_column: str | None = typer.Option(
        None, "--text-column", help="Column holding the feedback (detected if obvious)."
    ),
    id_column: str | None = typer.Option(
        None, "--id-column", help="Column identifying rows; checked to exist."
    ),
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped model)."),
    explain: bool = typer.Option(False, "--explain", help="Add the evidence sentence per theme."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes."),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        min=1,
        show_default=False,
        help="Rows read, tagged and written at a time; memory grows with it.  [default: 2000]",
    ),
    encoding: str = typer.Option(
        "utf-8", "--encoding", help="Text encoding of CSV/TSV/JSONL input."
    ),
    input_format: str | None = typer.Option(
        None,
        "--format",
        help="Input format when the extension does not say (csv, tsv, jsonl, xlsx, parquet).",
    ),
    output_format: str | None = typer.Option(
        None, "--output-format", help="Output format when the extension does not say."
    ),
    summary: Path | None = typer.Option(
        None, "--summary", help="Also write the summary as JSON here."
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
) -> None:
    """Tag every row of a table; write it back with theme columns, plus a summary.

    Every input column is kept, unchanged and in order; then come `themes` (e.g. "trust+;
    progress-"), one column per theme (positive/negative/empty), `<theme>_score` and `status`.

    Examples:

      classifier tag training_data/sample_feedback.csv -o tagged.csv

      classifier tag export.xlsx -o tagged.xlsx --text-column "What could we do better?"

      cat export.csv | classifier tag - --format csv > tagged.jsonl

      classifier tag big.csv -o big.tagged.parquet --jobs 2 --summary summary.json
    """
    from classifier.tagging import progress_printer, tag_file

    with user_errors():
        output_path = output or _default_output(input)
        show_progress = not quiet and sys.stderr.isatty()
        result = tag_file(
            input,
            output_path,
            model_path=model,
            text_column=text_column,
            id_column=id_column,
            explain=explain,
            jobs=jobs,
            chunk_size=chunk_size,
            encoding=encoding,
            input_format=input_format,
            output_format=output_format,
            force=force,
            progress=progress_printer() if show_progress else None,
        )
        if show_progress:
            typer.echo("", err=True)
        if summary is not None:
            _write_json_atomically(summary, result.to_dict())
        if not quiet:
            typer.echo(result.render(), err=True)


def _write_json_atomically(path: Path, payload: dict) -> None:
    from classifier._files import write_text_atomically

    write_text_atomically(path, json.dumps(payload, indent=2) + "\n")


# ------------------------------------------------------------------------------- explain
@app.command()
def explain(
    text: str = typer.Argument(..., help="The feedback text to explain (or - to read stdin)."),
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped model)."),
    as_json: bool = typer.Option(False, "--json", help="Print Prediction.to_dict() as JSON."),
) -> None:
    """Show the themes, polarities, scores and evidence for one text.

    Example:

      classifier explain "I felt heard, but she cancelled twice this month."
    """
    from classifier.persistence import load_model

    with user_errors():
        if text == "-":
            text = sys.stdin.read()
        fitted = load_model(model)
        prediction = fitted.classify(text)
        if as_json:
            typer.echo(json.dumps(prediction.to_dict(), indent=2, ensure_ascii=False))
            return
        if prediction.status != "ok":
            typer.echo(f"Not tagged: {prediction.status}")
            return
        if not prediction.themes:
            typer.echo("No theme detected.")
        for result in prediction.themes:
            typer.echo(
                f"{result.theme:<14} {result.polarity:<9} score {result.score:.2f}  "
                f"(polarity {result.polarity_score:.2f})"
            )
            typer.echo(f"  evidence: {result.evidence}")
        typer.echo("scores: " + ", ".join(f"{t} {s:.2f}" for t, s in prediction.scores.items()))


# -------------------------------------------------------------------------------- themes
@app.command()
def themes(
    codebook: Path | None = typer.Option(
        None, "--codebook", help="Codebook TOML (default: packaged)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the codebook as JSON."),
) -> None:
    """Print the codebook: each theme's definition, indicators and examples.

    Example:

      classifier themes
    """
    from dataclasses import asdict

    from classifier.codebook import load_codebook

    with user_errors():
        book = load_codebook(codebook)
        if as_json:
            typer.echo(json.dumps(asdict(book), indent=2, ensure_ascii=False))
            return
        typer.echo(f"{book.name} (version {book.version}): {len(book.themes)} themes\n")
        for theme in book.themes:
            typer.echo(f"{theme.id} - {theme.name}\n  {theme.definition}")
            typer.echo("  strength: " + "; ".join(theme.strength))
            typer.echo("  concern:  " + "; ".join(theme.concern))
            for example in theme.examples_positive:
                typer.echo(f"    + {example}")
            for example in theme.examples_negative:
                typer.echo(f"    - {example}")
            typer.echo("")


# ---------------------------------------------------------------------------------- info
@app.command()
def info(
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped model)."),
    as_json: bool = typer.Option(False, "--json", help="Print the model card JSON."),
) -> None:
    """Print the model card of a model: data hash, versions, thresholds and metrics.

    Example:

      classifier info
    """
    from classifier.persistence import CARD_JSON, default_model_path
    from classifier.rendering import render_card

    with user_errors():
        model_path = Path(model) if model else default_model_path()
        card_path = model_path.with_name(CARD_JSON)
        if not card_path.is_file():
            raise ClassifierError(f"{card_path}: no model card beside the model")
        card = json.loads(card_path.read_text())
        typer.echo(json.dumps(card, indent=2) if as_json else render_card(card))


# ------------------------------------------------------------------------- train/evaluate
@app.command()
def train(
    corpus: Path | None = typer.Option(None, "--corpus", help="Labelled corpus (JSON Lines)."),
    output_dir: Path = typer.Option(Path("models"), "--output-dir", help="Where the model goes."),
    codebook: Path | None = typer.Option(None, "--codebook", help="Codebook TOML of the labels."),
    cv_folds: int = typer.Option(
        5, "--cv-folds", min=0, help="Folds for CV and ablation (0: skip)."
    ),
    ablation: bool = typer.Option(True, "--ablation/--no-ablation", help="Score each step off."),
    update_readme: Path | None = typer.Option(
        None, "--update-readme", help="README whose evaluation block to regenerate."
    ),
) -> None:
    """Train a model on the corpus's train split; write the model file and its model card.

    Deterministic: the same corpus and settings give the same model.

    Examples:

      classifier train

      classifier train --corpus my_labels.jsonl --codebook my_codebook.toml --output-dir my_model
    """
    from classifier.data import DEFAULT_CORPUS_PATH
    from classifier.rendering import render_metrics, update_readme_block
    from classifier.training import train_model

    with user_errors():
        card = train_model(
            corpus or DEFAULT_CORPUS_PATH,
            output_dir,
            codebook_path=str(codebook) if codebook else None,
            cv_folds=cv_folds,
            ablation=ablation,
            log=lambda message: typer.echo(message, err=True),
        )
        typer.echo(render_metrics(card["metrics"]))
        if update_readme is not None:
            update_readme_block(update_readme, "evaluation", render_metrics(card["metrics"]))


@app.command()
def evaluate(
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped model)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Labelled corpus (JSON Lines)."),
    cv_folds: int = typer.Option(
        0,
        "--cv-folds",
        min=0,
        help="Also cross-validate a fresh model on the train split with this many folds "
        "(minutes; 0: skip).",
    ),
    baselines: bool = typer.Option(
        False, "--baselines/--no-baselines", help="Also train and score the two baselines."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Score a model on the corpus's test split (seconds); baselines and CV on request.

    Examples:

      classifier evaluate

      classifier evaluate --baselines --cv-folds 5 --json
    """
    from classifier.data import DEFAULT_CORPUS_PATH, read_corpus
    from classifier.persistence import load_model
    from classifier.rendering import render_metrics
    from classifier.training import evaluate_model

    with user_errors():
        fitted = load_model(model)
        report = evaluate_model(
            fitted,
            read_corpus(corpus or DEFAULT_CORPUS_PATH),
            baselines=baselines,
            cv_folds=cv_folds,
            log=lambda message: typer.echo(message, err=True),
        )
        typer.echo(json.dumps(report, indent=2) if as_json else render_metrics(report))


# ---------------------------------------------------------------------------------- data
@data_app.command("check")
def data_check(
    corpus: Path | None = typer.Option(None, "--corpus", help="Labelled corpus (JSON Lines)."),
    codebook: Path | None = typer.Option(None, "--codebook", help="Codebook TOML of the labels."),
    min_records: int = typer.Option(3000, "--min-records", help="Fewest records allowed."),
    min_per_cell: int = typer.Option(
        150, "--min-per-cell", help="Fewest records per theme x polarity."
    ),
    markdown: bool = typer.Option(
        False, "--markdown", help="Print the counts as a Markdown table."
    ),
    update: Path | None = typer.Option(
        None, "--update", help="Regenerate the counts block of this Markdown file (the datasheet)."
    ),
) -> None:
    """Validate a corpus: schema, codebook ids, duplicates, splits, balance; print the counts.

    Exits with 1 and lists the problems when any check fails.

    Example:

      classifier data check --corpus training_data/corpus.jsonl

      classifier data check --update training_data/README.md
    """
    from classifier.codebook import load_codebook
    from classifier.data import DEFAULT_CORPUS_PATH, Requirements, check_corpus, read_corpus

    with user_errors():
        book = load_codebook(codebook)
        frame = read_corpus(corpus or DEFAULT_CORPUS_PATH)
        requirements = Requirements(min_records=min_records, min_per_cell=min_per_cell)
        report = check_corpus(frame, book, requirements)
        typer.echo(render_counts(report, frame, markdown))
        if update is not None:
            from classifier.rendering import update_readme_block

            if not update_readme_block(update, "counts", render_counts(report, frame, True)):
                raise ClassifierError(f"{update}: no <!-- counts:start --> block to update")
        if not report.ok:
            for error in report.errors[:50]:
                typer.echo(f"  {error}", err=True)
            more = len(report.errors) - 50
            raise ClassifierError(
                f"{corpus or DEFAULT_CORPUS_PATH}: {len(report.errors)} problem(s)"
                + (f" ({more} not shown)" if more > 0 else "")
            )


def render_counts(report, frame, markdown: bool = False) -> str:
    """The counts table and shares of a corpus check, as text or Markdown."""
    counts = report.counts
    sources = frame.groupby(["source", "split"]).size().unstack(fill_value=0)
    shares = ", ".join(f"{name} {value:.1%}" for name, value in report.shares.items())
    if markdown:
        return (
            f"{markdown_table(counts)}\n\nRecords: {report.n_records:,}. Shares: {shares}.\n\n"
            f"{markdown_table(sources)}\n"
        )
    return (
        f"{report.n_records:,} records; {shares}\n\n{counts.to_string()}\n\n{sources.to_string()}"
    )


def markdown_table(frame) -> str:
    """A DataFrame as a Markdown table (index first), without needing `tabulate`."""
    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index)] + [str(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)


@data_app.command("split")
def data_split(
    corpus: Path = typer.Option(..., "--corpus", help="Corpus to (re)assign splits in, in place."),
    codebook: Path | None = typer.Option(None, "--codebook", help="Codebook TOML of the labels."),
    test_size: float = typer.Option(0.2, "--test-size", help="Share of records in the test split."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the stratified split."),
) -> None:
    """Assign a train/test split stratified over theme x polarity cells (for your own corpus).

    Never run this on a corpus whose test split has already been used to report numbers.

    Example:

      classifier data split --corpus my_labels.jsonl
    """

    from classifier.codebook import load_codebook
    from classifier.data import assign_split, read_corpus, write_corpus

    with user_errors():
        frame = read_corpus(corpus)
        frame["split"] = assign_split(frame, load_codebook(codebook), test_size, seed)
        write_corpus(frame, corpus)
        typer.echo(frame["split"].value_counts().to_string())


def main() -> None:
    """Console-script entry point."""
    app(prog_name="classifier")


if __name__ == "__main__":
    main()
