import re

import pytest
from conftest import TINY_PARAMS

import classifier
from classifier import ClassifierError
from classifier.codebook import DEFAULT_CODEBOOK_PATH, load_codebook
from classifier.model import ThemeClassifier


def test_packaged_codebook_defines_six_themes_with_examples():
    book = load_codebook()
    assert book.theme_ids == (
        "genuineness",
        "trust",
        "empathy",
        "collaboration",
        "boundaries",
        "progress",
    )
    for theme in book.themes:
        assert len(theme.examples_positive) >= 3 and len(theme.examples_negative) >= 3
        assert theme.include and theme.exclude and theme.definition


def test_themes_constant_comes_from_the_codebook_file():
    assert classifier.THEMES == load_codebook(DEFAULT_CODEBOOK_PATH).theme_ids


def test_a_researchers_codebook_drives_training(tmp_path, tiny_corpus):
    path = tmp_path / "two.toml"
    path.write_text(
        'name = "two"\n'
        '[[themes]]\nid = "warmth"\nname = "Warmth"\ndefinition = "Felt cared for."\n'
        '[[themes]]\nid = "reliability"\nname = "Reliability"\ndefinition = "Showed up."\n'
    )
    mapping = {"empathy": "warmth", "boundaries": "reliability"}
    labels = [
        {mapping[t]: p for t, p in lab.items() if t in mapping} for lab in tiny_corpus["labels"]
    ]
    model = ThemeClassifier(codebook=str(path), **TINY_PARAMS).fit(
        tiny_corpus["text"].tolist(), labels
    )
    assert model.themes_ == ("warmth", "reliability")
    assert set(model.classify("She was so warm and caring.").scores) == {"warmth", "reliability"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("name = 'x'\n", "at least one [[themes]]"),
        ("[[themes]]\nid = 'a'\nname = 'A'\n", "lacks definition"),
        (
            "[[themes]]\nid='a'\nname='A'\ndefinition='d'\n[[themes]]\nid='a'\nname='B'\n"
            "definition='e'\n",
            "appear twice",
        ),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_bad_codebooks_fail_with_the_file_name(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ClassifierError, match=re.escape(message)) as error:
        load_codebook(path)
    assert "bad.toml" in str(error.value)
