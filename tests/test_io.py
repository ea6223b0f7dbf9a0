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
