import os
import stat

import pytest

from classifier._errors import ClassifierError
from classifier._files import atomic_path, write_text_atomically


def test_an_error_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_written_files_get_the_mode_the_umask_asks_for(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_text_atomically(tmp_path / "card.md", "text")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == "text"


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ClassifierError, match="does not exist"):
        write_text_atomically(tmp_path / "nope" / "x.txt", "text")
