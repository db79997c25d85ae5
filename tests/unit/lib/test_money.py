"""DESIGN 6.4 allocation and minor-unit conversion: hand-worked cases and invariants."""

from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.lib.money import MoneyError, allocate, convert, format_money, round_half_up, to_major, to_minor


def test_three_way_split_gives_the_odd_cent_to_the_smaller_id() -> None:
    assert allocate(100, [("b", D(1)), ("a", D(1)), ("c", D(1))]) == {"a": 34, "b": 33, "c": 33}


def test_largest_fraction_wins_before_weight() -> None:
    # 10 over 0.55/0.45: exact 5.5/4.5, both .5 -> the larger weight takes the cent.
    assert allocate(10, [("x", D("0.45")), ("y", D("0.55"))]) == {"x": 4, "y": 6}
    # 7 over 1/2/4 of 7: exact 1, 2, 4 -> nothing left over.
    assert allocate(7, [("a", D(1)), ("b", D(2)), ("c", D(4))]) == {"a": 1, "b": 2, "c": 4}
    # 100 over 0.333/0.333/0.334: 33.3, 33.3, 33.4 -> the .4 gets the unit.
    assert allocate(100, [("a", D("0.333")), ("b", D("0.333")), ("c", D("0.334"))]) == {
        "a": 33,
        "b": 33,
        "c": 34,
    }


def test_tie_on_fraction_and_weight_goes_to_the_given_stable_id() -> None:
    result = allocate(1, [(1, D(1)), (2, D(1))], sort_keys=["zed@x", "amy@x"])
    assert result == {1: 0, 2: 1}


def test_negative_amount_is_the_mirror_of_the_positive_one() -> None:
    weights = [("a", D("0.2")), ("b", D("0.3")), ("c", D("0.5"))]
    assert allocate(-101, weights) == {k: -v for k, v in allocate(101, weights).items()}


def test_zero_weights_get_nothing_and_all_zero_is_refused() -> None:
    assert allocate(5, [("a", D(0)), ("b", D(2))]) == {"a": 0, "b": 5}
    with pytest.raises(MoneyError):
        allocate(5, [("a", D(0))])
    with pytest.raises(MoneyError):
        allocate(5, [("a", D(-1)), ("b", D(2))])


def test_huge_amounts_with_long_decimals_stay_exact() -> None:
    amount = 10**30 + 7
    weights = [("a", D("0.1234567890123456789012345678901")), ("b", D("0.8765432109876543210987654321099"))]
    out = allocate(amount, weights)
    assert sum(out.values()) == amount
    exact_a = amount * Fraction(weights[0][1])  # the weights sum to 1
    assert abs(out["a"] - exact_a) < 1


weights_st = st.lists(
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=30,
).filter(lambda ws: any(w > 0 for w in ws))


@given(amount=st.integers(min_value=-(10**15), max_value=10**15), ws=weights_st)
def test_allocation_invariants(amount: int, ws: list[D]) -> None:
    out = allocate(amount, [(i, w) for i, w in enumerate(ws)])
    assert sum(out.values()) == amount
    total = sum(ws)
    for i, w in enumerate(ws):
        if w == 0:
            assert out[i] == 0
        exact = amount * Fraction(w) / Fraction(total)
        assert abs(out[i] - exact) < 1  # nobody is more than one unit from their exact share
    # Order of the input does not change anyone's amount.
    rev = allocate(amount, [(i, w) for i, w in reversed(list(enumerate(ws)))])
    assert rev == out


def test_minor_units() -> None:
    assert to_minor("12500.10", "USD") == 1250010
    assert to_minor("500", "JPY") == 500
    assert to_minor("1.234", "KWD") == 1234
    assert to_major(1250010, "USD") == D("12500.10")
    with pytest.raises(MoneyError):
        to_minor("1.005", "USD")
    with pytest.raises(MoneyError):
        to_minor("1e3", "USD")
    with pytest.raises(MoneyError):
        to_minor("12", "XXX")


def test_convert_rounds_half_up_once() -> None:
    assert convert(1000, D("1.0850"), "EUR", "USD") == 1085
    assert convert(1, D("0.5"), "EUR", "USD") == 1  # 0.5 -> 1
    assert convert(100, D("1"), "JPY", "USD") == 10000
    assert round_half_up(D("-2.5")) == -3
    assert format_money(123456789, "USD") == "USD 1,234,567.89"
