"""The reverse waterfall (DESIGN 5): the hand-worked example of docs/planner.md, rounding up to whole
records, a reason per bad field, and the invariants: the plan is always enough, and monotone."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.planner import core

D = Decimal
RATES = {
    "lead_to_mql": D("0.1"),
    "acceptance_rate": D("0.8"),
    "accepted_to_sql": D("0.4"),
    "sql_to_opportunity": D("0.5"),
    "win_rate": D("0.25"),
}


def plan(target: int, deal: int, **rates: Decimal) -> core.Waterfall:
    return core.waterfall(
        core.PlanInputs(revenue_target=target, avg_deal_size=deal, rates={**RATES, **rates})
    )


def test_the_hand_worked_example() -> None:
    # 1,000,000.00 at 25,000.00 a deal: 40 deals; / 25 % = 160 opportunities; / 50 % = 320 SQLs;
    # / 40 % = 800 accepted; / 80 % = 1,000 MQLs; / 10 % = 10,000 leads.
    w = plan(100_000_000, 2_500_000)
    assert w.counts == {
        "leads": 10_000, "mqls": 1_000, "accepted": 800, "sqls": 320, "opportunities": 160, "deals": 40,
    }  # fmt: skip
    assert [s.key for s in w.stages] == ["leads", "mqls", "accepted", "sqls", "opportunities", "deals"]
    assert [s.kpi for s in w.stages] == [
        "leads_created", "mqls", "accepted_leads", "sqls", "opportunities_created", "deals_won",
    ]  # fmt: skip
    assert w.stage("leads").rate == D("0.1") and w.stage("deals").rate is None
    assert w.pipeline_needed == 160 * 2_500_000
    assert w.coverage == D(4)


def test_counts_are_rounded_up_to_whole_records_stage_by_stage() -> None:
    # 1,000,000 / 30,000 = 33.3 -> 34 deals; / 0.3 = 113.3 -> 114 opportunities; / 0.5 = 228 SQLs;
    # / 0.7 = 325.7 -> 326 accepted; / 0.9 = 362.2 -> 363 MQLs; / 0.15 = 2,420 leads.
    w = plan(
        100_000_000,
        3_000_000,
        win_rate=D("0.3"),
        sql_to_opportunity=D("0.5"),
        accepted_to_sql=D("0.7"),
        acceptance_rate=D("0.9"),
        lead_to_mql=D("0.15"),
    )
    assert w.counts == {
        "deals": 34,
        "opportunities": 114,
        "sqls": 228,
        "accepted": 326,
        "mqls": 363,
        "leads": 2_420,
    }
    assert w.pipeline_needed == 114 * 3_000_000
    assert w.coverage == D(342_000_000) / D(100_000_000)


def test_an_exact_division_is_not_rounded_up_again() -> None:
    # 3 / 0.3 is exactly 10 (Decimal division would give 10.000...; the core divides exactly).
    w = plan(300, 100, win_rate=D("0.3"), sql_to_opportunity=D(1), accepted_to_sql=D(1))
    assert (w.stage("deals").count, w.stage("opportunities").count, w.stage("sqls").count) == (3, 10, 10)


def test_a_rate_of_100_percent_passes_the_stage_through() -> None:
    w = plan(1_000, 1_000, **dict.fromkeys(RATES, D(1)))
    assert set(w.counts.values()) == {1}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("revenue_target", 0, "Enter a revenue target above 0."),
        ("revenue_target", -5, "Enter a revenue target above 0."),
        ("revenue_target", None, "Enter the revenue target."),
        ("avg_deal_size", 0, "Enter an average deal size above 0."),
        ("avg_deal_size", None, "Enter the average deal size (there is no won deal to take it from)."),
        ("win_rate", D(0), "Win rate: enter a rate above 0 % and at most 100 % (at least 0.01 %)."),
        ("win_rate", D("1.01"), "Win rate: enter a rate above 0 % and at most 100 % (at least 0.01 %)."),
        ("win_rate", D("-0.2"), "Win rate: enter a rate above 0 % and at most 100 % (at least 0.01 %)."),
        ("win_rate", D("NaN"), "Win rate: enter a rate above 0 % and at most 100 % (at least 0.01 %)."),
        ("lead_to_mql", None, "Lead → MQL: enter a rate (there is no trailing data to take it from)."),
    ],
)
def test_each_bad_field_gets_its_reason(field: str, value: object, reason: str) -> None:
    inputs: dict[str, object] = {"revenue_target": 1_000, "avg_deal_size": 100}
    rates: dict[str, object] = dict(RATES)
    if field in RATES:
        rates[field] = value
    else:
        inputs[field] = value
    problems = core.validate(
        revenue_target=inputs["revenue_target"], avg_deal_size=inputs["avg_deal_size"], rates=rates
    )
    assert problems == {field: reason}


def test_waterfall_refuses_bad_inputs_with_every_reason() -> None:
    with pytest.raises(core.PlanError) as caught:
        core.waterfall(core.PlanInputs(revenue_target=0, avg_deal_size=0, rates={**RATES, "win_rate": D(2)}))
    assert set(caught.value.problems) == {"revenue_target", "avg_deal_size", "win_rate"}


def test_unknown_rates_are_refused() -> None:
    problems = core.validate(revenue_target=1, avg_deal_size=1, rates={**RATES, "mql_to_win": D("0.5")})
    assert problems == {"mql_to_win": "Not a rate of the planner."}


def test_stage_rate_caps_at_one_and_needs_both_counts() -> None:
    assert core.stage_rate(30, 120) == D("0.25")
    assert core.stage_rate(150, 120) == D(1)  # more SQLs than accepted leads: records skipped a step
    assert (
        core.stage_rate(0, 10) is None and core.stage_rate(3, 0) is None and core.stage_rate(None, 3) is None
    )
    assert core.suggested_rate(D(1) / D(3)) == D("0.333333")


def test_below_trailing_is_the_goals_sandbagging_rule() -> None:
    assert core.below_trailing(40, D("40.0"))  # at the trailing actual: flagged
    assert core.below_trailing(39, D("39.5"))
    assert not core.below_trailing(41, D("40.5"))
    assert not core.below_trailing(1, None)


def test_progress_against_the_pace_of_the_period() -> None:
    # Half-way through (46 of 92 days) a 40-deal plan expects 20; 15 won is a pace of 0.75: lagging.
    row = core.progress(
        key="deals", kpi="deals_won", label="Deals won", target=40, actual=15, elapsed=46, length=92
    )
    assert (row.expected, row.pace, row.status) == (D(20), D("0.75"), "lagging")
    none = core.progress(
        key="deals", kpi="deals_won", label="Deals", target=40, actual=None, elapsed=46, length=92
    )
    assert (none.pace, none.status) == (None, None)


rate = st.decimals(min_value=D("0.0001"), max_value=D(1), places=4)
targets = st.integers(min_value=1, max_value=10**12)
deals = st.integers(min_value=1, max_value=10**9)


@given(target=targets, deal=deals, rates=st.fixed_dictionaries(dict.fromkeys(RATES, rate)))
def test_the_planned_leads_are_always_enough(target: int, deal: int, rates: dict[str, Decimal]) -> None:
    w = plan(target, deal, **rates)
    # Forward through the funnel at the same rates, without rounding: leads x every rate x deal >= target.
    product = D(w.stage("leads").count)
    for name in core.RATE_NAMES:
        product *= rates[name]
    assert product * deal >= target
    # ... and stage by stage, each count converts into at least the next one.
    for upper, lower in zip(w.stages, w.stages[1:], strict=False):
        assert upper.rate is not None and upper.count * upper.rate >= lower.count
    assert w.stage("deals").count * deal >= target > (w.stage("deals").count - 1) * deal


@given(a=targets, b=targets, deal=deals, rates=st.fixed_dictionaries(dict.fromkeys(RATES, rate)))
def test_a_bigger_target_never_needs_fewer_records(
    a: int, b: int, deal: int, rates: dict[str, Decimal]
) -> None:
    low, high = sorted((a, b))
    small, big = plan(low, deal, **rates), plan(high, deal, **rates)
    assert all(small.counts[k] <= big.counts[k] for k in core.STAGE_KEYS)
    assert small.pipeline_needed <= big.pipeline_needed
