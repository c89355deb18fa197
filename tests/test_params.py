"""Query parameters: accepted values, and a one-line 400 for everything else."""

import pytest
from werkzeug.exceptions import BadRequest

from streamlib import float_param, int_param
from streamlib.params import check_duration


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 7), ("0", 0), ("10", 10), ("+3", 3), ("007", 7)]
)
def test_int_param_accepts_integers_in_range(raw, expected):
    args = {} if raw is None else {"n": raw}
    assert int_param(args, "n", 7, 0, 10) == expected


@pytest.mark.parametrize(
    "raw", ["-1", "11", "abc", "", "1.5", "1e3", "0x10", "٣", " 4 ", "1_0", "4\n"]
)
def test_int_param_refuses_with_a_400_naming_the_parameter(raw):
    with pytest.raises(BadRequest) as refused:
        int_param({"n": raw}, "n", 7, 0, 10)
    assert refused.value.description == f"n: expected an integer from 0 to 10, got {raw!r}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 0.5), ("0", 0.0), ("2.5", 2.5), ("1e-3", 0.001), (".5", 0.5), ("3.", 3.0)],
)
def test_float_param_accepts_numbers_in_range(raw, expected):
    args = {} if raw is None else {"d": raw}
    assert float_param(args, "d", 0.5, 0.0, 10.0) == expected


@pytest.mark.parametrize(
    "raw", ["-0.1", "1e9", "nan", "inf", "-inf", "infinity", "abc", "", "1_0", "٣", " 1"]
)
def test_float_param_refuses_out_of_range_and_non_finite(raw):
    with pytest.raises(BadRequest) as refused:
        float_param({"d": raw}, "d", 0.5, 0.0, 10.0)
    assert "\n" not in refused.value.description
    assert refused.value.description.startswith("d: expected a number from 0 to 10, got")


@pytest.mark.parametrize(
    ("count", "gap", "refused"),
    [(601, 1.0, False), (602, 1.0, True), (0, 1e6, False), (1, 1e6, False), (2, 601.0, True)],
)
def test_check_duration_refuses_streams_over_600_seconds(count, gap, refused):
    if refused:
        with pytest.raises(BadRequest) as error:
            check_duration("gap", count, "items", gap)
        assert error.value.description.startswith(f"gap: {count} items {gap:g} s apart would take")
    else:
        assert check_duration("gap", count, "items", gap) is None


def test_large_bounds_are_printed_as_plain_numbers():
    with pytest.raises(BadRequest) as refused:
        int_param({"size": "-1"}, "size", 0, 0, 1024**3)
    assert "from 0 to 1073741824, got '-1'" in refused.value.description
    with pytest.raises(BadRequest) as refused:
        float_param({"delay": "x"}, "delay", 0.0, 0.0, 10.5)
    assert "from 0 to 10.5" in refused.value.description
