"""Goals core (DESIGN 4): KR attainment, progress bars, objective scores, bands and form validation."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.goals.core import (
    DEFAULT_KR_CAP,
    Band,
    GoalError,
    Kind,
    attainment,
    band,
    capped,
    objective_score,
    progress_bar,
    validate_key_result,
    validate_objective,
)

D = Decimal

values = st.decimals(min_value=-10_000, max_value=10_000, places=4, allow_nan=False, allow_infinity=False)


# --- attainment -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (D(150), D("0.5")),  # (150 - 100) / (200 - 100)
        (D(100), D(0)),  # at the start
        (D(200), D(1)),  # at the target
        (D(250), D("1.5")),  # beyond the target: may exceed 1
        (D(80), D(0)),  # below the start: -0.2 counts as 0
        (D(125), D("0.25")),
    ],
)
def test_increase_to(current: Decimal, expected: Decimal) -> None:
    assert attainment("increase_to", D(100), D(200), current) == expected


def test_increase_to_repeating_fraction_has_28_digits() -> None:
    assert attainment("increase_to", D(0), D(3), D(1)) == D("0.3333333333333333333333333333")


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (D(30), D("0.5")),  # (40 - 30) / (40 - 20)
        (D(20), D(1)),
        (D(10), D("1.5")),  # overshoot downward
        (D(40), D(0)),
        (D(50), D(0)),  # went up: -0.5 counts as 0
    ],
)
def test_decrease_to(current: Decimal, expected: Decimal) -> None:
    assert attainment(Kind.DECREASE_TO, D(40), D(20), current) == expected


def test_negative_attainment_is_zero_not_minus_zero() -> None:
    result = attainment("increase_to", D(0), D(10), D(-5))
    assert result == 0
    assert not result.is_signed()


@pytest.mark.parametrize("kind", ["increase_to", "decrease_to"])
def test_target_equal_to_start_is_refused(kind: str) -> None:
    with pytest.raises(GoalError, match="target equals its start"):
        attainment(kind, D(5), D(5), D(7))
    # Refused even before the first value arrives: the KR itself is wrong.
    with pytest.raises(GoalError):
        attainment(kind, D(5), D("5.00"), None)


@pytest.mark.parametrize("kind", ["increase_to", "decrease_to", "stay_above", "stay_below", "milestone"])
def test_no_value_yet_is_zero(kind: str) -> None:
    assert attainment(kind, D(0), D(10), None) == 0


@pytest.mark.parametrize(
    ("kind", "current", "expected"),
    [
        ("stay_above", D("0.91"), D(1)),
        ("stay_above", D("0.90"), D(1)),  # the threshold itself holds
        ("stay_above", D("0.89"), D(0)),
        ("stay_below", D(3), D(1)),
        ("stay_below", D("4.0"), D(1)),
        ("stay_below", D("4.01"), D(0)),
    ],
)
def test_stay_kinds_are_one_while_the_condition_holds(kind: str, current: Decimal, expected: Decimal) -> None:
    threshold = D("0.90") if kind == "stay_above" else D(4)
    # The start does not matter, and may equal the target.
    assert attainment(kind, threshold, threshold, current) == expected


def test_milestone() -> None:
    assert attainment("milestone", D(0), D(1), None, done=True) == 1
    assert attainment("milestone", D(0), D(1), None, done=False) == 0
    assert attainment("milestone", D(0), D(1), D(1)) == 1  # a value that reached the target
    assert attainment("milestone", D(0), D(1), D("0.99")) == 0
    # `done` is the owner's word and wins over a value.
    assert attainment("milestone", D(0), D(1), D(1), done=False) == 0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(GoalError, match="unknown key result kind"):
        attainment("double_it", D(0), D(1), D(1))
    with pytest.raises(GoalError, match="Decimal or an int"):
        attainment("increase_to", D(0), D(1), 0.5)  # type: ignore[arg-type]
    with pytest.raises(GoalError, match="finite"):
        attainment("increase_to", D(0), D(1), D("NaN"))


@given(start=values, target=values, a=values, b=values)
def test_attainment_is_monotonic_in_current_for_increase_to(
    start: Decimal, target: Decimal, a: Decimal, b: Decimal
) -> None:
    if start == target:
        return
    low, high = min(a, b), max(a, b)
    first = attainment("increase_to", start, target, low)
    second = attainment("increase_to", start, target, high)
    assert first >= 0
    if target > start:
        assert first <= second
    else:  # the formula reads either way: a falling target rewards a falling value
        assert first >= second


# --- progress bars and caps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fill", "overflow"),
    [
        (D("0.4"), D("0.4"), D(0)),
        (D(1), D(1), D(0)),
        (D("1.3"), D(1), D("0.3")),
        (D("2.75"), D(1), D("1.75")),
        (D("-0.2"), D(0), D(0)),
        (D(0), D(0), D(0)),
    ],
)
def test_progress_bar_clamps_and_shows_overflow(value: Decimal, fill: Decimal, overflow: Decimal) -> None:
    bar = progress_bar(value)
    assert bar == (fill, overflow)
    assert bar.fill == fill and bar.overflow == overflow


@given(values)
def test_progress_bar_fill_is_in_unit_interval(value: Decimal) -> None:
    bar = progress_bar(value)
    assert 0 <= bar.fill <= 1
    assert bar.overflow >= 0
    assert bar.fill + bar.overflow == max(value, D(0))


def test_capped_at_the_plans_kr_cap() -> None:
    assert capped(D(99)) == D("1.5") == DEFAULT_KR_CAP
    assert capped(D(2)) == D("1.5")
    assert capped(D("1.2")) == D("1.2")
    assert capped(D(2), D("1.25")) == D("1.25")
    assert capped(D("-0.5")) == 0
    with pytest.raises(GoalError):
        capped(D(1), D(-1))


# --- objective score and bands ----------------------------------------------------------------------


def test_objective_score_is_a_weighted_mean_each_capped_at_one() -> None:
    # Equal weights: 1.5 counts as 1, so (0.5 + 1) / 2.
    assert objective_score([(D("0.5"), D(1)), (D("1.5"), D(1))]) == D("0.75")
    # Weighted: (1 x 3 + 0 x 1) / 4.
    assert objective_score([(D(1), D(3)), (D(0), D(1))]) == D("0.75")
    # (0.2 x 2 + 0.8 x 1) / 3 = 0.4
    assert objective_score([(D("0.2"), D(2)), (D("0.8"), D(1))]) == D("0.4")
    # A negative attainment counts as 0; weights may be fractional.
    assert objective_score([(D("-1"), D("0.5")), (D(1), D("0.5"))]) == D("0.5")
    # One third, rounded once to 28 digits.
    assert objective_score([(D(1), D(1)), (D(0), D(2))]) == D("0.3333333333333333333333333333")


def test_objective_score_with_the_bonus_cap() -> None:
    krs = [(D(2), D(1)), (D("0.5"), D(1))]
    assert objective_score(krs) == D("0.75")
    assert objective_score(krs, cap=DEFAULT_KR_CAP) == D(1)  # (1.5 + 0.5) / 2


def test_objective_score_without_weight_is_none() -> None:
    assert objective_score([]) is None
    assert objective_score([(D(1), D(0)), (D("0.5"), D(0))]) is None
    with pytest.raises(GoalError, match="negative"):
        objective_score([(D(1), D(-1))])


@given(st.lists(st.tuples(values, st.decimals(min_value=0, max_value=1000, places=3)), max_size=12))
def test_objective_score_is_in_unit_interval(krs: list[tuple[Decimal, Decimal]]) -> None:
    score = objective_score(krs)
    if sum((w for _, w in krs), D(0)) == 0:
        assert score is None
    else:
        assert score is not None
        assert 0 <= score <= 1


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (D(0), Band.RED),
        (D("0.3999"), Band.RED),
        (D("0.4"), Band.YELLOW),
        (D("0.6999"), Band.YELLOW),
        (D("0.7"), Band.GREEN),
        (D("0.70"), Band.GREEN),
        (D(1), Band.GREEN),
    ],
)
def test_band_boundaries(score: Decimal, expected: Band) -> None:
    assert band(score) == expected


def test_bands_are_strings_with_a_word() -> None:
    assert band(D("0.1")) == "red"
    assert [b.label for b in Band] == ["Behind", "Progressing", "On target"]


# --- validation -------------------------------------------------------------------------------------


def kr(**changes: object) -> dict[str, str]:
    fields: dict[str, object] = {
        "title": "Grow pipeline",
        "kind": "increase_to",
        "unit": "count",
        "start_value": D(10),
        "target": D(20),
    }
    fields.update(changes)
    return validate_key_result(**fields)  # type: ignore[arg-type]


def test_a_sound_key_result_has_no_problems() -> None:
    assert kr() == {}
    assert kr(kind="decrease_to", start_value=D(20), target=D(10), stretch=D(8)) == {}
    assert kr(kind="stay_above", start_value=D(5), target=D(5), stretch=D(6)) == {}
    assert kr(kind="milestone", start_value=D(0), target=D(1), weight=D("0.5")) == {}
    assert (
        kr(
            unit="currency",
            source="metric",
            metric="pipeline_created",
            filters={"team": "marketing", "segment": "enterprise"},
            counts_toward_bonus=True,
        )
        == {}
    )


def test_target_equal_to_start_is_refused_beside_the_target() -> None:
    assert kr(target=D(10)) == {"target": "The target must differ from the start value."}
    assert kr(kind="decrease_to", target=D("10.0")) == {
        "target": "The target must differ from the start value."
    }


def test_target_on_the_wrong_side_is_refused() -> None:
    assert "decrease to" in kr(target=D(5))["target"]
    assert "increase to" in kr(kind="decrease_to", target=D(15))["target"]


@pytest.mark.parametrize(
    ("kind", "start", "target", "stretch", "message"),
    [
        ("increase_to", 10, 20, 20, "above"),
        ("increase_to", 10, 20, 15, "above"),
        ("decrease_to", 20, 10, 10, "below"),
        ("decrease_to", 20, 10, 12, "below"),
        ("stay_above", 0, 5, 4, "above"),
        ("stay_below", 0, 5, 6, "below"),
        ("milestone", 0, 1, 2, "no stretch"),
    ],
)
def test_stretch_must_lie_beyond_the_target(
    kind: str, start: int, target: int, stretch: int, message: str
) -> None:
    problems = kr(kind=kind, start_value=D(start), target=D(target), stretch=D(stretch))
    assert list(problems) == ["stretch"]
    assert message in problems["stretch"]


def test_each_field_reports_its_own_problem() -> None:
    problems = kr(
        title="  ",
        kind="double",
        unit="widgets",
        start_value=None,
        target=D("NaN"),
        weight=D(0),
        counts_toward_bonus="yes",
        source="guess",
    )
    assert set(problems) == {
        "title",
        "kind",
        "unit",
        "start_value",
        "target",
        "weight",
        "counts_toward_bonus",
        "source",
    }
    assert problems["weight"] == "The weight must be above 0."
    assert kr(weight=D(-1))["weight"] == "The weight must be above 0."
    assert kr(weight=None)["weight"] == "Enter a weight."
    assert kr(title="x" * 301)["title"].startswith("Keep the title to 300 characters")
    assert kr(title="x" * 300) == {}
    assert kr(stretch=D("Infinity")) == {"stretch": "Enter a number, or leave it empty."}


def test_metric_key_results_name_a_kpi_in_its_unit() -> None:
    assert set(kr(source="metric")) == {"metric"}
    assert kr(source="metric", metric="vibes")["metric"].startswith("Unknown KPI")
    assert kr(source="metric", metric="revenue_won") == {
        "unit": "Revenue won is measured in currency: use that unit."
    }
    assert kr(source="metric", metric="win_rate", unit="percent") == {}
    # Pipeline velocity is money per day: its KR is stated in currency.
    assert kr(source="metric", metric="pipeline_velocity", unit="currency") == {}
    assert set(kr(source="metric", metric="mqls", filters={"region": "emea"})) == {"filters"}
    # A manual KR's metric and filters are not read.
    assert kr(metric="vibes", filters={"region": "emea"}) == {}


def test_objective_validation() -> None:
    assert validate_objective(title="Win the mid-market", weight=D(1), team_ids=[1, 2]) == {}
    problems = validate_objective(title="", weight=D(0), team_ids=[])
    assert problems == {
        "title": "Give the objective a title.",
        "weight": "The weight must be above 0.",
        "team_ids": "Choose at least one owning team (a joint objective names both).",
    }
    assert set(validate_objective(title="t" * 301, weight=D(1), team_ids=[1])) == {"title"}
    assert validate_objective(title="t" * 300, weight=D("0.25"), team_ids=[1]) == {}
