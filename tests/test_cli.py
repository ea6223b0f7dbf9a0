import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from classifier.cli import app

runner = CliRunner()
COMMANDS = [
    [],
    ["tag"],
    ["columns"],
    ["report"],
    ["explain"],
    ["themes"],
    ["info"],
    ["train"],
    ["evaluate"],
    ["agree"],
    ["review"],
    ["data"],
    ["data", "check"],
    ["data", "split"],
]


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.output.startswith("classifier ")


@pytest.fixture()
def export(tmp_path):
    path = tmp_path / "export.csv"
    pd.DataFrame({"id": ["a", "b"], "comment": ["She listened to me.", ""]}).to_csv(
        path, index=False
    )
    return path


def test_tag_writes_output_and_summary(export, tmp_path, tiny_model_path):
    out, summary = tmp_path / "out.csv", tmp_path / "summary.json"
    result = run("tag", export, "-o", out, "--model", tiny_model_path, "--summary", summary)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 2
    stats = json.loads(summary.read_text())
    assert stats["rows_read"] == 2 and stats["rows_empty_text"] == 1
    assert "rows read" in result.output  # the summary goes to stderr (mixed in by CliRunner)


def test_tag_reads_stdin_and_writes_jsonl_to_stdout(tiny_model_path):
    result = run(
        "tag",
        "-",
        "--format",
        "csv",
        "--model",
        tiny_model_path,
        "-q",
        input="id,text\n1,She never turned up.\n2,Fine\n",
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and [r["id"] for r in lines] == ["1", "2"]


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (None, ["missing.csv"], "missing.csv: no such file"),
        ("id,text\n", ["{f}", "--text-column", "nope"], "no column 'nope'"),
        ("", ["{f}"], "the file is empty"),
        ("a,b\n1,2\n", ["{f}"], "no obvious text column"),
        ('id,text\n1,"open\n', ["{f}"], "malformed CSV row"),
        ("x", ["{f}", "--format", "docx"], "unknown format 'docx'"),
    ],
)
def test_bad_input_is_one_line_exit_1(tmp_path, tiny_model_path, setup, args, message):
    f = tmp_path / "in.csv"
    if setup is not None:
        f.write_text(setup)
    argv = [a.format(f=f) for a in args]
    result = run("tag", *argv, "-o", tmp_path / "o.csv", "--model", tiny_model_path)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_errors_never_contain_feedback_text(tmp_path, tiny_model_path):
    secret = "my private secret sentence"
    f = tmp_path / "in.csv"
    f.write_text(f'id,text\n1,"{secret}\n')  # unclosed quote
    result = run("tag", f, "-o", tmp_path / "o.csv", "--model", tiny_model_path)
    assert result.exit_code == 1 and secret not in result.output


def test_usage_errors_exit_2():
    assert run("tag").exit_code == 2
    assert run("tag", "x.csv", "--jobs", "0").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_explain_prints_evidence(tiny_model_path):
    result = run(
        "explain",
        "--model",
        tiny_model_path,
        "--json",
        "I felt heard. But she cancelled twice this month.",
    )
    assert result.exit_code == 0
    assert set(json.loads(result.output)) == {"labels", "themes", "scores", "status"}


def test_columns_lists_names_as_the_file_has_them(tmp_path):
    """The names errors do not show: empty, repeated and multi-line ones kept as they are."""
    source = tmp_path / "in.csv"
    source.write_text('id,,feedback,id,"two\nlines"\n1,x,a,b,c\n', encoding="utf-8")
    result = run("columns", source)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "1\tid",
        "2\t",
        "3\tfeedback",
        "4\tid",
        '5\t"two\\nlines"',
    ]
    result = run("columns", tmp_path / "missing.csv")
    assert result.exit_code == 1 and "missing.csv" in result.output


def test_repeated_and_empty_column_names_are_written_back_as_they_were(tmp_path, tiny_model_path):
    source = tmp_path / "in.csv"
    source.write_text("id,,feedback,id\n1,x,she listened,b\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = run("tag", source, "-o", out, "--model", tiny_model_path, "-q")
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("id,,feedback,id,themes,")
    # which "id" is the id column cannot be told; JSON Lines keys must be unique
    result = run(
        "tag", source, "-o", tmp_path / "o.csv", "--model", tiny_model_path, "--id-column", "id"
    )
    assert result.exit_code == 1 and "columns 1 and 4" in result.output
    result = run("tag", source, "-o", tmp_path / "o.jsonl", "--model", tiny_model_path)
    assert result.exit_code == 1 and "columns 1 and 4 are all named 'id'" in result.output


def test_themes_lists_the_codebook():
    result = run("themes")
    assert result.exit_code == 0 and "genuineness" in result.output and "progress" in result.output


def test_info_shows_the_model_card():
    result = run("info")
    assert result.exit_code == 0 and "sha256" in result.output


def test_data_check_passes_on_the_shipped_corpus():
    result = run("data", "check")
    assert result.exit_code == 0, result.output
    assert "positive total" in result.output


def test_data_check_fails_on_a_broken_corpus(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "1",
                "text": "x",
                "labels": {"nope": "positive"},
                "source": "authored",
                "split": "train",
            }
        )
        + "\n"
    )
    result = run("data", "check", "--corpus", path)
    assert result.exit_code == 1 and "unknown theme 'nope'" in result.output


def test_installed_script_runs_in_a_subprocess(export, tmp_path, tiny_model_path):
    script = os.path.join(os.path.dirname(sys.executable), "classifier")
    done = subprocess.run(
        [
            script,
            "tag",
            str(export),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--model",
            str(tiny_model_path),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2
    done = subprocess.run(
        [sys.executable, "-m", "classifier", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("classifier ")


def test_short_rows_are_tagged_and_reported_on_one_line(tmp_path, tiny_model_path):
    source = tmp_path / "short.csv"
    source.write_text("id,feedback,site\n1,SECRET one,a\n2,SECRET two\n3,three,b\n")
    out = tmp_path / "out.csv"
    result = run("tag", source, "-o", out, "--model", tiny_model_path, "--quiet")
    assert result.exit_code == 0
    assert "1 row(s) had fewer fields than the header (first at line 3)" in result.stderr
    assert "SECRET" not in result.stderr
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert frame["id"].tolist() == ["1", "2", "3"] and frame["site"].tolist() == ["a", "", "b"]


def test_sheet_chooses_the_excel_sheet(tmp_path, tiny_model_path):
    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"note": ["cover"]}).to_excel(writer, sheet_name="About", index=False)
        pd.DataFrame({"feedback": ["She listened.", "Late again."]}).to_excel(
            writer, sheet_name="Responses", index=False
        )
    out = tmp_path / "out.csv"
    result = run("tag", book, "-o", out, "--model", tiny_model_path, "--sheet", "Responses")
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(out)["feedback"].tolist() == ["She listened.", "Late again."]
    missing = run("tag", book, "-o", tmp_path / "x.csv", "--model", tiny_model_path,
                  "--sheet", "Nope")  # fmt: skip
    assert missing.exit_code == 1 and "no sheet 'Nope'" in missing.stderr


def test_pii_is_refused_with_dask(tmp_path):
    result = run("tag", tmp_path / "x.csv", "--dask", "local", "--pii")
    assert result.exit_code == 2 and "--dask" in result.stderr
