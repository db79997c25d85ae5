"""The statement's pure formatting: exact amounts in the currency (nothing rounded away), the pool formula
with the period's numbers, a team's share as a percent."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from okr.bonus import core
from okr.bonus.statements import TeamPool, formula_text, journey_url, money_exact
from okr.lib.money import format_money


def test_money_exact_keeps_every_digit_of_a_fractional_minor_amount() -> None:
    assert money_exact(450_000, "USD") == "USD 4,500.00"
    assert money_exact("450000", "USD") == "USD 4,500.00"
    assert money_exact("12345.5", "USD") == "USD 123.455"
    assert money_exact("1.25", "JPY") == "JPY 1.25"
    assert money_exact(-250, "EUR") == "EUR -2.50"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_exact_of_whole_minor_units_is_format_money(minor: int) -> None:
    assert money_exact(minor, "USD") == format_money(minor, "USD")


def _plan(pool_cap: int | None) -> core.Plan:
    return core.Plan(
        funding_rate=Decimal("0.03"),
        pipeline_rate=Decimal("0.01"),
        pool_cap=pool_cap,
        kr_cap=Decimal("1.5"),
        gate_curve=((Decimal("0.5"), Decimal(0)), (Decimal("1.5"), Decimal(2))),
        teams=(core.TeamPlan("sales", Decimal(1), core.AllocationRule.BY_CREDIT),),
        person_cap=None,
        leftover_policy=core.LeftoverPolicy.RETURN,
        clawback_days=90,
    )


def _summary(result: core.PoolResult) -> dict[str, object]:
    """The pool as a run's summary stores it (engine.compute)."""
    return {
        "multiplier": str(result.multiplier), "won_revenue": result.won_revenue,
        "sourced_pipeline": result.sourced_pipeline, "funding_rate": str(result.funding_rate),
        "pipeline_rate": str(result.pipeline_rate), "funded": str(result.funded), "exact": str(result.exact),
        "rounded": result.rounded, "pool_cap": result.pool_cap, "carried_forward": result.carried_forward,
        "pool": result.pool,
    }  # fmt: skip


def test_the_formula_has_the_same_steps_as_the_stored_one_in_the_currency() -> None:
    result = core.pool(
        _plan(None),
        won_revenue=1_000_001,
        sourced_pipeline=50,
        joint_score=Decimal("0.75"),
        carried_forward=7,
    )
    text = formula_text(_summary(result), "USD")
    # multiplier 0.5; funded 30,000.03 + 0.5 = 30,000.53 cents; exact 15,000.265 -> 15,000 + 7
    assert text == (
        "pool = R(0.5 × (0.03 × USD 10,000.01 + 0.01 × USD 0.50)) + USD 0.07 = R(0.5 × USD 300.0053) + USD 0.07"
        " = R(USD 150.00265) + USD 0.07 = USD 150.00 + USD 0.07 = USD 150.07"
    )
    assert text.count("=") == result.formula.count("=")


def test_the_formula_shows_the_pool_cap() -> None:
    result = core.pool(_plan(100_000), won_revenue=10_000_000, sourced_pipeline=0, joint_score=Decimal(1))
    text = formula_text(_summary(result), "USD")
    assert text.startswith("pool = min(USD 1,000.00, R(1 × (0.03 × USD 100,000.00")
    assert text.endswith("= min(USD 1,000.00, USD 3,000.00) + USD 0.00 = USD 1,000.00")


def test_share_percent_and_journey_link() -> None:
    team = TeamPool("sales", "0.335", "by_credit", 1, 1, 0, 1, "")
    assert team.share_percent == "33.5 %"
    assert TeamPool("m", "0.4", "equal", 1, 1, 0, 1, "").share_percent == "40 %"
    assert journey_url(7, model="w_shaped", scope="pipeline", period="2026-Q3") == (
        "/attribution/opportunities/7?model=w_shaped&scope=pipeline&period=2026-Q3"
    )
