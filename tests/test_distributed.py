"""Tagging on a Dask cluster (classifier.distributed, `classifier tag --dask`).

One real LocalCluster of two single-threaded worker processes serves the whole module, so the
model is pickled, loaded and cached exactly as on a multi-machine cluster.
"""

from __future__ import annotations

import json
import socket
import sys

import cloudpickle
import dask.dataframe as dd
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import classifier.distributed as dist
from classifier import ClassifierError, load_model
from classifier.cli import app
from classifier.distributed import csv_record_starts, read_csv_piece, tag_dataframe, tag_dataset
from classifier.tagging import tag_file, tag_frame

# Functions of this module run on the workers (client.run), which cannot import a test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
SECRET = "zebra-crossing-counsellor"  # a feedback text that must never reach a message
runner = CliRunner()


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _texts(corpus, n: int, seed: int) -> list:
    texts = corpus["text"].sample(n, replace=True, random_state=seed).tolist()
    # What real exports hold besides plain text: blanks, formulas, line breaks, quotes.
    texts[1], texts[2] = "", f'=HYPERLINK("x") {SECRET}'
    texts[3] = 'She said "take your time",\nand then\r\nshe waited.'
    return texts


@pytest.fixture(scope="module")
def frames(corpus) -> list[pd.DataFrame]:
    """Three partitions of a dataset, 3,000 rows in all."""
    sizes = (1_200, 1_000, 800)
    parts, start = [], 0
    for i, size in enumerate(sizes):
        parts.append(
            pd.DataFrame(
                {
                    "response_id": range(start, start + size),
                    "site": [f"S{k % 7}" for k in range(size)],
                    "feedback": _texts(corpus, size, seed=i),
                }
            )
        )
        start += size
    parts[1].loc[5, "feedback"] = None  # a missing value: empty
    return parts


@pytest.fixture()
def parquet_dataset(tmp_path, frames):
    folder = tmp_path / "export"
    folder.mkdir()
    for i, frame in enumerate(frames):
        frame.to_parquet(folder / f"part.{i}.parquet", index=False)
    return folder


def _read_parts(folder, fmt: str) -> pd.DataFrame:
    parts = sorted(folder.glob(f"part.*.{fmt}"))
    if fmt == "parquet":
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    options = {"dtype": str, "keep_default_na": False}
    return pd.concat([pd.read_csv(p, **options) for p in parts], ignore_index=True)


def _worker_loads(client) -> dict[str, tuple[int, int]]:
    def loads():
        from classifier.persistence import _load_compiled_cached

        info = _load_compiled_cached.cache_info()
        return info.hits + info.misses, info.misses

    return client.run(loads)


# ----------------------------------------------------------------------------- equal results
def test_parquet_dataset_equals_the_single_machine_result(
    client, parquet_dataset, frames, tmp_path, tiny_model_path
):
    before = _worker_loads(client)
    out = tmp_path / "tagged.parquet"
    summary = tag_dataset(parquet_dataset, out, model_path=tiny_model_path, scheduler=client)
    after = _worker_loads(client)

    # Part i is input partition i, rows in order; together they are tag_frame's result.
    parts = sorted(out.glob("part.*.parquet"))
    assert [p.name for p in parts] == [f"part.0000{i}.parquet" for i in range(3)]
    for part, frame in zip(parts, frames, strict=True):
        assert pd.read_parquet(part)["response_id"].tolist() == frame["response_id"].tolist()
    whole = pd.concat(frames, ignore_index=True)
    expected = tag_frame(whole, load_model(tiny_model_path), "feedback")
    pd.testing.assert_frame_equal(_read_parts(out, "parquet"), expected)

    # ... and the same file and counts as `classifier tag` on one machine.
    single = tmp_path / "single.parquet"
    whole.to_parquet(single, index=False)
    reference = tag_file(str(single), str(tmp_path / "single.tagged.parquet"), tiny_model_path)
    pd.testing.assert_frame_equal(
        _read_parts(out, "parquet"), pd.read_parquet(tmp_path / "single.tagged.parquet")
    )
    for name in ("rows_read", "rows_tagged", "rows_with_theme", "rows_no_theme",
                 "rows_empty_text", "rows_not_text", "theme_counts"):  # fmt: skip
        assert getattr(summary, name) == getattr(reference, name), name
    assert summary.rows_written == summary.rows_read == 3_000
    assert summary.partitions == 3 and summary.workers == 2
    assert "partitions" in summary.render() and SECRET not in summary.render()

    # Each partition was tagged once (the write and the counts share it), and each worker
    # process loaded the model file at most once, however many partitions it tagged.
    calls = {w: after[w][0] - before.get(w, (0, 0))[0] for w in after}
    assert sum(calls.values()) == 3
    assert all(misses <= 1 for _, misses in after.values())
    assert all(after[w][1] == 1 for w, n in calls.items() if n)


def test_csv_files_are_split_between_records_and_match_classifier_tag(
    client, frames, tmp_path, tiny_model_path
):
    folder = tmp_path / "csv"
    folder.mkdir()
    for i, frame in enumerate(frames[:2]):
        frame.to_csv(folder / f"export-{i}.csv", index=False)
    out = tmp_path / "tagged"
    before = _worker_loads(client)
    summary = tag_dataset(
        f"{folder}/*.csv",
        out,
        model_path=tiny_model_path,
        scheduler=client.scheduler.address,
        output_format="csv",
        blocksize=50_000,  # bytes: each file is cut into several partitions
    )
    assert summary.partitions > 2 and summary.rows_written == 2_200
    after = _worker_loads(client)  # every partition tagged once
    assert sum(after[w][0] - before[w][0] for w in after) == summary.partitions

    single = tmp_path / "single.csv"
    pd.concat(frames[:2], ignore_index=True).to_csv(single, index=False)
    tag_file(str(single), str(tmp_path / "single.tagged.csv"), tiny_model_path)
    # Byte for byte the rows classifier tag writes (formula guard, CRLF, quoting), each part
    # with its own header row.
    expected = (tmp_path / "single.tagged.csv").read_bytes()
    header, rows = expected.split(b"\r\n", 1)
    parts = [p.read_bytes() for p in sorted(out.glob("part.*.csv"))]
    assert all(part.startswith(header + b"\r\n") for part in parts)
    assert b"".join(part[len(header) + 2 :] for part in parts) == rows


def test_record_starts_never_fall_inside_a_quoted_field(tmp_path):
    records = ['"a ""quoted"" line\nbreak",1\n', "plain,2\r\n", '"x\n\ny",3\n', "last,4"]
    path = tmp_path / "t.csv"
    path.write_text("text,n\n" + "".join(records), encoding="utf-8")
    starts = csv_record_starts(path, blocksize=1)
    lengths = [len(r.encode()) for r in records]
    assert starts == [7 + sum(lengths[:i]) for i in range(len(records))]
    assert csv_record_starts(path, blocksize=None) == [7]  # header only: one piece per file
    pieces = zip(starts, [*starts[1:], path.stat().st_size], strict=True)
    read = [read_csv_piece((str(path), a, b), ["text", "n"]) for a, b in pieces]
    whole = pd.read_csv(path, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(pd.concat(read, ignore_index=True), whole)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(st.text(alphabet='a,"\n\r é', max_size=12), min_size=1, max_size=25),
    blocksize=st.integers(min_value=1, max_value=120),
)
def test_pieces_of_any_size_read_back_the_whole_file(tmp_path, texts, blocksize):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": texts, "n": range(len(texts))}).to_csv(path, index=False)
    whole = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    starts = csv_record_starts(path, blocksize)
    stops = [*starts[1:], path.stat().st_size]
    pieces = [
        read_csv_piece((str(path), a, b), ["text", "n"]) for a, b in zip(starts, stops, strict=True)
    ]
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), whole)


def test_tag_dataframe_is_lazy_and_keeps_partitions(client, frames, tiny_model_path):
    whole = pd.concat(frames, ignore_index=True)
    ddf = dd.from_pandas(whole, npartitions=4, sort=False)
    tagged = tag_dataframe(ddf, tiny_model_path)  # the text column is found
    assert tagged.npartitions == 4
    expected = tag_frame(whole, load_model(tiny_model_path), "feedback")
    result = tagged.compute()
    assert result.index.tolist() == whole.index.tolist()
    assert result["themes"].tolist() == expected["themes"].tolist()
    assert result["status"].tolist() == expected["status"].tolist()


# ------------------------------------------------------------------------------------ the CLI
def run(*args):
    return runner.invoke(app, ["tag", *map(str, args)])


def test_cli_tags_on_a_scheduler_and_writes_the_summary(
    client, parquet_dataset, tmp_path, tiny_model_path
):
    out, summary = tmp_path / "out.parquet", tmp_path / "summary.json"
    address = client.scheduler.address
    args = ["--dask", address, "--model", tiny_model_path, "--summary", summary]
    result = run(parquet_dataset, "-o", out, *args)
    assert result.exit_code == 0, result.output
    assert json.loads(summary.read_text())["rows_written"] == 3_000
    assert "on 2 Dask workers" in result.output

    again = run(parquet_dataset, "-o", out, *args)  # an existing output is kept...
    assert again.exit_code == 1 and "--force" in again.output
    assert run(parquet_dataset, "-o", out, *args, "--force").exit_code == 0  # ... or replaced

    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    refused = run(parquet_dataset, "-o", keep, *args, "--force")
    assert refused.exit_code == 1 and (keep / "notes.txt").exists()

    assert run(parquet_dataset, *args).exit_code == 2  # no --output folder
    assert run(parquet_dataset, "-o", out, *args, "--jobs", "2").exit_code == 2


def test_cli_local_cluster(parquet_dataset, tmp_path, tiny_model_path):
    out = tmp_path / "local.csv"
    result = run(
        parquet_dataset / "part.2.parquet", "-o", out, "--dask", "local", "--jobs", "1",
        "--model", tiny_model_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(_read_parts(out, "csv")) == 800 and "on 1 Dask workers" in result.output


# ---------------------------------------------------------------------------------- errors
def _one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert SECRET not in result.output
    for needle in needles:
        assert needle in lines[0]


def test_missing_extra_says_what_to_install(monkeypatch, parquet_dataset, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    result = run(parquet_dataset, "-o", tmp_path / "out", "--dask", "local")
    _one_line_error(result, "pip install 'therapy-themes-classifier[dask]'")


def test_unreachable_scheduler_names_the_address(monkeypatch, parquet_dataset, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1.0)
    result = run(parquet_dataset, "-o", tmp_path / "out", "--dask", address)
    _one_line_error(result, address, "cannot reach")
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_unsupported_formats(parquet_dataset, tmp_path):
    jsonl = tmp_path / "export.jsonl"
    jsonl.write_text('{"feedback": "x"}\n')
    _one_line_error(run(jsonl, "-o", tmp_path / "out", "--dask", "local"), "Parquet or CSV")
    xlsx_out = run(parquet_dataset, "-o", tmp_path / "out.xlsx", "--dask", "local")
    _one_line_error(xlsx_out, "Parquet or CSV")
    _one_line_error(run(tmp_path / "nothing", "-o", tmp_path / "o", "--dask", "local"), "no such")


def test_a_failing_partition_leaves_no_output(client, frames, tmp_path, tiny_model_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    frames[0].to_csv(folder / "a.csv", index=False)
    with open(folder / "b.csv", "w", encoding="utf-8") as handle:  # a row with extra fields
        handle.write(f"response_id,site,feedback\n1,S1,fine\n2,S2,{SECRET},extra,fields\n")
    with pytest.raises(ClassifierError) as error:
        tag_dataset(folder, tmp_path / "out", model_path=tiny_model_path, scheduler=client)
    assert "b.csv" in str(error.value) and "malformed" in str(error.value)
    assert SECRET not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]  # no output, no temporary
