"""Goals core (DESIGN 4): burn-up chart geometry and its text alternative; rolling a period forward."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.goals.core import (
    BurnUp,
    GoalError,
    KeyResultDraft,
    KeyResultRecord,
    ObjectiveDraft,
    ObjectiveRecord,
    Tick,
    burn_up,
    format_value,
    linear_forecast,
    roll_forward,
    validate_draft,
)

D = Decimal
JAN1, APR1 = dt.date(2026, 1, 1), dt.date(2026, 4, 1)  # 90 days, end exclusive
NO_MARGINS = (0, 0, 0, 0)


def pairs(polyline: str) -> list[tuple[Decimal, Decimal]]:
    out = []
    for pair in polyline.split():
        x, y = pair.split(",")
        out.append((D(x), D(y)))
    return out


# --- burn-up ----------------------------------------------------------------------------------------


def test_burn_up_hand_worked_geometry() -> None:
    # A 90 x 100 box without margins: one unit of x per day; values 0..100 map to y 100..0.
    chart = burn_up(
        [(dt.date(2026, 2, 15), D(50))], JAN1, APR1, D(0), D(100), D(100), 90, 100, margins=NO_MARGINS
    )
    assert chart.actual == "0.0,100.0 45.0,50.0"
    assert chart.ideal == "0.0,100.0 90.0,0.0"
    assert chart.forecast == "45.0,50.0 90.0,0.0"  # from the latest value to the period end
    assert (chart.left, chart.top, chart.right, chart.bottom) == ("0.0", "0.0", "90.0", "100.0")
    assert chart.x_ticks == (Tick("0.0", "Jan 1"), Tick("31.0", "Feb 1"), Tick("59.0", "Mar 1"))
    # Span 100 / 4 = 25 -> step 50.
    assert chart.y_ticks == (Tick("100.0", "0"), Tick("50.0", "50"), Tick("0.0", "100"))
    assert chart.text == (
        "Burn-up from Jan 1, 2026 to Mar 31, 2026: start 0, target 100."
        " Latest value 50 on Feb 15, 2026, against an ideal of 50 by then."
        " Forecast at period end: 100."
    )


def test_burn_up_margins_and_one_decimal_rounding() -> None:
    points = [(dt.date(2026, 1, 2), D(7)), (dt.date(2026, 1, 31), D(20))]
    chart = burn_up(points, JAN1, APR1, D(0), D(60), None, 400, 200, margins=(10, 20, 30, 40))
    # Plot area x 40..380 (340 wide), y 10..170 (160 high); y axis 0..60 (step 20).
    assert (chart.left, chart.top, chart.right, chart.bottom) == ("40.0", "10.0", "380.0", "170.0")
    # Day 1: 40 + 340 / 90 = 43.777.. -> 43.8; value 7: 170 - 160 x 7/60 = 151.333.. -> 151.3.
    assert pairs(chart.actual) == [(D("40.0"), D("170.0")), (D("43.8"), D("151.3")), (D("153.3"), D("116.7"))]
    assert [t.label for t in chart.y_ticks] == ["0", "20", "40", "60"]
    assert chart.forecast == ""
    assert chart.text.endswith(" No forecast yet.")


def test_burn_up_without_values() -> None:
    chart = burn_up([], JAN1, APR1, D(10), D(20), None, 300, 150)
    assert len(pairs(chart.actual)) == 1  # only the start
    assert chart.forecast == ""
    assert chart.text == (
        "Burn-up from Jan 1, 2026 to Mar 31, 2026: start 10, target 20. No value recorded yet. No forecast yet."
    )


def test_burn_up_decrease_and_forecast_inside_the_box() -> None:
    points = [(dt.date(2026, 1, 31), D(35)), (dt.date(2026, 3, 2), D(30))]
    forecast = linear_forecast(points, JAN1, APR1, D(40))
    assert forecast == D(25)
    chart = burn_up(points, JAN1, APR1, D(40), D(20), forecast, 90, 100, margins=NO_MARGINS)
    # Axis 20..40 (step 5): 40 at the top, 20 at the bottom.
    assert chart.ideal == "0.0,0.0 90.0,100.0"
    assert chart.forecast == "60.0,50.0 90.0,75.0"
    assert [t.label for t in chart.y_ticks] == ["20", "25", "30", "35", "40"]


def test_burn_up_labels_use_the_given_formatter_and_local_dates() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2026, 10, 1, tzinfo=tz)
    end = dt.datetime(2027, 1, 1, tzinfo=tz)

    def pct(value: Decimal) -> str:
        return f"{format_value(value * 100)} %"

    chart = burn_up(
        [(dt.datetime(2026, 11, 15, 9, 30, tzinfo=tz), D("0.35"))],
        start,
        end,
        D("0.2"),
        D("0.5"),
        D("0.55"),
        320,
        160,
        value_label=pct,
    )
    assert [t.label for t in chart.x_ticks] == ["Oct 1", "Nov 1", "Dec 1"]
    assert chart.text.startswith("Burn-up from Oct 1, 2026 to Dec 31, 2026: start 20 %, target 50 %.")
    assert "Latest value 35 % on Nov 15, 2026" in chart.text
    assert chart.text.endswith("Forecast at period end: 55 %.")


def test_burn_up_short_period_gets_weekly_ticks() -> None:
    chart = burn_up(
        [], dt.date(2026, 2, 3), dt.date(2026, 3, 3), D(0), D(1), None, 280, 100, margins=NO_MARGINS
    )
    assert [t.label for t in chart.x_ticks] == ["Feb 3", "Feb 10", "Feb 17", "Feb 24"]
    assert [t.at for t in chart.x_ticks] == ["0.0", "70.0", "140.0", "210.0"]


def test_burn_up_flat_line_has_an_axis() -> None:
    # stay_above at 5 with start 5: the axis reaches down to 0 (ticks 0, 2, 4, 6).
    chart = burn_up([(dt.date(2026, 2, 1), D(5))], JAN1, APR1, D(5), D(5), None, 90, 100, margins=NO_MARGINS)
    assert [t.label for t in chart.y_ticks] == ["0", "2", "4", "6"]
    assert chart.ideal == "0.0,16.7 90.0,16.7"  # 100 x (6 - 5) / 6
    zero = burn_up([], JAN1, APR1, D(0), D(0), None, 90, 100, margins=NO_MARGINS)
    assert [t.label for t in zero.y_ticks] == ["0", "0.5", "1"]


def test_burn_up_refuses_a_box_too_small() -> None:
    with pytest.raises(GoalError, match="too small"):
        burn_up([], JAN1, APR1, D(0), D(1), None, 60, 100)
    with pytest.raises(GoalError, match="end after"):
        burn_up([], APR1, JAN1, D(0), D(1), None, 300, 100)


def test_format_value() -> None:
    assert format_value(D("1234567.456")) == "1,234,567.46"
    assert format_value(D("1.005")) == "1.01"  # half up
    assert format_value(D("5E+2")) == "500"
    assert format_value(D("-0.001")) == "0"
    assert format_value(D("-2.50")) == "-2.5"
    assert format_value(D("0.1")) == "0.1"


value_st = st.decimals(min_value=-(10**6), max_value=10**6, places=2)


@given(
    points=st.lists(st.tuples(st.integers(min_value=-10, max_value=100), value_st), max_size=15),
    start=value_st,
    target=value_st,
    forecast=st.none() | value_st,
    width=st.integers(min_value=80, max_value=1200),
    height=st.integers(min_value=50, max_value=800),
)
def test_burn_up_stays_inside_the_box(
    points: list[tuple[int, Decimal]],
    start: Decimal,
    target: Decimal,
    forecast: Decimal | None,
    width: int,
    height: int,
) -> None:
    dated = [(JAN1 + dt.timedelta(days=d), v) for d, v in points]
    chart = burn_up(dated, JAN1, APR1, start, target, forecast, width, height)
    assert isinstance(chart, BurnUp)
    left, top, right, bottom = (D(v) for v in (chart.left, chart.top, chart.right, chart.bottom))
    for line in (chart.actual, chart.ideal, chart.forecast):
        for x, y in pairs(line):
            assert left <= x <= right
            assert top <= y <= bottom
    for tick in chart.x_ticks:
        assert left <= D(tick.at) <= right
    for tick in chart.y_ticks:
        assert top <= D(tick.at) <= bottom
    assert 2 <= len(chart.y_ticks) <= 7
    assert chart.text.startswith("Burn-up from Jan 1, 2026 to Mar 31, 2026")


# --- roll forward -----------------------------------------------------------------------------------


def manual_kr(**changes: object) -> KeyResultRecord:
    fields: dict[str, object] = {
        "title": "Ship the partner portal",
        "kind": "increase_to",
        "unit": "count",
        "start_value": D(0),
        "target": D(10),
    }
    fields.update(changes)
    return KeyResultRecord(**fields)  # type: ignore[arg-type]


def test_roll_forward_copies_objectives_and_key_results() -> None:
    metric = KeyResultRecord(
        title="Marketing-sourced pipeline",
        kind="increase_to",
        unit="currency",
        start_value=D(0),
        target=D(50_000_000),
        stretch=D(60_000_000),
        weight=D(2),
        owner_ids=(7, 9),
        counts_toward_bonus=True,
        source="metric",
        metric="pipeline_sourced_marketing",
        filters={"segment": "mid-market"},
        position=1,
        last_value=D(41_000_000),  # ignored: a metric KR is recomputed each period
    )
    objective = ObjectiveRecord(
        title="Own the mid-market",
        description="Joint sales and marketing push.",
        team_ids=(1, 2),
        owner_id=3,
        weight=D("1.5"),
        position=2,
        key_results=(metric,),
    )
    [draft] = roll_forward([objective])
    assert draft == ObjectiveDraft(
        title="Own the mid-market",
        description="Joint sales and marketing push.",
        team_ids=(1, 2),
        owner_id=3,
        weight=D("1.5"),
        position=2,
        key_results=(
            KeyResultDraft(
                title="Marketing-sourced pipeline",
                kind="increase_to",
                unit="currency",
                start_value=D(0),
                target=D(50_000_000),
                stretch=D(60_000_000),
                weight=D(2),
                owner_ids=(7, 9),
                counts_toward_bonus=True,
                source="metric",
                metric="pipeline_sourced_marketing",
                filters={"segment": "mid-market"},
                position=1,
            ),
        ),
    )
    # The draft's filters are its own, not shared with the period it came from.
    assert draft.key_results[0].filters is not metric.filters
    assert validate_draft(draft.key_results[0]) == {}


def test_roll_forward_skips_archived_objectives_and_key_results() -> None:
    kept = ObjectiveRecord(
        title="Kept",
        team_ids=(1,),
        key_results=(manual_kr(title="live"), manual_kr(title="gone", archived=True)),
    )
    archived = ObjectiveRecord(title="Archived", team_ids=(1,), archived=True, key_results=(manual_kr(),))
    drafts = roll_forward([archived, kept])
    assert [d.title for d in drafts] == ["Kept"]
    assert [kr.title for kr in drafts[0].key_results] == ["live"]
    assert roll_forward([]) == []


def test_manual_key_results_continue_from_their_last_check_in() -> None:
    objective = ObjectiveRecord(
        title="Partners",
        team_ids=(2,),
        key_results=(
            manual_kr(last_value=D(6)),
            manual_kr(title="no check-in yet"),
            manual_kr(kind="decrease_to", start_value=D(48), target=D(24), last_value=D(30)),
            manual_kr(kind="stay_below", start_value=D(0), target=D(24), last_value=D(20)),
            manual_kr(kind="milestone", start_value=D(0), target=D(1), last_value=D(1)),
        ),
    )
    starts = [kr.start_value for kr in roll_forward([objective])[0].key_results]
    assert starts == [D(6), D(0), D(30), D(0), D(0)]


def test_a_rolled_key_result_that_reached_its_target_asks_for_a_new_one() -> None:
    objective = ObjectiveRecord(title="Partners", team_ids=(2,), key_results=(manual_kr(last_value=D(10)),))
    [kr] = roll_forward([objective])[0].key_results
    assert kr.start_value == kr.target == D(10)
    assert validate_draft(kr) == {"target": "The target must differ from the start value."}
