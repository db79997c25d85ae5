"""The bonus projection's pure parts: forecast weights, exact rounding, open deals counted as won, the
what-if, and the one-team fast path held equal to engine.compute for every person."""

import random
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr.bonus import engine
from okr.bonus import projection_core as pc
from okr.goals.core import pipeline_forecast

PLAN: dict[str, Any] = {
    "funding_rate": "0.03",
    "pipeline_rate": "0",
    "pool_cap": None,
    "kr_cap": "1.5",
    "gate_curve": [["0.5", "0"], ["0.5", "0.5"], ["1.0", "1.0"], ["1.5", "2.0"]],
    "teams": [
        {"team": "sales", "share": "0.6", "rule": "by_credit"},
        {"team": "marketing", "share": "0.4", "rule": "by_credit"},
    ],
    "count_overlay": False,
    "cap_amount": None,
    "cap_multiple": None,
    "prorate": True,
    "leftover_policy": "carry_forward",
    "clawback_days": 90,
}


def person(pid: int, team: str, **more: Any) -> dict[str, Any]:
    return {"id": pid, "email": f"p{pid}@example.com", "name": f"P{pid}", "team": team, "employee_id": None,
            "start": None, "end": None, "target_bonus": 1_000_000, **more}  # fmt: skip


def inputs(**changes: Any) -> dict[str, Any]:
    """Rita (1) and Sue (2) in sales, Mia (3) in marketing; W1 100,000.00 won, 60/40, Mia's campaign."""
    base: dict[str, Any] = {
        "period": {"key": "2026-Q3", "start": "2026-07-01", "end": "2026-09-30", "days": 92},
        "currency": "USD",
        "as_of": "2026-09-20T16:00:00+00:00",
        "plan": dict(PLAN),
        "key_results": [{"id": 1, "title": "KR", "weight": "1", "attainment": "1"}],
        "won": [[101, 10_000_000]],
        "sourced": [],
        "unpriced": 0,
        "deals": {"101": ["W1", "Won one", "won", "2026-07-15"]},
        "carried_forward": {"amount": 0, "from_run_id": None},
        "people": [person(1, "sales"), person(2, "sales"), person(3, "marketing")],
        "credit": [[1, 101, None, 6_000_000], [2, 101, None, 4_000_000], [3, 101, 7, 10_000_000]],
        "adjustments": [],
        "reversals": [],
        "balances": [],
    }
    base.update(changes)
    return base


def deal(
    did: int, amount: int, category: str, probability: str | None = None, owner: int = 1, **more: Any
) -> pc.OpenDeal:
    return pc.OpenDeal(id=did, external_id=f"O{did}", name=f"Open {did}", amount=amount, category=category,
                       probability=None if probability is None else D(probability), owner_id=owner, **more)  # fmt: skip


# -- Weights and rounding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "probability", "weight"),
    [
        ("commit", "10", D(1)),
        ("closed", None, D(1)),
        ("best_case", "40", D("0.40")),
        ("best_case", "33.33", D("0.3333")),
        ("best_case", None, D(0)),
        ("pipeline", "90", D(0)),
        (None, "90", D(0)),
    ],
)
def test_the_forecast_weight_follows_the_category(
    category: str | None, probability: str | None, weight: D
) -> None:
    assert pc.forecast_weight(category, None if probability is None else D(probability)) == weight


def test_unknown_categories_and_bad_probabilities_are_refused() -> None:
    with pytest.raises(pc.ProjectionError, match="unknown forecast category"):
        pc.forecast_weight("maybe", D(50))
    with pytest.raises(pc.ProjectionError, match="0 to 100"):
        pc.forecast_weight("best_case", D(101))


@pytest.mark.parametrize(
    ("amount", "weight", "expected"),
    [
        (15, D("0.5"), 8),  # 7.5: half up
        (1, D("0.5"), 1),
        (1_000_001, D("0.3333"), 333_300),  # 333,300.3333
        (2_999, D("0.5"), 1_500),  # 1,499.5
        (10**15 + 1, D("0.5"), 5 * 10**14 + 1),  # exact far beyond 28 digits of context
        (12_345, D(0), 0),
        (12_345, D(1), 12_345),
    ],
)
def test_weighted_amounts_are_exact_and_round_half_up_once(amount: int, weight: D, expected: int) -> None:
    assert pc.weighted_amount(amount, weight) == expected


def test_a_float_amount_is_refused() -> None:
    with pytest.raises(pc.ProjectionError):
        pc.weighted_amount(1.5, D(1))  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9).map(lambda a: a * 100),  # whole currency units: each deal's share is exact
            st.sampled_from(["pipeline", "best_case", "commit", "closed"]),
            st.integers(0, 100),
        ),
        max_size=20,
    )
)
def test_the_weights_are_the_goals_pipeline_forecast(rows: list[tuple[int, str, int]]) -> None:
    """Per deal, the same rule as the KR forecast: the sum is that forecast (rounding aside, which this
    input avoids: the goals forecast rounds once over the sum, the projection once per deal)."""
    deals = [deal(i, a, c, str(p)) for i, (a, c, p) in enumerate(rows)]
    total = sum(d.counted(False) for d in deals)
    assert total == pipeline_forecast(0, [(a, c, D(p)) for a, c, p in rows])


# -- Open deals counted as won, and the what-if ------------------------------------------------------------


def test_open_deals_count_their_weight_and_credit_reps_by_splits() -> None:
    deals = [
        deal(201, 2_000_000, "commit"),
        deal(202, 1_000_001, "best_case", "40", revenue=((1, "p1@example.com", D(50)), (2, "p2@example.com", D(50)))),
        deal(203, 3_000_000, "pipeline"),
    ]  # fmt: skip
    projected = pc.project_inputs(inputs(), deals)
    assert projected["won"] == [[101, 10_000_000], [201, 2_000_000], [202, 400_000]]  # 400,000.4 -> 400,000
    assert [c for c in projected["credit"] if c[1] in (201, 202, 203)] == [
        [1, 201, None, 2_000_000],
        [1, 202, None, 200_000],
        [2, 202, None, 200_000],
    ]
    assert projected["deals"]["202"] == ["O202", "Open 202", "open", None]
    assert inputs()["won"] == [[101, 10_000_000]]  # the inputs are not changed


def test_the_what_if_changes_only_the_ticked_deals() -> None:
    deals = [deal(201, 2_000_000, "best_case", "50"), deal(202, 1_000_000, "best_case", "40", owner=2),
             deal(203, 3_000_000, "pipeline")]  # fmt: skip
    base = pc.project_inputs(inputs(), deals)
    ticked = pc.project_inputs(inputs(), deals, closing={203})
    changed = {tuple(w) for w in ticked["won"]} ^ {tuple(w) for w in base["won"]}
    assert changed == {(203, 3_000_000)}
    assert {tuple(c) for c in ticked["credit"]} - {tuple(c) for c in base["credit"]} == {
        (1, 203, None, 3_000_000)
    }
    ticked = pc.project_inputs(inputs(), deals, closing={201})
    assert {tuple(w) for w in ticked["won"]} ^ {tuple(w) for w in base["won"]} == {
        (201, 1_000_000),
        (201, 2_000_000),
    }


def test_the_hand_worked_projection() -> None:
    """Pool 0.03 x (10,000,000 + 2,000,000 commit) = 360,000; sales 216,000 = 18,000 per million of
    credit: Rita (6 + 2 million) 144,000, Sue 72,000; earned today 108,000 and 72,000."""
    deals = [deal(201, 2_000_000, "commit"), deal(203, 3_000_000, "pipeline")]
    earned = pc.prepare(inputs())
    projected = pc.with_changes(earned, pc.weighted_changes(deals))
    rita = pc.person_projection(1, earned=earned, projected=projected, deals=deals)
    assert (rita.earned, rita.projected, rita.pipeline) == (108_000, 144_000, 36_000)
    assert (rita.joint_score, rita.multiplier, rita.pool, rita.earned_pool) == (D(1), D(1), 360_000, 300_000)
    assert [(d.deal.id, d.weight, d.counted, d.credit, d.part) for d in rita.deals] == [
        (201, D(1), 2_000_000, 2_000_000, 36_000),
        (203, D(0), 0, 0, 0),
    ]
    # If the pipeline deal closes: + 3,000,000 -> pool 450,000, sales 270,000, Rita 11 of 15 million.
    what_if = pc.person_projection(1, earned=earned, projected=projected, deals=deals, closing={203, 999})
    assert what_if.closing == frozenset({203}) and what_if.closing_total == 3_000_000
    assert what_if.projected == 198_000 and what_if.earned == 108_000
    assert [(d.deal.id, d.closing, d.weight, d.counted) for d in what_if.deals] == [
        (201, False, D(1), 2_000_000),
        (203, True, D(1), 3_000_000),
    ]
    sue = pc.person_projection(2, earned=earned, projected=projected, deals=[])
    assert (sue.earned, sue.projected) == (72_000, 72_000)


def test_whose_deals_and_broken_splits() -> None:
    deals = [
        deal(201, 100, "commit", owner=1),
        deal(202, 100, "commit", owner=1, revenue=((2, "p2@example.com", D(100)),), overlay=((3, "p3@example.com", D(10)),)),
        deal(203, 100, "commit", revenue=((2, "p2@example.com", D(60)),)),
    ]  # fmt: skip
    assert pc.deals_of_person(deals, count_overlay=False) == ({1: (201,), 2: (202,)}, (203,))
    assert pc.deals_of_person(deals, count_overlay=True) == ({1: (201,), 2: (202,), 3: (202,)}, (203,))
    # A deal whose splits do not add up is left out of the projection, not guessed at.
    assert [w[0] for w in pc.project_inputs(inputs(), deals)["won"]] == [101, 201, 202]


# -- The fast path is the engine ---------------------------------------------------------------------------


def random_case(seed: int) -> tuple[dict[str, Any], list[pc.OpenDeal]]:
    r = random.Random(seed)
    rules = ["by_credit", "equal", "by_target_bonus"]
    plan = dict(PLAN, teams=[{"team": "sales", "share": "0.7", "rule": r.choice(rules)},
                             {"team": "marketing", "share": "0.3", "rule": r.choice(rules)}],
                count_overlay=r.random() < 0.5, prorate=r.random() < 0.7)  # fmt: skip
    if r.random() < 0.4:
        plan["cap_multiple"] = r.choice(["0.5", "1", "2"])
    elif r.random() < 0.3:
        plan["cap_amount"] = r.randint(10_000, 200_000)
    people = [person(i, "sales" if i <= 6 else "marketing", target_bonus=r.randint(0, 2_000_000),
                     start=r.choice([None, "2026-08-01"])) for i in range(1, 11)]  # fmt: skip
    won, credit = [], []
    for d in range(1, r.randint(1, 25)):
        amount = r.randint(1, 5_000_000)
        won.append([d, amount])
        credit.append([r.randint(1, 6), d, None, amount])
        credit.append([r.randint(7, 10), d, 50 + d, amount // 3])
    deals = []
    for k in range(r.randint(0, 12)):
        a, b = r.sample(range(1, 7), 2)
        splits = (
            ((a, f"p{a}@example.com", D(70)), (b, f"p{b}@example.com", D(30))) if r.random() < 0.4 else ()
        )
        overlay = ((r.randint(7, 10), "o@example.com", D(15)),) if r.random() < 0.3 else ()
        deals.append(deal(1000 + k, r.randint(0, 4_000_000), r.choice(["pipeline", "best_case", "commit", "closed"]),
                          str(r.randint(0, 100)), owner=r.randint(1, 6), revenue=splits, overlay=overlay))  # fmt: skip
    case = inputs(
        plan=plan, people=people, won=won, credit=sorted(credit, key=lambda c: (c[0], c[1], c[2] or 0)),
        key_results=[{"id": 1, "title": "KR", "weight": "1", "attainment": r.choice(["0.4", "0.8", "1", "1.3"])}],
        carried_forward={"amount": r.choice([0, 12_345]), "from_run_id": None},
        adjustments=[{"entry_id": 1, "person_id": 2, "amount": -5_000, "reason": "fix"}],
        reversals=[{"opportunity_id": 9, "closed_on": "2026-05-01", "reversed_on": "2026-07-10", "window_days": 90,
                    "source_run_id": 1, "traced": [[3, 700], [8, 300]]}],
        balances=[[4, -2_500]],
    )  # fmt: skip
    return case, deals


@pytest.mark.parametrize("seed", range(40))
def test_the_fast_path_equals_engine_compute_for_every_person(seed: int) -> None:
    case, deals = random_case(seed)
    earned = pc.prepare(case)
    projected = pc.with_changes(earned, pc.weighted_changes(deals))
    ticked = {d.id for d in deals[::2]}
    for closing in (set(), ticked):
        results = engine.compute(pc.project_inputs(case, deals, closing=closing))
        fast = pc.with_changes(projected, pc.closing_changes(deals, closing))
        for p in case["people"]:
            want = pc.person_result(results, p["id"])
            got = pc.person_line(fast, p["id"])
            assert (got.earning, got.payable, dict(got.traced)) == (
                want.earning,
                want.payable,
                dict(want.traced),
            )
    today = engine.compute(case)
    for p in case["people"]:
        assert pc.person_line(earned, p["id"]).payable == pc.person_result(today, p["id"]).payable


def test_someone_outside_the_plan_has_no_line() -> None:
    line = pc.person_line(pc.prepare(inputs()), 99)
    assert not line.in_run and line.payable == 0 and line.team is None
