"""Coded tables: values, columns, errors naming row and column, and write-read round trips."""

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier._errors import ClassifierError
from classifier.codebook import load_codebook
from classifier.labels import (
    LabelScheme,
    labels_from_frame,
    parse_code,
    read_coded,
    second_coder_columns,
    write_coded,
)

SCHEME = LabelScheme.from_codebook()
THEMES = SCHEME.themes
POSITIVE, NEGATIVE = SCHEME.polarities


def coded_frame(**columns):
    frame = pd.DataFrame({"id": ["r1", "r2", "r3"], "feedback": ["one", "two", "three"]})
    for theme in THEMES:
        frame[theme] = columns.get(theme, ["", "", ""])
    for name, values in columns.items():
        if name not in THEMES:
            frame[name] = values
    return frame


def test_themes_come_from_the_codebook():
    assert SCHEME.themes == load_codebook().theme_ids
    assert SCHEME.polarities == tuple(load_codebook().polarities)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("positive", POSITIVE),
        ("NEGATIVE ", NEGATIVE),
        ("strength", POSITIVE),
        ("Concern", NEGATIVE),
        ("+", POSITIVE),
        ("-", NEGATIVE),
        ("'-", NEGATIVE),  # as a spreadsheet (or our CSV writer) protects it from formula use
        ("1", POSITIVE),
        ("-1", NEGATIVE),
        ("1.0", POSITIVE),
        (1, POSITIVE),
        (-1, NEGATIVE),
        (-1.0, NEGATIVE),
        ("", None),
        ("  ", None),
        (None, None),
        (float("nan"), None),
        ("0", None),
        (0, None),
    ],
)
def test_accepted_values(value, expected):
    assert parse_code(value, SCHEME.vocabulary()) == expected


@pytest.mark.parametrize("value", ["maybe", "2", "pos", True, "++"])
def test_unknown_values_raise(value):
    with pytest.raises(ValueError):
        parse_code(value, SCHEME.vocabulary())


def test_reads_one_column_per_theme_with_ids_and_text():
    frame = coded_frame(empathy=["positive", "", "-"], progress=["", "concern", "+1"])
    table = labels_from_frame(frame, SCHEME, "coded.csv")
    assert table.text_column == "feedback" and table.id_column == "id"
    assert table.ids == ["r1", "r2", "r3"]
    assert table.labels == [
        {"empathy": POSITIVE},
        {"progress": NEGATIVE},
        {"empathy": NEGATIVE, "progress": POSITIVE},
    ]
    assert table.coding_columns == {theme: theme for theme in THEMES}


def test_unknown_value_names_file_row_and_column_not_the_text():
    frame = coded_frame(trust=["", "", "maybe"])
    with pytest.raises(ClassifierError) as error:
        labels_from_frame(frame, SCHEME, "coded.csv")
    message = str(error.value)
    assert "coded.csv, row 3, column 'trust': unknown value 'maybe'" in message
    assert "positive/negative" in message


def test_a_long_bad_value_is_not_quoted():
    secret = "my private secret sentence that someone pasted in the wrong column"
    frame = coded_frame(trust=["", secret, ""])
    with pytest.raises(ClassifierError) as error:
        labels_from_frame(frame, SCHEME, "coded.csv")
    assert secret not in str(error.value) and "row 2" in str(error.value)
    assert f"a value of {len(secret)} characters" in str(error.value)


def test_missing_theme_column_is_an_error():
    frame = coded_frame().drop(columns=["boundaries"])
    with pytest.raises(ClassifierError, match="no coding column for theme.s. boundaries"):
        labels_from_frame(frame, SCHEME, "coded.csv")


def test_a_column_of_codes_that_is_no_theme_is_an_unknown_theme():
    frame = pd.DataFrame({"text": ["a", "b"], "warmth": ["positive", ""]})
    with pytest.raises(ClassifierError) as error:
        labels_from_frame(frame, SCHEME, "coded.csv")
    assert "'warmth' hold codes but are not themes" in str(error.value)


def test_extra_coding_like_columns_beside_the_themes_are_reported():
    frame = coded_frame(warmth=["strength", "", ""])
    table = labels_from_frame(frame, SCHEME, "coded.csv")
    assert any("'warmth'" in note for note in table.notes)


def test_theme_columns_match_ignoring_case():
    frame = coded_frame(empathy=["+", "", ""]).rename(columns={"empathy": " Empathy"})
    assert labels_from_frame(frame, SCHEME, "c.csv").labels[0] == {"empathy": POSITIVE}


def test_codes_column_as_tag_writes_it():
    frame = pd.DataFrame(
        {"text": ["a", "b", "c"], "themes": ["empathy+; boundaries-", "", "trust: strength"]}
    )
    table = labels_from_frame(frame, SCHEME, "c.csv")
    assert table.labels == [
        {"empathy": POSITIVE, "boundaries": NEGATIVE},
        {},
        {"trust": POSITIVE},
    ]
    frame.loc[1, "themes"] = "warmth+"
    with pytest.raises(ClassifierError, match=r"c.csv, row 2, column 'themes': unknown theme"):
        labels_from_frame(frame, SCHEME, "c.csv")
    frame.loc[1, "themes"] = "empathy"
    with pytest.raises(ClassifierError, match="needs a polarity"):
        labels_from_frame(frame, SCHEME, "c.csv")


def test_jsonl_corpus_records(tmp_path):
    path = tmp_path / "coded.jsonl"
    records = [
        {"id": "a", "text": "one", "labels": {"trust": "positive"}, "source": "x"},
        {"id": "b", "text": "two", "labels": {}},
    ]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert read_coded(path, SCHEME).labels == [{"trust": POSITIVE}, {}]
    records[1]["labels"] = {"warmth": "positive"}
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    with pytest.raises(ClassifierError, match="row 2, column 'labels': unknown theme 'warmth'"):
        read_coded(path, SCHEME)


def test_rows_without_text_are_skipped_and_counted():
    frame = coded_frame(empathy=["+", "+", "+"])
    frame.loc[1, "feedback"] = "  "
    table = labels_from_frame(frame, SCHEME, "c.csv")
    assert len(table) == 2 and table.rows == [1, 3] and table.skipped == {"no text": 1}


def test_the_coded_column_keeps_only_marked_rows_when_any_is_marked():
    frame = coded_frame(empathy=["+", "+", ""], coded=["x", "", ""])
    table = labels_from_frame(frame, SCHEME, "c.csv")
    assert table.ids == ["r1"] and table.skipped == {"not marked coded": 2}
    blank = labels_from_frame(coded_frame(coded=["", "", ""]), SCHEME, "c.csv")
    assert len(blank) == 3
    with pytest.raises(ClassifierError, match="row 2, column 'coded': unknown mark"):
        labels_from_frame(coded_frame(coded=["x", "half", ""]), SCHEME, "c.csv")


def test_a_valid_split_column_is_kept():
    frame = coded_frame(split=["train", "test", "train"])
    assert labels_from_frame(frame, SCHEME, "c.csv").splits == ["train", "test", "train"]
    assert labels_from_frame(coded_frame(split=["a", "b", "c"]), SCHEME, "c.csv").splits is None


def test_second_coder_column_specs():
    columns = ["text", *THEMES, *(f"{theme}_2" for theme in THEMES)]
    by_pattern = second_coder_columns("{theme}_2", columns, SCHEME)
    assert by_pattern == {theme: f"{theme}_2" for theme in THEMES}
    listed = ",".join(f"{theme}_2" for theme in THEMES)
    assert second_coder_columns(listed, columns, SCHEME) == by_pattern
    pairs = ",".join(f"{theme}={theme}_2" for theme in THEMES)
    assert second_coder_columns(pairs, columns, SCHEME) == by_pattern
    with pytest.raises(ClassifierError, match="unknown theme 'warmth'"):
        second_coder_columns("warmth=x", columns, SCHEME)
    with pytest.raises(ClassifierError, match="no column"):
        second_coder_columns("{theme}_3", columns[:3] + ["empathy_3"], SCHEME)


def test_the_scheme_of_a_model_is_its_codebook(tiny_model):
    scheme = LabelScheme.from_model(tiny_model.compile())
    assert scheme == LabelScheme.from_codebook()


label_sets = st.lists(
    st.dictionaries(st.sampled_from(THEMES), st.sampled_from(SCHEME.polarities), max_size=3),
    min_size=1,
    max_size=6,
)
# Texts a spreadsheet keeps as they are: no formula start (those get a protective apostrophe),
# no control characters (dropped by Excel), not blank (such rows are skipped), and not
# surrounded by whitespace (Excel keeps it, but a number-like text may not survive a format).
plain_texts = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="=+-@"
    ),
    min_size=1,
    max_size=40,
).filter(lambda text: text.strip() == text and text.strip())


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx", ".parquet", ".jsonl"])
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(labels=label_sets, data=st.data())
def test_write_then_read_round_trips(tmp_path_factory, suffix, labels, data):
    texts = data.draw(st.lists(plain_texts, min_size=len(labels), max_size=len(labels)))
    ids = [f"id-{i}" for i in range(len(labels))]
    path = tmp_path_factory.mktemp("round") / f"coded{suffix}"
    write_coded(path, texts, labels, SCHEME, ids=ids)
    table = read_coded(path, SCHEME)
    assert table.labels == [dict(label) for label in labels]
    assert table.texts == texts and table.ids == ids


def test_write_refuses_unknown_themes_and_existing_files(tmp_path):
    with pytest.raises(ClassifierError, match="unknown theme"):
        write_coded(tmp_path / "a.csv", ["x"], [{"warmth": "positive"}], SCHEME)
    write_coded(tmp_path / "a.csv", ["x"], [{}], SCHEME)
    with pytest.raises(ClassifierError, match="already exists"):
        write_coded(tmp_path / "a.csv", ["x"], [{}], SCHEME)
