"""Joint bonus core (DESIGN 6): plan checks, gate curve, pool, team pools, people lines, traces."""

import dataclasses
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.bonus.core import (
    BonusError,
    Cap,
    Person,
    Plan,
    PoolResult,
    TeamAllocation,
    TeamPlan,
    allocate_team,
    gate_multiplier,
    joint_score,
    plan_problems,
    pool,
    team_pools,
    trace,
)

CURVE = ((D("0.5"), D(0)), (D("0.5"), D("0.5")), (D("1.0"), D("1.0")), (D("1.5"), D("2.0")))


def make_plan(**changes: object) -> Plan:
    plan = Plan(
        funding_rate=D("0.03"),
        pipeline_rate=D("0.01"),
        gate_curve=CURVE,
        teams=(TeamPlan("sales", D("0.6"), "by_credit"), TeamPlan("marketing", D("0.4"), "equal")),
        person_cap=Cap(multiple=D(2)),
    )
    return dataclasses.replace(plan, **changes)  # type: ignore[arg-type]


def person(pid: str, *, credit: int = 0, target: int = 0, days: int = 90, of: int = 90) -> Person:
    return Person(
        id=pid,
        email=f"{pid}@example.com",
        days_employed=days,
        days_in_period=of,
        credit=credit,
        target_bonus=target,
    )


def assert_no_float(value: object) -> None:
    """Every figure in a result is int, Decimal, str, bool or None (tuples and dataclasses walked)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            assert_no_float(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            assert_no_float(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_no_float(k)
            assert_no_float(v)
    else:
        assert value is None or isinstance(value, int | D | str), type(value)
        assert not isinstance(value, float)


# ---------------------------------------------------------------------------------------------------
# The hand-worked organisation


SALES = [
    person("alice", credit=600_000, target=50_000),
    person("bob", credit=300_000, target=100_000),
    person("carol", credit=100_000, target=80_000, days=45),
]
MARKETING = [
    person("dan", target=40_000),
    person("erin", target=30_000, days=60),
    person("frank", target=60_000, days=30),
]


def test_small_organisation_by_hand() -> None:
    """A whole run computed by hand.

    Joint score: KRs (1.2, w1), (0.9, w1), (2.0 capped at 1.5, w2) -> (1.2 + 0.9 + 3.0) / 4 = 1.275.
    Multiplier: between (1.0, 1.0) and (1.5, 2.0): 1 + 1 x 0.275 / 0.5 = 1.55.
    Funded: 0.03 x 10,000,000 + 0.01 x 2,345,678 = 300,000 + 23,456.78 = 323,456.78.
    Pool: R(1.55 x 323,456.78) = R(501,358.009) = 501,358; + 1,234 carried forward = 502,592.
    Team pools: sales 0.6 -> 301,555.2, marketing 0.4 -> 201,036.8; floors 301,555 + 201,036 leave
    one unit, to marketing's larger fraction (.8): sales 301,555, marketing 201,037.
    Sales (by_credit, cap 2 x prorated target): caps alice 100,000, bob 200,000, carol 2 x 80,000 x 1/2
    = 80,000. Round 1 over credit 1,000,000: alice 180,933 > 100,000, held. Round 2: 201,555 over bob
    300,000 / carol 100,000: 151,166.25 and 50,388.75, both under their caps. Split: 100,000 + 151,166
    + 50,388 = 301,554, one unit to carol (.75): 100,000 / 151,166 / 50,389.
    Marketing (equal, prorated: 1, 2/3, 1/3): caps dan 80,000, erin 2 x 30,000 x 2/3 = 40,000, frank
    2 x 60,000 x 1/3 = 40,000. Round 1: dan 100,518.5 > 80,000, held. Round 2: 121,037 over 2/3 and
    1/3: erin 80,691.33 and frank 40,345.67, both over, held. Round 3: nobody left to take the rest:
    lines 80,000 / 40,000 / 40,000 and leftover 201,037 - 160,000 = 41,037.
    Trace of bob's 151,166 over deals D1 200,000 and D2 100,000: 100,777.33 / 50,388.67 -> one unit
    to D2: 100,777 / 50,389.
    """
    plan = make_plan()
    assert plan_problems(plan) == {}
    score = joint_score([(D("1.2"), D(1)), (D("0.9"), D(1)), (D("2.0"), D(2))], plan.kr_cap)
    assert score == D("1.275")
    result = pool(
        plan, won_revenue=10_000_000, sourced_pipeline=2_345_678, joint_score=score, carried_forward=1234
    )
    assert result.multiplier == D("1.55")
    assert result.funded == D("323456.78")
    assert result.exact == D("501358.009")
    assert result.rounded == 501_358
    assert result.pool == 502_592
    assert not result.capped
    assert result.formula == (
        "pool = R(1.55 × (0.03 × 10000000 + 0.01 × 2345678)) + 1234 = R(1.55 × 323456.78) + 1234"
        " = R(501358.009) + 1234 = 501358 + 1234 = 502592"
    )
    teams = team_pools(plan, result.pool)
    assert teams == {"sales": 301_555, "marketing": 201_037}

    sales = allocate_team(teams["sales"], SALES, "by_credit", plan.person_cap)
    assert [(ln.person_id, ln.amount, ln.cap, ln.capped) for ln in sales.lines] == [
        ("alice", 100_000, 100_000, True),
        ("bob", 151_166, 200_000, False),
        ("carol", 50_389, 80_000, False),
    ]
    assert sales.leftover == 0
    assert sales.cap_rounds == 2
    assert sales.lines[1].exact == D("151166.25")
    assert sales.lines[2].proration == D("0.5")

    marketing = allocate_team(teams["marketing"], MARKETING, "equal", plan.person_cap)
    assert [(ln.person_id, ln.amount, ln.cap, ln.capped) for ln in marketing.lines] == [
        ("dan", 80_000, 80_000, True),
        ("erin", 40_000, 40_000, True),
        ("frank", 40_000, 40_000, True),
    ]
    assert marketing.leftover == 41_037
    assert marketing.cap_rounds == 3
    assert "equal parts" in marketing.rule_text

    assert trace(151_166, [("D1", 200_000), ("D2", 100_000)]) == {"D1": 100_777, "D2": 50_389}
    for value in (result, sales, marketing):
        assert_no_float(value)


def test_pool_cap_applies_before_the_carried_forward_amount() -> None:
    """min(400,000, R(501,358.009)) + 1,234 = 401,234."""
    plan = make_plan(pool_cap=400_000)
    result = pool(
        plan, won_revenue=10_000_000, sourced_pipeline=2_345_678, joint_score=D("1.275"), carried_forward=1234
    )
    assert result.capped
    assert result.pool == 401_234
    assert result.formula.startswith(
        "pool = min(400000, R(1.55 × (0.03 × 10000000 + 0.01 × 2345678))) + 1234"
    )
    assert result.formula.endswith("= min(400000, 501358) + 1234 = 401234")


def test_pool_rounds_once_half_up_on_the_exact_value() -> None:
    """Multiplier 1/3 (curve (0,0)-(3,1) at score 1) x 1.5 x 1 = 0.5 exactly -> 1.

    A multiplier rounded to 28 digits first would give 0.4999... and a pool of 0.
    """
    plan = make_plan(gate_curve=((D(0), D(0)), (D(3), D(1))), funding_rate=D("1.5"), pipeline_rate=D(0))
    result = pool(plan, won_revenue=1, sourced_pipeline=0, joint_score=D(1))
    assert result.exact == D("0.5")
    assert result.rounded == 1
    assert result.multiplier == D("0.3333333333333333333333333333")


def test_pool_below_the_gate_is_only_the_carried_forward_amount() -> None:
    result = pool(
        make_plan(), won_revenue=10_000_000, sourced_pipeline=0, joint_score=D("0.49"), carried_forward=7
    )
    assert result.multiplier == 0
    assert result.pool == 7


def test_pool_refuses_an_invalid_plan_and_float() -> None:
    with pytest.raises(BonusError, match="funding_rate"):
        pool(make_plan(funding_rate=D(-1)), won_revenue=1, sourced_pipeline=0, joint_score=D(1))
    with pytest.raises(BonusError):
        pool(make_plan(), won_revenue=1, sourced_pipeline=0, joint_score=1.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# Plan validation


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"funding_rate": D("-0.01")}, "funding_rate"),
        ({"funding_rate": 0.03}, "funding_rate"),
        ({"pipeline_rate": D(-1)}, "pipeline_rate"),
        ({"pool_cap": 0}, "pool_cap"),
        ({"kr_cap": D(0)}, "kr_cap"),
        ({"gate_curve": ()}, "gate_curve"),
        ({"gate_curve": ((D(1), D(1)), (D("0.5"), D(2)))}, "gate_curve"),
        ({"gate_curve": ((D("0.5"), D(1)), (D(1), D("0.5")))}, "gate_curve"),
        ({"gate_curve": ((D(1), D(0)), (D(1), D(1)), (D(1), D(2)))}, "gate_curve"),
        ({"gate_curve": ((D(-1), D(0)),)}, "gate_curve"),
        ({"teams": (TeamPlan("sales", D("0.6")), TeamPlan("marketing", D("0.3")))}, "teams"),
        ({"teams": (TeamPlan("sales", D("0.5")), TeamPlan("sales", D("0.5")))}, "teams[1].name"),
        ({"teams": (TeamPlan("sales", D("1.2")), TeamPlan("marketing", D("-0.2")))}, "teams[1].share"),
        ({"teams": (TeamPlan("sales", D(1), "by_quota"),)}, "teams[0].rule"),
        ({"person_cap": Cap(amount=0)}, "person_cap"),
        ({"person_cap": Cap(multiple=D(0))}, "person_cap"),
        ({"person_cap": Cap(amount=100, multiple=D(2))}, "person_cap"),
        ({"person_cap": Cap()}, "person_cap"),
        ({"leftover_policy": "keep"}, "leftover_policy"),
        ({"clawback_days": -1}, "clawback_days"),
    ],
)
def test_plan_problems_name_the_field(changes: dict[str, object], field: str) -> None:
    assert field in plan_problems(make_plan(**changes))


def test_a_valid_plan_has_no_problem() -> None:
    assert plan_problems(make_plan()) == {}
    assert (
        plan_problems(make_plan(person_cap=None, pool_cap=1, leftover_policy="return", clawback_days=0)) == {}
    )
    three = (
        TeamPlan("a", D("0.3333")),
        TeamPlan("b", D("0.3333")),
        TeamPlan("c", D("0.3334"), "by_target_bonus"),
    )
    assert plan_problems(make_plan(teams=three, person_cap=Cap(amount=1))) == {}


# ---------------------------------------------------------------------------------------------------
# Gate curve and joint score


@pytest.mark.parametrize(
    ("score", "multiplier"),
    [
        ("0", "0"),  # before the first point
        ("0.49", "0"),
        ("0.5", "0.5"),  # on the step: the higher multiplier holds from that score
        ("0.75", "0.75"),  # between (0.5, 0.5) and (1.0, 1.0)
        ("1.0", "1.0"),  # on a point
        ("1.25", "1.5"),  # between (1.0, 1.0) and (1.5, 2.0)
        ("1.5", "2.0"),  # the last point
        ("3", "2.0"),  # beyond the last point
    ],
)
def test_gate_multiplier_at_every_boundary(score: str, multiplier: str) -> None:
    assert gate_multiplier(CURVE, D(score)) == D(multiplier)


def test_gate_multiplier_single_point_and_step_at_the_start() -> None:
    assert gate_multiplier(((D(1), D(2)),), D("0.999")) == 0
    assert gate_multiplier(((D(1), D(2)),), D(1)) == 2
    step = ((D(0), D("0.2")), (D(1), D("0.2")), (D(1), D(1)))
    assert gate_multiplier(step, D(0)) == D("0.2")
    assert gate_multiplier(step, D("0.999")) == D("0.2")
    assert gate_multiplier(step, D(1)) == 1


@given(st.decimals(0, 3, places=3), st.decimals(0, 3, places=3))
def test_gate_multiplier_never_goes_down(a: D, b: D) -> None:
    lo, hi = min(a, b), max(a, b)
    assert gate_multiplier(CURVE, lo) <= gate_multiplier(CURVE, hi)


def test_joint_score() -> None:
    assert joint_score([]) == 0
    assert joint_score([(D(1), D(0))]) == 0
    # Floored at 0, capped at the default 1.5: (0 + 1.5) / 2.
    assert joint_score([(D("-0.5"), D(1)), (D(4), D(1))]) == D("0.75")
    assert joint_score([(D(4), D(1))], D(2)) == 2
    assert isinstance(joint_score([(D(1), D(3))]), D)
    with pytest.raises(BonusError):
        joint_score([(D(1), D(-1))])


# ---------------------------------------------------------------------------------------------------
# Team pools and people


def test_team_pools_negative_is_the_negation() -> None:
    plan = make_plan()
    assert team_pools(plan, -502_592) == {"sales": -301_555, "marketing": -201_037}


def test_caps_redistributed_over_two_rounds() -> None:
    """1,000 by credit 50 / 30 / 20, caps 2 x target: 100 / 350 / 1,000.

    Round 1: a 500 > 100, held. Round 2: 900 over 30 / 20: b 540 > 350, held. Round 3: 550 to c alone,
    under 1,000. Lines 100 / 350 / 550, nothing left over.
    """
    people = [
        person("a", credit=50, target=50),
        person("b", credit=30, target=175),
        person("c", credit=20, target=500),
    ]
    result = allocate_team(1000, people, "by_credit", Cap(multiple=D(2)))
    assert [ln.amount for ln in result.lines] == [100, 350, 550]
    assert [ln.capped for ln in result.lines] == [True, True, False]
    assert result.cap_rounds == 3
    assert result.leftover == 0


def test_proration_scales_equal_weight_and_target_bonus_not_credit() -> None:
    """Equal: weights 1 and 1/2 -> 666.67 / 333.33 -> 667 / 333.

    By target bonus: 100 x 1 and 100 x 1/3 -> 750 / 250. By credit: half a period changes nothing.
    """
    half = [person("a"), person("b", days=45)]
    assert [ln.amount for ln in allocate_team(1000, half, "equal").lines] == [667, 333]
    third = [person("a", target=100), person("b", target=100, days=30)]
    assert [ln.amount for ln in allocate_team(1000, third, "by_target_bonus").lines] == [750, 250]
    credit = [person("a", credit=10), person("b", credit=10, days=1)]
    assert [ln.amount for ln in allocate_team(1000, credit, "by_credit").lines] == [500, 500]
    # Days beyond the period count as the full period.
    over = [person("a", days=120), person("b")]
    assert [ln.amount for ln in allocate_team(10, over, "equal").lines] == [5, 5]


def test_absolute_cap_is_not_prorated_and_a_fractional_cap_rounds_down() -> None:
    late = [person("a", credit=1, days=1), person("b", credit=1)]
    assert [ln.amount for ln in allocate_team(100, late, "by_credit", Cap(amount=50)).lines] == [50, 50]
    # 2 x 10 x 1/3 = 6.67 -> a cap of 6.
    third = [person("a", target=10, days=30)]
    result = allocate_team(100, third, "by_target_bonus", Cap(multiple=D(2)))
    assert result.lines[0].cap == 6
    assert result.lines[0].amount == 6
    assert result.leftover == 94


def test_a_team_with_no_credit_leaves_its_pool() -> None:
    result = allocate_team(5000, [person("a"), person("b")], "by_credit")
    assert [ln.amount for ln in result.lines] == [0, 0]
    assert result.leftover == 5000
    assert allocate_team(0, [], "equal").leftover == 0
    assert allocate_team(7, [], "equal").leftover == 7


def test_ties_go_to_the_smaller_email() -> None:
    result = allocate_team(100, [person("b"), person("a"), person("c")], "equal")
    assert {ln.person_id: ln.amount for ln in result.lines} == {"a": 34, "b": 33, "c": 33}


def test_allocate_team_refuses_bad_input() -> None:
    with pytest.raises(BonusError):
        allocate_team(-1, [person("a")], "equal")
    with pytest.raises(BonusError):
        allocate_team(1, [person("a")], "by_quota")
    with pytest.raises(BonusError):
        allocate_team(1, [person("a"), person("a")], "equal")
    with pytest.raises(BonusError):
        allocate_team(1, [person("a", credit=-1)], "by_credit")
    with pytest.raises(BonusError):
        allocate_team(1, [person("a", of=0)], "equal")


# ---------------------------------------------------------------------------------------------------
# Trace


def test_trace_cases() -> None:
    assert trace(0, []) == {}
    assert trace(0, [("D1", 0)]) == {"D1": 0}
    assert trace(10, [("D1", 0), ("D2", 5)]) == {"D1": 0, "D2": 10}
    assert trace(-151_166, [("D1", 200_000), ("D2", 100_000)]) == {"D1": -100_777, "D2": -50_389}
    with pytest.raises(BonusError):
        trace(1, [("D1", 0)])
    with pytest.raises(BonusError):
        trace(1, [("D1", -1), ("D2", 2)])


# ---------------------------------------------------------------------------------------------------
# Properties

people_st = st.lists(
    st.builds(
        lambda credit, target, days, of: (credit, target, min(days, of + 10), of),
        st.integers(0, 1_000_000),
        st.integers(0, 200_000),
        st.integers(0, 400),
        st.integers(1, 366),
    ),
    max_size=8,
)
cap_st = st.one_of(
    st.none(),
    st.builds(lambda n: Cap(amount=n), st.integers(1, 500_000)),
    st.builds(lambda m: Cap(multiple=m), st.decimals(D("0.01"), D(5), places=2)),
)


@given(
    st.integers(0, 10_000_000), people_st, st.sampled_from(["by_credit", "equal", "by_target_bonus"]), cap_st
)
def test_lines_and_leftover_make_the_team_pool(
    amount: int, raw: list[tuple[int, int, int, int]], rule: str, cap: Cap | None
) -> None:
    people = [person(f"p{i}", credit=c, target=t, days=d, of=o) for i, (c, t, d, o) in enumerate(raw)]
    result = allocate_team(amount, people, rule, cap)
    assert isinstance(result, TeamAllocation)
    assert sum(ln.amount for ln in result.lines) + result.leftover == amount
    assert result.leftover >= 0
    for ln in result.lines:
        assert ln.amount >= 0
        if ln.cap is not None:
            assert ln.amount <= ln.cap
        assert type(ln.amount) is int
    if result.leftover:
        # Only when nobody with a weight is left free to take it.
        assert all(ln.capped or ln.weight == 0 for ln in result.lines)
    assert_no_float(result)


@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=10))
def test_traces_sum_to_the_line_and_negate(line: int, credits: list[int]) -> None:
    deals = [(f"D{i}", c) for i, c in enumerate(credits)]
    if not any(credits):
        deals.append(("Dx", 1))
    split = trace(line, deals)
    assert sum(split.values()) == line
    assert trace(-line, deals) == {k: -v for k, v in split.items()}
    assert all(type(v) is int for v in split.values())


@given(
    st.integers(-(10**9), 10**9),
    st.lists(st.decimals(0, 1, places=4), min_size=1, max_size=5).filter(lambda xs: sum(xs) > 0),
)
def test_team_pools_sum_and_negate(amount: int, raw: list[D]) -> None:
    total = sum(raw)
    # Shares summing to exactly 1: the last team takes what the rounded others leave.
    shares = [(x / total).quantize(D("0.0001")) for x in raw[:-1]]
    shares.append(D(1) - sum(shares))
    if shares[-1] < 0:
        return
    plan = make_plan(teams=tuple(TeamPlan(f"t{i}", s) for i, s in enumerate(shares)))
    split = team_pools(plan, amount)
    assert sum(split.values()) == amount
    assert team_pools(plan, -amount) == {k: -v for k, v in split.items()}


@given(st.integers(0, 10**10), st.integers(0, 10**10), st.decimals(0, 3, places=4), st.integers(0, 10**6))
def test_pool_is_int_and_no_float(won: int, sourced: int, score: D, carried: int) -> None:
    result = pool(
        make_plan(), won_revenue=won, sourced_pipeline=sourced, joint_score=score, carried_forward=carried
    )
    assert isinstance(result, PoolResult)
    assert type(result.pool) is int
    assert result.pool >= carried
    assert_no_float(result)
