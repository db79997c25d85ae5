"""Goals core (DESIGN 4): expected value, pace and its status, forecasts at period end, sandbagging."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.goals.core import (
    GoalError,
    OpenOpportunity,
    Pace,
    PaceStatus,
    expected_value,
    is_sandbagged,
    key_result_pace,
    linear_forecast,
    pace,
    pace_status,
    pipeline_forecast,
)

D = Decimal
ON, LAG, RISK = PaceStatus.ON_TRACK, PaceStatus.LAGGING, PaceStatus.AT_RISK
JAN1, APR1 = dt.date(2026, 1, 1), dt.date(2026, 4, 1)  # Q1 2026: 90 days, end exclusive


# --- expected value ---------------------------------------------------------------------------------


def test_expected_value_is_linear_in_elapsed_time() -> None:
    assert expected_value(D(100), D(200), 45, 90) == D(150)
    assert expected_value(D(100), D(200), dt.timedelta(days=30), dt.timedelta(days=90)) == D(
        "133.3333333333333333333333333"
    )
    assert expected_value(D(40), D(20), 45, 90) == D(30)  # decrease_to
    assert expected_value(D(100), D(200), dt.timedelta(hours=12), 1) == D(150)  # days and timedeltas mix


def test_expected_value_clamps_elapsed_to_the_period() -> None:
    assert expected_value(D(100), D(200), -5, 90) == D(100)
    assert expected_value(D(100), D(200), 0, 90) == D(100)
    assert expected_value(D(100), D(200), 90, 90) == D(200)
    assert expected_value(D(100), D(200), 120, 90) == D(200)


def test_expected_value_needs_a_period() -> None:
    with pytest.raises(GoalError, match="length"):
        expected_value(D(0), D(1), 0, 0)
    with pytest.raises(GoalError, match="timedelta"):
        expected_value(D(0), D(1), D(1), 90)  # type: ignore[arg-type]


# --- pace -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "value", "status"),
    [
        # Halfway through, 50 is expected: pace = progress / 0.5.
        (D(50), D(1), ON),
        (D("47.5"), D("0.95"), ON),  # exactly 0.95: on track
        (D("47.49"), D("0.9498"), LAG),
        (D("37.5"), D("0.75"), LAG),  # exactly 0.75: lagging
        (D("37.49"), D("0.7498"), RISK),
        (D(75), D("1.5"), ON),  # ahead
        (D(0), D(0), RISK),
        (D(-10), D(0), RISK),  # moved away: pace floors at 0 like attainment
    ],
)
def test_pace_boundaries(current: Decimal, value: Decimal, status: PaceStatus) -> None:
    result = key_result_pace("increase_to", D(0), D(100), current, 50, 100)
    assert result == Pace(value, status)
    assert pace(D(0), D(100), current, 50, 100) == value


@pytest.mark.parametrize(
    ("value", "status"),
    [(D("0.95"), ON), (D("0.9499"), LAG), (D("0.75"), LAG), (D("0.7499"), RISK), (D(0), RISK), (D(3), ON)],
)
def test_pace_status_thresholds(value: Decimal, status: PaceStatus) -> None:
    assert pace_status(value) == status


def test_pace_statuses_have_words() -> None:
    assert [s.label for s in PaceStatus] == ["On track", "Lagging", "At risk"]
    assert pace_status(D(1)) == "on_track"


def test_pace_measures_progress_toward_a_lower_target() -> None:
    # decrease_to from 40 to 20; halfway through, 30 is expected.
    assert key_result_pace("decrease_to", D(40), D(20), D(30), 45, 90) == Pace(D(1), ON)
    assert key_result_pace("decrease_to", D(40), D(20), D(35), 45, 90) == Pace(D("0.5"), RISK)
    assert key_result_pace("decrease_to", D(40), D(20), D(31), 45, 90) == Pace(D("0.9"), LAG)
    assert pace(D(40), D(20), D(25), 45, 90) == D("1.5")


def test_pace_at_period_start_is_undefined_and_on_track_unless_moving_away() -> None:
    assert key_result_pace("increase_to", D(0), D(100), D(0), 0, 90) == Pace(None, ON)
    assert key_result_pace("increase_to", D(0), D(100), D(5), 0, 90) == Pace(None, ON)
    assert key_result_pace("increase_to", D(0), D(100), D(-1), 0, 90) == Pace(None, RISK)
    assert key_result_pace("decrease_to", D(40), D(20), D(41), -3, 90) == Pace(None, RISK)
    assert pace(D(0), D(100), D(5), 0, 90) is None


def test_pace_without_a_value_has_no_status() -> None:
    for kind in ("increase_to", "decrease_to", "stay_above", "stay_below"):
        assert key_result_pace(kind, D(0), D(100), None, 45, 90) == Pace(None, None)
    assert pace(D(0), D(100), None, 45, 90) is None


def test_pace_after_the_period_compares_with_the_full_target() -> None:
    assert key_result_pace("increase_to", D(0), D(100), D(100), 200, 90) == Pace(D(1), ON)
    assert key_result_pace("increase_to", D(0), D(100), D(80), dt.timedelta(days=90), 90) == Pace(
        D("0.8"), LAG
    )


def test_pace_refuses_target_equal_to_start() -> None:
    with pytest.raises(GoalError):
        pace(D(3), D(3), D(4), 1, 90)
    with pytest.raises(GoalError):
        key_result_pace("decrease_to", D(3), D(3), None, 1, 90)


def test_stay_kinds_pace_is_their_attainment() -> None:
    assert key_result_pace("stay_above", D(0), D("0.9"), D("0.92"), 10, 90) == Pace(D(1), ON)
    assert key_result_pace("stay_above", D(0), D("0.9"), D("0.85"), 10, 90) == Pace(D(0), RISK)
    assert key_result_pace("stay_below", D(0), D(24), D(24), 0, 90) == Pace(D(1), ON)
    assert key_result_pace("stay_below", D(0), D(24), D(30), 0, 90) == Pace(D(0), RISK)


def test_milestone_pace() -> None:
    assert key_result_pace("milestone", D(0), D(1), None, 10, 90, done=True) == Pace(D(1), ON)
    assert key_result_pace("milestone", D(0), D(1), D(1), 10, 90) == Pace(D(1), ON)
    # In flight: the owner's confidence speaks for it.
    assert key_result_pace("milestone", D(0), D(1), None, 89, 90, done=False) == Pace(None, None)
    # Not done when the period is over: at risk.
    assert key_result_pace("milestone", D(0), D(1), None, 90, 90, done=False) == Pace(D(0), RISK)
    assert key_result_pace("milestone", D(0), D(1), D(0), 95, 90) == Pace(D(0), RISK)


@given(
    current=st.decimals(min_value=-1000, max_value=1000, places=2),
    elapsed=st.integers(min_value=1, max_value=200),
)
def test_pace_status_agrees_with_pace_value(current: Decimal, elapsed: int) -> None:
    result = key_result_pace("increase_to", D(0), D(100), current, elapsed, 90)
    assert result.value is not None and result.status is not None
    assert result.value >= 0
    assert result.status == pace_status(result.value)


# --- linear forecast --------------------------------------------------------------------------------


def test_linear_forecast_least_squares_on_three_points() -> None:
    # x (days) = 0, 10, 20; y = 0, 10, 30. n = 3, Sx = 30, Sy = 40, Sxy = 700, Sxx = 500.
    # slope = (3 x 700 - 30 x 40) / (3 x 500 - 30^2) = 900 / 600 = 1.5
    # intercept = (40 - 1.5 x 30) / 3 = -5/3; at day 90: -5/3 + 135 = 400/3.
    points = [(dt.date(2026, 1, 11), D(10)), (dt.date(2026, 1, 21), D(30))]
    assert linear_forecast(points, JAN1, APR1, D(0)) == D("133.3333333333333333333333333")


def test_linear_forecast_second_hand_worked_case() -> None:
    # x = 0, 30, 60; y = 100, 130, 190. Sx = 90, Sy = 420, Sxy = 15300, Sxx = 4500.
    # slope = (45900 - 37800) / (13500 - 8100) = 1.5; intercept = (420 - 135) / 3 = 95; at 90: 230.
    points = [(dt.date(2026, 3, 2), D(190)), (dt.date(2026, 1, 31), D(130))]  # order does not matter
    assert linear_forecast(points, JAN1, APR1, D(100)) == D(230)


def test_linear_forecast_of_a_falling_value() -> None:
    points = [(dt.date(2026, 1, 31), D(35)), (dt.date(2026, 3, 2), D(30))]
    assert linear_forecast(points, JAN1, APR1, D(40)) == D(25)


def test_linear_forecast_needs_a_trend() -> None:
    assert linear_forecast([], JAN1, APR1, D(0)) is None
    assert linear_forecast([(dt.date(2026, 2, 1), None)], JAN1, APR1, D(0)) is None
    # Outside the period: left out.
    assert (
        linear_forecast([(dt.date(2025, 12, 1), D(5)), (APR1 + dt.timedelta(days=1), D(9))], JAN1, APR1, D(0))
        is None
    )
    # Every point at the period start: no slope to extend.
    assert linear_forecast([(JAN1, D(4))], JAN1, APR1, D(0)) is None
    with pytest.raises(GoalError, match="end after"):
        linear_forecast([], APR1, JAN1, D(0))


def test_linear_forecast_keeps_points_inside_the_period_only() -> None:
    inside = [(dt.date(2026, 1, 11), D(10)), (dt.date(2026, 1, 21), D(30))]
    outside = [(dt.date(2025, 12, 20), D(999)), (dt.date(2026, 5, 1), D(-999)), (dt.date(2026, 2, 1), None)]
    assert linear_forecast(inside + outside, JAN1, APR1, D(0)) == linear_forecast(inside, JAN1, APR1, D(0))


def test_linear_forecast_with_aware_datetimes() -> None:
    tz = ZoneInfo("America/New_York")
    start = dt.datetime(2026, 1, 1, tzinfo=tz)
    end = dt.datetime(2026, 4, 1, tzinfo=tz)
    # Half a day in: 5; one day in: 10 -> 10 per day, 900 at day 90 from a start of 0.
    points = [(start + dt.timedelta(hours=12), D(5)), (start + dt.timedelta(days=1), D(10))]
    assert linear_forecast(points, start, end, D(0)) == D(900)


# --- pipeline forecast ------------------------------------------------------------------------------


def test_pipeline_forecast_is_closed_plus_commit_plus_weighted_best_case() -> None:
    opportunities = [
        OpenOpportunity(500, "commit", None),
        OpenOpportunity(333, "best_case", D(50)),  # 166.5
        OpenOpportunity(999, "pipeline", D(90)),  # pipeline counts 0
        OpenOpportunity(777, None, D(90)),  # no category counts 0
        OpenOpportunity(200, "closed", D(100)),  # called closed, not yet won: in full
        OpenOpportunity(1000, "best_case", None),  # best case without a probability counts 0
    ]
    # 1000 + 500 + 166.5 + 200 = 1866.5 -> rounds half up to 1867.
    assert pipeline_forecast(1000, opportunities) == 1867


def test_pipeline_forecast_rounds_once_at_the_end() -> None:
    assert pipeline_forecast(0, [(101, "best_case", D(40))]) == 40  # 40.4
    assert pipeline_forecast(0, [(1, "best_case", D(50))]) == 1  # 0.5, half up
    # Two halves make 1, not 2: no rounding per deal.
    assert pipeline_forecast(0, [(1, "best_case", D(50)), (1, "best_case", D(50))]) == 1
    assert pipeline_forecast(0, [(3, "best_case", D("33.3333"))]) == 1  # 0.999999
    assert pipeline_forecast(7, []) == 7


def test_pipeline_forecast_refuses_bad_input() -> None:
    with pytest.raises(GoalError, match="category"):
        pipeline_forecast(0, [(1, "maybe", D(1))])
    with pytest.raises(GoalError, match="0 to 100"):
        pipeline_forecast(0, [(1, "best_case", D(101))])
    with pytest.raises(GoalError, match="minor units"):
        pipeline_forecast(0, [(D("1.5"), "commit", None)])  # type: ignore[list-item]


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**12),
            st.sampled_from(["pipeline", "best_case", "commit", "closed", None]),
            st.decimals(min_value=0, max_value=100, places=4),
        ),
        max_size=20,
    ),
    st.integers(min_value=0, max_value=10**12),
)
def test_pipeline_forecast_lies_between_commit_and_full_best_case(
    opportunities: list[tuple[int, str | None, Decimal]], closed: int
) -> None:
    committed = closed + sum(a for a, c, _ in opportunities if c in ("commit", "closed"))
    best = sum(a for a, c, _ in opportunities if c == "best_case")
    assert committed <= pipeline_forecast(closed, opportunities) <= committed + best


# --- sandbagging ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "trailing", "flagged"),
    [
        ("increase_to", D(100), D(100), True),  # at the trailing actual
        ("increase_to", D(99), D(100), True),  # below it
        ("increase_to", D(101), D(100), False),
        ("decrease_to", D(20), D(20), True),  # at it
        ("decrease_to", D(21), D(20), True),  # above it: asks for worse than already done
        ("decrease_to", D(19), D(20), False),
        ("increase_to", D(1), None, False),  # no history
        ("stay_above", D(1), D(5), False),
        ("stay_below", D(9), D(5), False),
        ("milestone", D(1), D(1), False),
    ],
)
def test_sandbagging(kind: str, target: Decimal, trailing: Decimal | None, flagged: bool) -> None:
    assert is_sandbagged(kind, target, trailing) is flagged
