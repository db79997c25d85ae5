"""DESIGN 3.1 data-driven model: exact first-order Markov removal effects, checked against a reference.

The reference below shares no code with okr: it builds the transition probabilities from the paths
itself and solves the absorbing chain by Cramer's rule, with determinants by Laplace expansion.
"""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Context
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr.attribution.core import (
    CONVERSION,
    NULL,
    START,
    AttributionError,
    Opportunity,
    Touch,
    channel_path,
    markov_paths,
    markov_removal_effects,
    solve_counted_paths,
    solve_removal_effects,
)

END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

# -- an independent exact reference -----------------------------------------------------------------------


def _det(m: list[list[Fraction]]) -> Fraction:
    if not m:
        return Fraction(1)
    total = Fraction(0)
    for j, head in enumerate(m[0]):
        if head:
            minor = [row[:j] + row[j + 1 :] for row in m[1:]]
            total += (-1) ** j * head * _det(minor)
    return total


def reference(paths: list[tuple[list[str], bool]]) -> tuple[Fraction, dict[str, Fraction]]:
    """(P, {channel: RE}) by the textbook method, computed from scratch."""
    visits = [([c for c, _ in itertools.groupby(p)], won) for p, won in paths]
    visits = [(p, won) for p, won in visits if p]
    states = sorted({c for p, _ in visits for c in p})
    # Transition probabilities: p[a][b] over states + "conv"/"null"; "start" row kept apart.
    counts: dict[str, dict[str, int]] = {}
    for p, won in visits:
        for a, b in zip(["start", *p], [*p, "conv" if won else "null"], strict=True):
            counts.setdefault(a, {}).setdefault(b, 0)
            counts[a][b] += 1

    def prob(a: str, b: str) -> Fraction:
        row = counts.get(a, {})
        return Fraction(row.get(b, 0), sum(row.values())) if row else Fraction(0)

    def reach(removed: str | None) -> Fraction:
        kept = [s for s in states if s != removed]
        # (I - Q) x = R, where Q leaves out the removed state (its inflow goes to null).
        a = [[Fraction(int(i == j)) - prob(si, sj) for j, sj in enumerate(kept)] for i, si in enumerate(kept)]
        r = [prob(s, "conv") for s in kept]
        d = _det(a)
        x = []
        for col in range(len(kept)):
            swapped = [[*row[:col], r[i], *row[col + 1 :]] for i, row in enumerate(a)]
            x.append(_det(swapped) / d)
        return sum((prob("start", s) * xi for s, xi in zip(kept, x, strict=True)), Fraction(0))

    p_all = reach(None)
    return p_all, {c: (1 - reach(c) / p_all) if p_all else Fraction(0) for c in states}


# -- textbook examples, by hand ---------------------------------------------------------------------------


def test_the_classic_three_path_example() -> None:
    # C1 > C2 > C3 > conversion, C1 > null, C2 > C3 > null.
    paths = [(["C1", "C2", "C3"], True), (["C1"], False), (["C2", "C3"], False)]
    result = solve_removal_effects(paths)
    # start: C1 2/3, C2 1/3; C1: C2 1/2, null 1/2; C2: C3 1; C3: conversion 1/2, null 1/2.
    # P = 2/3 * 1/2 * 1 * 1/2 + 1/3 * 1 * 1/2 = 1/3.
    assert result.probability == Fraction(1, 3)
    # Without C1 only start > C2 > C3 > conversion is left: 1/3 * 1/2 = 1/6. C2 and C3 are on every path.
    assert result.without == {"C1": Fraction(1, 6), "C2": Fraction(0), "C3": Fraction(0)}
    assert result.effects == {"C1": Fraction(1, 2), "C2": Fraction(1), "C3": Fraction(1)}
    assert result.as_decimals() == {"C1": D("0.5"), "C2": D(1), "C3": D(1)}
    assert (result.paths, result.conversions) == (3, 1)
    assert result.transitions == {
        (START, "C1"): 2,
        (START, "C2"): 1,
        ("C1", "C2"): 1,
        ("C1", NULL): 1,
        ("C2", "C3"): 2,
        ("C3", CONVERSION): 1,
        ("C3", NULL): 1,
    }
    assert reference(paths) == (result.probability, dict(result.effects))


def test_a_cycle_is_solved_exactly() -> None:
    # A > B > A > conversion and B > null: A: B 1/2, conversion 1/2; B: A 1/2, null 1/2.
    # x_A = 1/2 x_B + 1/2 and x_B = 1/2 x_A: x_A = 2/3, x_B = 1/3; P = (2/3 + 1/3) / 2 = 1/2.
    paths = [(["A", "B", "A"], True), (["B"], False)]
    result = solve_removal_effects(paths)
    assert result.probability == Fraction(1, 2)
    # Without A nothing converts; without B, start > A > conversion is 1/2 * 1/2 = 1/4.
    assert result.without == {"A": Fraction(0), "B": Fraction(1, 4)}
    assert result.effects == {"A": Fraction(1), "B": Fraction(1, 2)}
    assert reference(paths) == (result.probability, dict(result.effects))


def test_a_channel_seen_only_on_paths_that_fail_has_no_effect() -> None:
    effects = solve_removal_effects([(["A"], True), (["B"], False)]).effects
    assert effects == {"A": Fraction(1), "B": Fraction(0)}


def test_consecutive_repeats_are_one_visit() -> None:
    once = solve_removal_effects([(["A", "B"], True), (["B", "A"], False)])
    repeated = solve_removal_effects([(["A", "A", "B", "B", "B"], True), (["B", "A", "A"], False)])
    assert repeated.transitions == once.transitions
    assert repeated.effects == once.effects
    assert ("A", "A") not in repeated.transitions


def test_decimal_removal_effects_are_rounded_to_28_significant_digits() -> None:
    # Effects with no short decimal form (sevenths, ...): the Decimal is the exact Fraction rounded once.
    paths = [(["A", "B"], True), (["A"], False), (["B"], False), (["C", "B"], False), (["C"], True)]
    result = solve_removal_effects(paths)
    ctx = Context(prec=28)
    expected = {c: ctx.divide(D(f.numerator), D(f.denominator)) for c, f in reference(paths)[1].items()}
    assert markov_removal_effects(paths) == expected
    assert any(len(v.as_tuple().digits) == 28 for v in expected.values())
    assert result.effects == reference(paths)[1]


def test_no_conversion_means_no_effect_and_no_path_means_nothing() -> None:
    result = solve_removal_effects([(["A", "B"], False), (["B"], False)])
    assert result.probability == 0
    assert result.effects == {"A": 0, "B": 0}
    empty = solve_removal_effects([([], True), ([], False)])
    assert empty.paths == 0
    assert empty.probability == 0
    assert not empty.effects


def test_reserved_state_names_are_refused_as_channels() -> None:
    with pytest.raises(AttributionError, match=r"may not be named '\(null\)'"):
        solve_removal_effects([(["A", "(null)"], True)])


# -- against the reference, on random paths -------------------------------------------------------------

path_lists = st.lists(
    st.tuples(st.lists(st.sampled_from("ABCDE"), min_size=0, max_size=6), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(paths=path_lists)
def test_removal_effects_match_the_independent_reference_exactly(paths: list[tuple[list[str], bool]]) -> None:
    result = solve_removal_effects(paths)
    p, effects = reference(paths)
    assert result.probability == p
    assert dict(result.effects) == effects
    for c, re in result.effects.items():
        assert 0 <= re <= 1
        assert result.without[c] <= result.probability
    ctx = Context(prec=28)
    assert result.as_decimals() == {
        c: ctx.divide(D(f.numerator), D(f.denominator)) for c, f in effects.items()
    }


@settings(max_examples=100, deadline=None)
@given(paths=path_lists, copies=st.integers(2, 4))
def test_removal_effects_depend_on_proportions_not_volume(
    paths: list[tuple[list[str], bool]], copies: int
) -> None:
    assert solve_removal_effects(paths * copies).effects == solve_removal_effects(paths).effects


# -- paths from journeys ----------------------------------------------------------------------------------


def touch(tid: int, days: float, channel: str) -> Touch:
    return Touch(tid, f"T{tid:03d}", END - timedelta(days=days), tid, channel, "marketing")


def test_channel_path_collapses_repeats_in_time_order() -> None:
    steps = [touch(1, 9, "email"), touch(2, 8, "email"), touch(3, 7, "event"), touch(4, 6, "email")]
    assert channel_path(steps) == ["email", "event", "email"]


def test_markov_paths_from_opportunities_and_touch_only_accounts() -> None:
    touches = [touch(1, 40, "email"), touch(2, 30, "email"), touch(3, 20, "webinar"), touch(4, -1, "event")]
    won = Opportunity(1, "O1", 100, END - timedelta(days=25), END, "won")
    lost = Opportunity(2, "O2", 100, END - timedelta(days=35), END - timedelta(days=25), "lost")
    still_open = Opportunity(3, "O3", 100, END - timedelta(days=25), None, "open")
    untouched = Opportunity(4, "O4", 100, END - timedelta(days=25), END, "won")
    account_only = [
        touch(5, 500, "ads"),
        touch(6, 100, "content"),
        touch(7, 10, "content"),
        touch(8, 5, "ads"),
    ]
    paths = list(
        markov_paths(
            [(won, touches), (lost, touches), (still_open, touches), (untouched, [])],
            [account_only, []],
        )
    )
    # Revenue-scope journeys: the won deal to its close, the lost one to its loss; the touch after
    # the close is out, the open deal is left out, and so is a journey without touches.
    assert paths == [
        (["email", "webinar"], True),
        (["email"], False),
        (["content", "ads"], False),
    ]


@settings(max_examples=200, deadline=None)
@given(paths=path_lists)
def test_counted_paths_solve_as_the_paths_repeated(paths: list[tuple[list[str], bool]]) -> None:
    counted: dict[tuple[tuple[str, ...], bool], int] = {}
    for channels, converted in paths:
        counted[tuple(channels), converted] = counted.get((tuple(channels), converted), 0) + 1
    # Each distinct path once, with its count: the same chain as every path fed as often as it occurs.
    assert solve_counted_paths(counted) == solve_removal_effects(paths)
    assert solve_counted_paths(dict.fromkeys(counted, 0)).paths == 0
