"""Table input and output helpers."""

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from classifier.io import _neutralise_frame, neutralise_formula

cells = st.one_of(
    st.text(alphabet="=+-@\t\r.0123456789eE abc", max_size=6),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=False),
    st.none(),
)


@given(st.lists(st.tuples(cells, st.text(max_size=5)), max_size=20))
def test_neutralising_a_frame_is_the_function_applied_to_every_cell(rows):
    frame = pd.DataFrame(rows, columns=["mixed", "text"])
    frame["text"] = frame["text"].astype("str")  # pandas' own string dtype, as read_csv gives
    expected = frame.astype(object).map(neutralise_formula)
    result = _neutralise_frame(frame)
    pd.testing.assert_frame_equal(result.astype(object), expected, check_dtype=False)
    assert frame.equals(pd.DataFrame(rows, columns=["mixed", "text"]).astype({"text": "str"}))


# ------------------------------------------------------------------ regressions (hardening)
import io  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from classifier import ClassifierError  # noqa: E402
from classifier.io import ChunkWriter, TableReader  # noqa: E402


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_jsonl_chunks_keep_the_first_chunks_columns(tmp_path):
    # Keys missing or reordered after the first chunk used to shift columns in CSV output.
    path = tmp_path / "drift.jsonl"
    _write_jsonl(
        path,
        [{"id": 1, "text": "a", "site": "x"}, {"id": 2, "text": "b", "site": "y"},
         {"text": "c", "id": 3}, {"site": "z", "id": 4, "text": "d"}, {"id": 5}],
    )  # fmt: skip
    chunks = list(TableReader(str(path), "jsonl", chunk_size=2))
    assert [list(chunk.columns) for chunk in chunks] == [["id", "text", "site"]] * 3
    frame = pd.concat(chunks, ignore_index=True)
    assert frame["id"].tolist() == [1, 2, 3, 4, 5]
    assert frame["text"].tolist()[:4] == ["a", "b", "c", "d"] and pd.isna(frame["text"][4])
    assert frame["site"].tolist()[3] == "z"


def test_a_key_new_after_the_first_chunk_is_an_error_naming_the_record(tmp_path):
    path = tmp_path / "new_key.jsonl"
    _write_jsonl(path, [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}, {"id": 3, "extra": 1}])
    with pytest.raises(ClassifierError, match="record 3: has a key that none"):
        list(TableReader(str(path), "jsonl", chunk_size=2))


def test_xlsx_output_drops_control_characters_and_neutralises_headers(tmp_path):
    pytest.importorskip("openpyxl")
    target = tmp_path / "out.xlsx"
    writer = ChunkWriter(str(target), "xlsx")
    frame = pd.DataFrame({"=HYPERLINK(1)": ["ok"], "text": ["a\x00b\x07c\td\ne"]})
    writer.write(frame)
    writer.commit()
    back = pd.read_excel(target, dtype=str)
    assert list(back.columns) == ["'=HYPERLINK(1)", "text"]
    assert back["text"][0] == "abc\td\ne"


def test_xlsx_refuses_a_cell_longer_than_excel_allows(tmp_path):
    pytest.importorskip("openpyxl")
    target = tmp_path / "long.xlsx"
    writer = ChunkWriter(str(target), "xlsx")
    with pytest.raises(ClassifierError, match="row 2, column 'text': longer than 32,767"):
        writer.write(pd.DataFrame({"text": ["short", "x" * 40_000]}))
    writer.abort()
    assert not target.exists() and not list(tmp_path.iterdir())


def test_jsonl_on_stdin_is_recognised_without_format(tmp_path):
    code = "from classifier.io import detect_format; print(detect_format('-'))"
    for data, expected in ((b'  {"text": "SECRET"}\n', "jsonl"), (b"id,text\n1,a\n", "csv")):
        result = subprocess.run(
            [sys.executable, "-c", code], input=data, capture_output=True, timeout=60
        )
        assert result.stdout.decode().strip() == expected


def test_column_names_in_messages_are_cut_short(tmp_path):
    from classifier.tagging import find_text_column

    header_that_is_data = "SECRET my therapist kept cancelling and I felt awful about it"
    with pytest.raises(ClassifierError) as caught:
        find_text_column([header_that_is_data, "id"], None, "f.csv")
    assert "SECRET my therapist" in str(caught.value)  # the start, to recognise it
    assert "awful" not in str(caught.value)


@pytest.mark.parametrize("fmt", ["parquet", "xlsx"])
def test_binary_formats_to_stdout_are_one_valid_file(fmt, monkeypatch):
    # Each chunk used to open a new writer on stdout: the bytes were not one readable file.
    pytest.importorskip("pyarrow" if fmt == "parquet" else "openpyxl")
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", type("Out", (), {"buffer": buffer})())
    writer = ChunkWriter("-", fmt)
    for i in range(3):
        writer.write(pd.DataFrame({"id": [str(i)] * 2, "text": ["a", "b"]}))
    writer.commit()
    buffer.seek(0)
    back = pd.read_parquet(buffer) if fmt == "parquet" else pd.read_excel(buffer, dtype=str)
    assert back["id"].tolist() == ["0", "0", "1", "1", "2", "2"]
