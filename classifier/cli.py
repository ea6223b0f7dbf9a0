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
from typing import Annotated

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
# Options that several commands take: defined once, so their flags, metavars and help agree.
ModelOption = Annotated[
    Path | None,
    typer.Option("--model", metavar="FILE", help="Model file (default: the shipped model)."),
]
CorpusOption = Annotated[
    Path | None,
    typer.Option(
        "--corpus",
        metavar="FILE",
        help="Labelled corpus, JSON Lines (default: training_data/corpus.jsonl).",
    ),
]
CodebookOption = Annotated[
    Path | None,
    typer.Option(
        "--codebook", metavar="FILE", help="Codebook TOML (default: the packaged codebook)."
    ),
]
EncodingOption = Annotated[
    str,
    typer.Option("--encoding", metavar="ENCODING", help="Text encoding of CSV/TSV/JSONL input."),
]
TextColumnOption = Annotated[
    str | None,
    typer.Option(
        "--text-column",
        metavar="COLUMN",
        help="Column holding the feedback (detected if obvious).",
    ),
]
SheetOption = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        metavar="SHEET",
        help="Excel input: the sheet to read, by name or 0-based number (default: the first).",
    ),
]
InputFormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="Input format when the extension does not say (csv, tsv, jsonl, xlsx, parquet).",
    ),
]
data_app = typer.Typer(
    help="Check and split a labelled corpus.\n\nExample: classifier data check",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data")


# click's ClickException as the installed typer knows it: typer 0.2x carries its own copy of
# click, whose exception classes are not those of the click package.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


@contextmanager
def user_errors():
    """Report a failure as one line, without a traceback, and exit with its code.

    - ClassifierError: a ``click.ClickException``, which prints ``Error: ...`` and exits 1.
    - Ctrl-C (SIGINT) or SIGTERM: what was left behind (from the writer that was stopped, or the
      outputs finished before it), exit 130 or 143 (128 + the signal's number, as shells report).
      Any exception that follows such a signal counts as it: a signal sent to the whole process
      group also stops the worker processes, and their failure may surface first.

    Temporary files of this process that are still there are removed on the way out. Other
    exceptions are bugs: they keep their traceback.
    """
    from classifier._errors import Interrupted, forget_stop_signals, stop_signal
    from classifier._files import describe_stop, remove_temporaries, written_mark

    forget_stop_signals()
    mark = written_mark()
    try:
        yield
    except (typer.Exit, typer.Abort, ClickException):
        raise  # typer's own exits and usage errors, e.g. from a nested user_errors
    except BaseException as exc:
        stopped = stop_signal(exc)
        if isinstance(exc, Interrupted):
            message, code = str(exc), exc.exit_code
        elif stopped is not None:
            message, code = describe_stop(stopped[0], mark), stopped[1]
        else:
            remove_temporaries()
            if isinstance(exc, ClassifierError):  # click prints it as "Error: ...", exit 1
                raise ClickException(str(exc)) from None
            raise
        remove_temporaries()
        typer.echo(message, err=True)
        raise typer.Exit(code) from None


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


# ------------------------------------------------------------------------------- columns
@app.command()
def columns(
    input: str = typer.Argument(
        ..., help="Table (.csv, .tsv, .jsonl, .xlsx, .parquet), or - for stdin.", metavar="FILE"
    ),
    encoding: EncodingOption = "utf-8",
    sheet: SheetOption = None,
    input_format: InputFormatOption = None,
) -> None:
    """List a table's columns, one per line: number, tab, name (to choose --text-column).

    Error messages never list them, since a file without a header row has feedback there.

    Example:

      classifier columns training_data/sample_feedback.csv
    """
    from classifier.io import detect_format, read_header

    with user_errors():
        fmt = detect_format(input, input_format, default="csv")
        for number, name in enumerate(read_header(input, fmt, encoding, sheet), start=1):
            # (a name with a line break or tab in it is shown as a JSON string)
            typer.echo(f"{number}\t{name if name.isprintable() else json.dumps(name)}")


# ----------------------------------------------------------------------------------- tag
def _default_output(input_path: str) -> str:
    if input_path == "-":
        return "-"
    path = Path(input_path)
    return str(path.with_name(f"{path.stem}.tagged{path.suffix}"))


@app.command()
def tag(
    input: str = typer.Argument(
        ...,
        help="Table to tag (.csv, .tsv, .jsonl, .xlsx, .parquet), or - for stdin.",
        metavar="FILE",
    ),
    output: str | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Where to write; format from the extension; - for stdout (JSON Lines). "
        "Default: INPUT's name with .tagged before the extension.",
        metavar="FILE",
    ),
    text_column: TextColumnOption = None,
    id_column: str | None = typer.Option(
        None,
        "--id-column",
        help="Column identifying rows: checked to exist before tagging; with --report, it "
        "names the quoted rows (default there: a column named id or *_id).",
        metavar="COLUMN",
    ),
    model: ModelOption = None,
    explain: bool = typer.Option(False, "--explain", help="Add the evidence sentence per theme."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes.", metavar="N"),
    dask: str | None = typer.Option(
        None,
        "--dask",
        metavar="ADDRESS|local",
        help="Tag a Parquet or CSV dataset (a file, a folder or a glob) on a Dask cluster: a "
        "scheduler address (tcp://host:8786), or 'local' for a local cluster of --jobs "
        "worker processes. --output is then a folder of part files, e.g. "
        "classifier tag export/ -o tagged.parquet --dask local --jobs 2. Needs the [dask] extra.",
    ),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        min=1,
        show_default=False,
        help="Rows read, tagged and written at a time; memory grows with it.  [default: 2000]",
        metavar="N",
    ),
    encoding: EncodingOption = "utf-8",
    sheet: SheetOption = None,
    input_format: InputFormatOption = None,
    output_format: str | None = typer.Option(
        None,
        "--output-format",
        help="Output format when the extension does not say.",
        metavar="FORMAT",
    ),
    summary: Path | None = typer.Option(
        None, "--summary", help="Also write the summary as JSON here.", metavar="FILE"
    ),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Also write an HTML report of the tagged output here (as `classifier report` "
        "does; needs the [report] extra). --force overwrites it too.",
        metavar="FILE",
    ),
    pii: bool = typer.Option(
        False,
        "--pii",
        help="Also flag personal data: a `pii` column naming what each text holds (email, "
        "phone, nhs_number, postcode, date_of_birth, name) and `pii_redacted`, the number of "
        "markers such as [Name Redacted] or XXX already in it.",
    ),
    redact: bool = typer.Option(
        False,
        "--redact",
        help="Write the text column with each piece of personal data found replaced by its "
        "kind, e.g. [EMAIL] (the one input column that then changes).",
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

      classifier tag export.csv -o tagged.csv --report report.html

      classifier tag export.csv -o shareable.csv --pii --redact
    """
    from classifier._files import check_folder
    from classifier.tagging import tag_file

    output_path = output or _default_output(input)
    with user_errors():
        # Everything that can be checked is checked before tagging, not after an hour of it.
        for extra in (summary, report):
            if extra is not None:
                check_folder(extra)
        if report is not None:
            _check_report_target(report, output_path, dask is not None, force)
    if dask is not None and (pii or redact):
        raise typer.BadParameter("is not available with --dask", param_hint="--pii/--redact")
    if dask is not None:
        with user_errors():
            result = _tag_with_dask(
                dask,
                input,
                output,
                jobs,
                model_path=model,
                text_column=text_column,
                id_column=id_column,
                explain=explain,
                chunk_size=chunk_size,
                encoding=encoding,
                input_format=input_format,
                output_format=output_format,
                force=force,
            )
            if summary is not None:
                _write_json_atomically(summary, result.to_dict())
            if not quiet:
                typer.echo(result.render(), err=True)
        return
    with user_errors(), progress_bar(not quiet and sys.stderr.isatty()) as progress:
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
            progress=progress,
            pii=pii,
            redact=redact,
            sheet=sheet,
        )
    with user_errors():
        for warning in result.warnings():  # even with --quiet: it is about the user's data
            typer.echo(warning, err=True)
        if summary is not None:
            _write_json_atomically(summary, result.to_dict())
        if not quiet:
            typer.echo(result.render(), err=True)
        if report is not None:
            from classifier.report import build_report

            made = build_report(
                output_path,
                report,
                model_path=model,
                input_format=output_format,
                id_column=id_column,
                force=force,
            )
            if not quiet:
                typer.echo(made.render(), err=True)


@contextmanager
def progress_bar(enabled: bool):
    """A rich progress bar on stderr for ``tag_file(progress=...)``; None when not enabled.

    Rows, rows per second and, when the input's size is known, the share done and the time
    left. Transient: the summary replaces it.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.fields[rows]:>12,} rows"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>8,.0f} rows/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("tagging", total=None, rows=0, rate=0.0)

        def update(rows: int, fraction: float | None) -> None:
            elapsed = bar.tasks[0].elapsed or 1e-9
            # Standard input has no known size: the bar then only pulses.
            total = 1.0 if fraction is not None else None
            bar.update(task, total=total, completed=fraction or 0, rows=rows, rate=rows / elapsed)

        yield update


def _check_report_target(report: Path, output: str, dask: bool, force: bool) -> None:
    """Refuse `tag --report` before tagging, not after an hour of it, when it cannot be made."""
    if dask:
        raise typer.BadParameter(
            "needs one output file; run `classifier report` on a part file of --dask output",
            param_hint="--report",
        )
    if output == "-":
        raise typer.BadParameter(
            "needs an output file, not standard output: pass --output FILE",
            param_hint="--report",
        )
    from classifier.report import require_matplotlib

    with user_errors():
        require_matplotlib()
        if report.exists() and not force:
            raise ClassifierError(f"{report}: already exists; pass --force to overwrite it")
        if Path(output).resolve() == report.resolve():
            raise ClassifierError(f"{report}: the report would overwrite the tagged output")


def _tag_with_dask(address: str, input: str, output: str | None, jobs: int, **options):
    """The --dask branch of `tag`: check the options that mean something else, then tag."""
    from classifier.distributed import LOCAL, tag_dataset
    from classifier.tagging import DEFAULT_CHUNK_SIZE

    if output is None or output == "-":
        raise typer.BadParameter(
            "--dask writes a folder of part files: pass --output FOLDER", param_hint="--output"
        )
    if jobs > 1 and address != LOCAL:
        raise typer.BadParameter(
            "sets the workers of --dask local; a scheduler's cluster has its own",
            param_hint="--jobs",
        )
    options["chunk_size"] = options["chunk_size"] or DEFAULT_CHUNK_SIZE
    return tag_dataset(
        input, output, scheduler=address, n_workers=jobs if address == LOCAL else None, **options
    )


def _write_json_atomically(path: Path, payload: dict) -> None:
    from classifier._files import write_text_atomically

    write_text_atomically(path, json.dumps(payload, indent=2) + "\n")


# -------------------------------------------------------------------------------- report
def _default_report(tagged: str) -> str:
    if tagged == "-":
        return "report.html"
    path = Path(tagged)
    return str(path.with_name(f"{path.stem}.report.html"))


def _choice(value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
    return value


@app.command()
def report(
    tagged: str = typer.Argument(
        ...,
        help="Output of `classifier tag` (.csv, .tsv, .jsonl, .xlsx, .parquet), or - for stdin.",
        metavar="FILE",
    ),
    output: str | None = typer.Option(
        None,
        "-o",
        "--output",
        help="The HTML file to write. Default: TAGGED's name with .report.html.",
        metavar="FILE",
    ),
    date_column: str | None = typer.Option(
        None, "--date-column", help="Column of dates: themes per week or month.", metavar="COLUMN"
    ),
    date_format: str | None = typer.Option(
        None,
        "--date-format",
        help="strptime format of --date-column, e.g. %d/%m/%Y.  [default: ISO 8601, YYYY-MM-DD]",
        metavar="FORMAT",
    ),
    period: str = typer.Option(
        "auto",
        "--period",
        callback=lambda value: _choice(value, ("auto", "week", "month")),
        help="Time unit of --date-column: auto, week or month (auto: weeks for spans up to six "
        "months with --min-group tagged rows a week on average, else months).",
        metavar="UNIT",
    ),
    group_column: str | None = typer.Option(
        None,
        "--group-column",
        help="Column of teams, services or clinician codes to compare.",
        metavar="COLUMN",
    ),
    min_group: int = typer.Option(
        10,
        "--min-group",
        min=1,
        help="Groups with fewer tagged rows are merged into 'other', never shown alone.",
        metavar="N",
    ),
    max_groups: int = typer.Option(
        20,
        "--max-groups",
        min=1,
        help="Show at most this many groups (the largest) alone.",
        metavar="N",
    ),
    quotes: int = typer.Option(
        0,
        "--quotes",
        min=0,
        help="Quote up to N evidence sentences per theme and polarity (needs `tag --explain` "
        "output). Off by default: the texts are sensitive.",
        metavar="N",
    ),
    id_column: str | None = typer.Option(
        None,
        "--id-column",
        help="Column naming the rows of quotes (default: an id column).",
        metavar="COLUMN",
    ),
    near: float = typer.Option(
        0.1,
        "--near",
        min=0.0,
        max=0.5,
        help="A score this close to the theme's threshold counts as near it (uncertain).",
        metavar="SCORE",
    ),
    title: str | None = typer.Option(
        None, "--title", help="Heading of the report.", metavar="TEXT"
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Model that tagged the file, for its model card (default: shipped).",
        metavar="FILE",
    ),
    input_format: str | None = typer.Option(
        None, "--format", help="Format of TAGGED when the extension does not say.", metavar="FORMAT"
    ),
    encoding: EncodingOption = "utf-8",
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing report."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Write a one-file HTML report of a tagged table, to read, print or forward.

    Headline numbers, strengths against concerns per theme (with how many rows are near the
    model's threshold), themes over time, groups side by side and, on request, a few quotes.
    The file opens offline, with no script and nothing fetched. Small groups are merged into
    "other" so that no small group, and no individual, can be picked out.

    Examples:

      classifier report tagged.csv -o report.html

      classifier report tagged.csv -o report.html --date-column submitted --group-column service

      classifier report tagged.jsonl --quotes 3 --title "Talking therapies, Q1"
    """
    from classifier.report import build_report

    with user_errors():
        made = build_report(
            tagged,
            output or _default_report(tagged),
            model_path=model,
            date_column=date_column,
            date_format=date_format,
            period=period,
            group_column=group_column,
            min_group=min_group,
            max_groups=max_groups,
            quotes=quotes,
            id_column=id_column,
            near=near,
            title=title,
            input_format=input_format,
            encoding=encoding,
            force=force,
        )
        if not quiet:
            typer.echo(made.render(), err=True)


# ------------------------------------------------------------------------------- explain
@app.command()
def explain(
    text: str = typer.Argument(
        ..., help="The feedback text to explain (or - to read stdin).", metavar="TEXT"
    ),
    model: ModelOption = None,
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
    codebook: CodebookOption = None,
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
    model: ModelOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the model card JSON."),
) -> None:
    """Print the model card of a model: data hash, versions, thresholds and metrics.

    Example:

      classifier info
    """
    from classifier.persistence import CARD_JSON, CARD_MARKDOWN, default_model_path
    from classifier.rendering import render_card

    with user_errors():
        model_path = Path(model) if model else default_model_path()
        card_path = model_path.with_name(CARD_JSON)
        if not card_path.is_file():
            raise ClassifierError(f"{card_path}: no model card beside the model")
        rendered = model_path.with_name(CARD_MARKDOWN)
        if as_json:
            typer.echo(card_path.read_text(encoding="utf-8").rstrip())
        elif rendered.is_file():  # written with the card by `classifier train`: no pandas needed
            typer.echo(rendered.read_text(encoding="utf-8").rstrip())
        else:
            typer.echo(render_card(json.loads(card_path.read_text(encoding="utf-8"))))


# ------------------------------------------------------------------------- train/evaluate
@app.command()
def train(
    corpus: CorpusOption = None,
    output_dir: Path = typer.Option(
        Path("models"), "--output-dir", help="Where the model goes.", metavar="DIR"
    ),
    codebook: CodebookOption = None,
    cv_folds: int = typer.Option(
        5, "--cv-folds", min=0, help="Folds for CV and ablation (0: skip).", metavar="N"
    ),
    ablation: bool = typer.Option(True, "--ablation/--no-ablation", help="Score each step off."),
    update_readme: Path | None = typer.Option(
        None,
        "--update-readme",
        help="README whose evaluation block to regenerate.",
        metavar="README",
    ),
    add: list[Path] | None = typer.Option(
        None,
        "--add",
        help="A coded table (.csv, .tsv, .xlsx, .parquet, .jsonl; one column per theme) to train "
        "on as well, 20% of its rows held out and scored apart; repeat for several.",
        metavar="FILE",
    ),
    text_column: str | None = typer.Option(
        None,
        "--text-column",
        help="Text column of the --add tables (detected if obvious).",
        metavar="COLUMN",
    ),
) -> None:
    """Train a model on the corpus's train split; write the model file and its model card.

    Deterministic: the same corpus and settings give the same model.

    Examples:

      classifier train

      classifier train --corpus my_labels.jsonl --codebook my_codebook.toml --output-dir my_model

      classifier train --add to_code.xlsx --add more_coded.csv --output-dir my_model

    With --add, the corpus (--corpus, or the shipped one) plus the coded rows are written to
    OUTPUT_DIR/training-corpus.jsonl and trained on; the card lists the added files.
    """
    from classifier.data import DEFAULT_CORPUS_PATH
    from classifier.rendering import render_metrics, update_readme_block
    from classifier.training import train_model

    with user_errors():
        if add:
            from classifier.retrain import train_with_coded

            card = train_with_coded(
                [str(path) for path in add],
                output_dir,
                corpus_path=corpus,
                codebook_path=codebook,
                cv_folds=cv_folds,
                ablation=ablation,
                text_column=text_column,
                log=lambda message: typer.echo(message, err=True),
            )
        else:
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
    model: ModelOption = None,
    corpus: CorpusOption = None,
    cv_folds: int = typer.Option(
        0,
        "--cv-folds",
        min=0,
        help="Also cross-validate a fresh model on the train split with this many folds "
        "(minutes; 0: skip).",
        metavar="N",
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
    from classifier.evaluation import evaluate_model
    from classifier.persistence import load_model
    from classifier.rendering import render_metrics

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


# ------------------------------------------------------------------------- agree/review
@app.command()
def agree(
    coded: str = typer.Argument(
        ...,
        help="A coder's table: text column and one column per theme (positive/negative).",
        metavar="FILE",
    ),
    model: ModelOption = None,
    second_coder: str | None = typer.Option(
        None,
        "--second-coder",
        help="A second coder's labels on the same rows: a file (rows matched by id, else by "
        "text), or columns of CODED: a pattern such as '{theme}_2', theme=column pairs, or one "
        "column per theme in codebook order, comma-separated.",
        metavar="SOURCE",
    ),
    text_column: TextColumnOption = None,
    id_column: str | None = typer.Option(
        None,
        "--id-column",
        help="Column identifying rows (default: one named id or *_id).",
        metavar="COLUMN",
    ),
    input_format: str | None = typer.Option(
        None, "--format", help="Format of CODED when the extension does not say.", metavar="FORMAT"
    ),
    encoding: EncodingOption = "utf-8",
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """How far the model agrees with a coder's labels: kappa, precision, recall, F1 per theme.

    Per theme: Cohen's kappa of presence and of absent/strength/concern, precision, recall and F1
    (the coder's labels as truth), polarity agreement and confusion counts. With
    --second-coder, coder-vs-coder agreement on the same rows is shown beside it: the ceiling.

    Examples:

      classifier agree coded.xlsx

      classifier agree coded.csv --second-coder "{theme}_2" --json

      classifier agree coder_a.xlsx --second-coder coder_b.xlsx --model my_model/theme-classifier.npz
    """
    from classifier.agreement import agree_with_coder, render_agreement
    from classifier.persistence import default_model_path, load_model

    with user_errors():
        model_path = model or default_model_path()
        report = agree_with_coder(
            coded,
            load_model(model_path),
            second_coder=second_coder,
            text_column=text_column,
            id_column=id_column,
            fmt=input_format,
            encoding=encoding,
            model_name=str(model_path),
        )
        typer.echo(json.dumps(report, indent=2) if as_json else render_agreement(report))


@app.command()
def review(
    export: str = typer.Argument(
        ..., help="Table of feedback to choose rows from.", metavar="FILE"
    ),
    output: str = typer.Option(
        ...,
        "-o",
        "--output",
        help="The coding sheet to write (.xlsx, .csv, .tsv, .parquet...).",
        metavar="FILE",
    ),
    n: int = typer.Option(200, "-n", "--rows", min=1, help="How many rows to choose.", metavar="N"),
    model: ModelOption = None,
    random_sample: bool = typer.Option(
        False,
        "--random",
        help="A simple random sample instead (for measuring agreement on typical rows).",
    ),
    blind: bool = typer.Option(
        False, "--blind", help="Leave out the model's suggestions (for an unbiased agreement)."
    ),
    exclude: list[str] | None = typer.Option(
        None,
        "--exclude",
        help="A table of rows already coded, never chosen again; repeatable.",
        metavar="FILE",
    ),
    explore: float = typer.Option(
        0.5,
        "--explore",
        min=0.0,
        max=1.0,
        help="Share of the rows drawn at random, interleaved with the uncertain ones.",
        metavar="SHARE",
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the tie-breaking (and random) draw.", metavar="N"
    ),
    text_column: TextColumnOption = None,
    id_column: str | None = typer.Option(
        None, "--id-column", help="Column identifying rows; checked to exist.", metavar="COLUMN"
    ),
    input_format: str | None = typer.Option(
        None, "--format", help="Format of EXPORT when the extension does not say.", metavar="FORMAT"
    ),
    output_format: str | None = typer.Option(
        None,
        "--output-format",
        help="Output format when the extension does not say.",
        metavar="FORMAT",
    ),
    encoding: EncodingOption = "utf-8",
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output file."),
) -> None:
    """Choose the rows whose coding would teach the model most; write a sheet to code.

    Rows whose presence score is closest to a theme's threshold, weighted up for themes the
    model rarely predicts in this export and for texts typical of it, near-duplicates skipped
    and similar texts spread out, interleaved with as many random rows (--explore 0.5), which
    teach the model more than borderline rows alone (benchmarks/review_loop.py). The sheet keeps the input columns, adds review_rank, review_reason, the
    model's suggested_<theme> columns and one empty column per theme to fill in (positive,
    negative or blank), plus an empty 'coded' column (mark rows with x if you stop early).
    The filled-in sheet goes straight into `classifier agree` and `classifier train --add`.

    Examples:

      classifier review export.csv -n 200 -o to_code.xlsx

      classifier review export.csv -n 100 --random --blind -o agreement_sample.xlsx
    """
    from classifier.review import review_file

    with user_errors():
        summary = review_file(
            export,
            output,
            model=model,
            n=n,
            seed=seed,
            strategy="random" if random_sample else "informative",
            blind=blind,
            exclude=exclude or (),
            explore=explore,
            text_column=text_column,
            id_column=id_column,
            input_format=input_format,
            output_format=output_format,
            encoding=encoding,
            force=force,
        )
        typer.echo(summary.render(), err=True)


# ---------------------------------------------------------------------------------- data
@data_app.command("check")
def data_check(
    corpus: CorpusOption = None,
    codebook: CodebookOption = None,
    min_records: int = typer.Option(
        3000, "--min-records", help="Fewest records allowed.", metavar="N"
    ),
    min_per_cell: int = typer.Option(
        150, "--min-per-cell", help="Fewest records per theme x polarity.", metavar="N"
    ),
    markdown: bool = typer.Option(
        False, "--markdown", help="Print the counts as a Markdown table."
    ),
    update: Path | None = typer.Option(
        None,
        "--update",
        help="Regenerate the counts block of this Markdown file (the datasheet).",
        metavar="README",
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
    """A counts DataFrame as a Markdown table, its index as the first column."""
    return frame.to_markdown()


@data_app.command("split")
def data_split(
    corpus: Path = typer.Option(
        ..., "--corpus", help="Corpus to (re)assign splits in, in place.", metavar="FILE"
    ),
    codebook: CodebookOption = None,
    test_size: float = typer.Option(
        0.2, "--test-size", help="Share of records in the test split.", metavar="SHARE"
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the stratified split.", metavar="N"),
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
    """Console-script entry point.

    SIGTERM (and SIGINT) become exceptions in the main thread, so that a stopped command removes
    its temporary files and says what it left (see :func:`user_errors`) instead of dying on the
    spot; exit codes 130 and 143.
    """
    from classifier._errors import Terminated, handle_stop_signals, stop_signal
    from classifier._files import describe_stop, remove_temporaries

    handle_stop_signals()
    try:
        app(prog_name="classifier")
    except Terminated as exc:  # outside a command's user_errors, e.g. while it started up
        remove_temporaries()
        label, code = stop_signal(exc)
        typer.echo(describe_stop(label, 0), err=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
