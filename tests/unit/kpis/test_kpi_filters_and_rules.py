"""The pure parts of the KPI library: filters and where they apply, the SLA status against a deadline, the
median, pipeline velocity."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.kpis.core import (
    ADDITIVE,
    KPIS,
    KpiFilters,
    Unit,
    UnknownKpiError,
    filters_applying,
    first_disposition,
    inapplicable,
    median,
    sla_status,
    velocity,
)

T0 = dt.datetime(2026, 8, 3, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def test_filters_under_their_url_names() -> None:
    none = KpiFilters()
    assert not none and none.used == ()
    f = KpiFilters(team_id=3, channel="webinar")
    assert f and f.used == ("team", "channel")
    assert f.params == {"team": 3, "person": None, "campaign": None, "channel": "webinar", "segment": None}
    assert hash(f) == hash(KpiFilters(team_id=3, channel="webinar"))  # a cache key


def test_which_filters_apply() -> None:
    assert all(filters_applying(n) == frozenset(KpiFilters().params) for n in ("mqls", "win_rate"))
    assert inapplicable("campaign_cost", KpiFilters(segment="smb", team_id=1)) == ("segment",)
    assert inapplicable("cac", KpiFilters(person_id=1, campaign_id=2)) == ("person",)
    assert inapplicable("campaign_roi", KpiFilters(channel="email")) == ()
    with pytest.raises(UnknownKpiError):
        filters_applying("happiness")


def test_additive_kpis_are_counts_and_sums() -> None:
    assert set(KPIS) >= ADDITIVE
    assert all(KPIS[n].unit in (Unit.COUNT, Unit.CURRENCY) for n in ADDITIVE)
    assert "avg_deal_size" not in ADDITIVE and "cac" not in ADDITIVE


def test_first_disposition_ignores_what_came_before_the_mql_or_after_the_cutoff() -> None:
    assert first_disposition(T0, T0 + 5 * H, T0 + 2 * H) == T0 + 2 * H
    assert first_disposition(T0, T0 - H, T0 + 3 * H) == T0 + 3 * H  # rejected before a re-MQL
    assert first_disposition(T0, T0 + 5 * H, None, as_of=T0 + 4 * H) is None
    assert first_disposition(None, T0, None) is None


def test_the_sla_status_against_a_deadline() -> None:
    due = T0 + 24 * H
    now = T0 + 100 * H
    assert sla_status(T0, due, due=due, now=now) == "met"  # exactly at the deadline
    assert sla_status(T0, due + H, due=due, now=now) == "breached"
    assert sla_status(T0, None, due=due, now=due + H) == "breached"  # open, overdue
    assert sla_status(T0, None, due=due, now=due - H) == "pending"
    assert sla_status(None, None, due=None, now=now) is None


def test_median() -> None:
    assert median([]) is None
    assert median([7]) == 7
    assert median([10, 8, 48]) == 10
    assert median([8, 48]) == 28
    assert median([1, 2]) == Decimal("1.5")


@given(st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=50))
def test_half_the_values_are_at_or_below_the_median(values: list[int]) -> None:
    m = median(values)
    assert m is not None
    assert sum(v <= m for v in values) * 2 >= len(values)
    assert sum(v >= m for v in values) * 2 >= len(values)


def test_velocity() -> None:
    # 3 open deals x 75 % x (310,000 / 3) / (158 / 3 days)
    found = velocity(3, Decimal("0.75"), 310_000, 3, Decimal(158) / 3)
    assert found is not None
    assert found.quantize(Decimal("1E-20")) == (Decimal(697_500) / 158).quantize(Decimal("1E-20"))
    assert velocity(3, None, 0, 0, None) is None
    assert velocity(3, Decimal(1), 100, 1, Decimal(0)) is None
    assert velocity(0, Decimal(1), 100, 1, Decimal(2)) == 0
