"""The KPI library: every KPI of DESIGN 4 is defined, and the comparison helpers say what changed."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.kpis.core import (
    DASHBOARD_KPIS,
    KPIS,
    Records,
    Unit,
    UnknownKpiError,
    compare,
    get_kpi,
    ratio,
)

# Every KPI DESIGN 4 names, in its order, with DESIGN 5's MQL commitment after the SLA.
DESIGN_KPIS = [
    "leads_created", "mqls", "accepted_leads", "rejected_leads", "sqls", "acceptance_rate",
    "mql_to_sql_rate", "speed_to_lead_hours", "sla_compliance", "mql_commitment_attainment",
    "opportunities_created",
    "pipeline_created", "pipeline_sourced_marketing", "pipeline_influenced_marketing", "revenue_won",
    "deals_won", "win_rate", "avg_deal_size", "sales_cycle_days", "pipeline_velocity", "campaign_cost",
    "cac", "campaign_roi",
]  # fmt: skip


def test_every_design_kpi_is_defined_in_order() -> None:
    assert list(KPIS) == DESIGN_KPIS
    assert len(KPIS) == 23


@pytest.mark.parametrize("name", DESIGN_KPIS)
def test_each_definition_is_complete(name: str) -> None:
    kpi = KPIS[name]
    assert kpi.name == name
    assert kpi.label.strip() and kpi.label[0].isupper()
    assert isinstance(kpi.unit, Unit)
    assert isinstance(kpi.records, Records)
    assert isinstance(kpi.higher_is_better, bool)
    # One line, a sentence, short enough for a tooltip.
    assert "\n" not in kpi.definition
    assert kpi.definition.endswith(".")
    assert 10 < len(kpi.definition) <= 130


def test_units_and_directions_people_rely_on() -> None:
    assert KPIS["revenue_won"].unit == Unit.CURRENCY
    assert KPIS["win_rate"].unit == Unit.PERCENT
    assert KPIS["mqls"].unit == Unit.COUNT
    assert KPIS["speed_to_lead_hours"].unit == Unit.HOURS
    assert KPIS["sales_cycle_days"].unit == Unit.DAYS
    assert KPIS["pipeline_velocity"].unit == Unit.PER_DAY
    lower_is_better = {name for name, kpi in KPIS.items() if not kpi.higher_is_better}
    assert lower_is_better == {
        "rejected_leads",
        "speed_to_lead_hours",
        "sales_cycle_days",
        "campaign_cost",
        "cac",
    }


def test_labels_are_unique_and_the_dashboard_uses_six_library_kpis() -> None:
    labels = [kpi.label for kpi in KPIS.values()]
    assert len(labels) == len(set(labels))
    assert len(DASHBOARD_KPIS) == 6
    assert set(DASHBOARD_KPIS) == {
        "revenue_won",
        "pipeline_created",
        "pipeline_sourced_marketing",
        "mqls",
        "sqls",
        "win_rate",
    }


def test_get_kpi_refuses_an_unknown_name() -> None:
    assert get_kpi("win_rate") is KPIS["win_rate"]
    with pytest.raises(UnknownKpiError):
        get_kpi("happiness")


def test_ratio_is_exact_and_none_on_a_zero_denominator() -> None:
    assert ratio(1, 4) == Decimal("0.25")
    assert ratio(0, 3) == Decimal(0)
    assert ratio(Decimal("1.5"), 3) == Decimal("0.5")
    assert ratio(5, 0) is None
    assert ratio(0, 0) is None


def test_compare_up_is_good_when_higher_is_better() -> None:
    change = compare(120, 100, higher_is_better=True)
    assert change is not None
    assert (change.direction, change.delta, change.good) == ("up", 20, True)
    assert change.relative == Decimal("0.2")


def test_compare_down_is_good_when_lower_is_better() -> None:
    change = compare(Decimal("30"), Decimal("40"), higher_is_better=False)
    assert change is not None
    assert (change.direction, change.good) == ("down", True)
    assert change.relative == Decimal("-0.25")


def test_compare_flat_is_neither_good_nor_bad() -> None:
    change = compare(7, 7, higher_is_better=True)
    assert change is not None
    assert (change.direction, change.delta, change.good, change.relative) == ("flat", 0, None, Decimal(0))


def test_compare_from_zero_has_no_relative_change() -> None:
    change = compare(500, 0, higher_is_better=True)
    assert change is not None
    assert change.relative is None
    assert change.direction == "up"


def test_compare_rates_gives_the_difference_in_points() -> None:
    change = compare(Decimal("0.30"), Decimal("0.25"), higher_is_better=True)
    assert change is not None
    assert change.delta == Decimal("0.05")
    assert change.relative == Decimal("0.2")


def test_compare_without_both_values_is_no_comparison() -> None:
    assert compare(None, 3, higher_is_better=True) is None
    assert compare(Decimal("0.5"), None, higher_is_better=True) is None


@given(
    current=st.integers(min_value=-(10**12), max_value=10**12),
    previous=st.integers(min_value=-(10**12), max_value=10**12),
    higher=st.booleans(),
)
def test_compare_direction_matches_the_sign_and_flipping_the_goal_flips_good(
    current: int, previous: int, higher: bool
) -> None:
    change = compare(current, previous, higher_is_better=higher)
    flipped = compare(current, previous, higher_is_better=not higher)
    assert change is not None and flipped is not None
    assert change.delta == current - previous
    assert change.direction == ("up" if current > previous else "down" if current < previous else "flat")
    if change.direction == "flat":
        assert change.good is None and flipped.good is None
    else:
        assert change.good is not flipped.good
    if previous != 0:
        assert change.relative is not None
        assert change.relative * abs(previous) == pytest.approx(Decimal(current - previous))
