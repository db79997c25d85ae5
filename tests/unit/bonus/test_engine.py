"""The run engine (okr.bonus.engine): inputs in, results out; invariants under any plan and data."""

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr.bonus import engine


def plan(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": 1,
        "version": 1,
        "funding_rate": "0.03",
        "pipeline_rate": "0",
        "pool_cap": None,
        "kr_cap": "1.5",
        "gate_curve": [["0.5", "0"], ["0.5", "0.5"], ["1.0", "1.0"], ["1.5", "2.0"]],
        "teams": [
            {"team": "sales", "share": "0.6", "rule": "by_credit"},
            {"team": "marketing", "share": "0.4", "rule": "by_credit"},
        ],
        "model": "linear",
        "scope": "revenue",
        "count_overlay": False,
        "cap_amount": None,
        "cap_multiple": None,
        "prorate": True,
        "leftover_policy": "carry_forward",
        "clawback_days": 90,
    }
    values.update(changes)
    return values


def inputs(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "engine": 1,
        "period": {"key": "2026-Q3", "start": "2026-07-01", "end": "2026-09-30", "days": 92},
        "currency": "USD",
        "as_of": "2026-09-20T16:00:00+00:00",
        "plan": plan(),
        "key_results": [{"id": 1, "title": "KR", "weight": "1", "attainment": "1"}],
        "won": [[1, 1_000_001]],
        "sourced": [],
        "deals": {"1": ["W1", "Deal", "won", "2026-07-15"]},
        "carried_forward": {"amount": 0, "from_run_id": None},
        "people": [
            {
                "id": 1,
                "email": "a@x",
                "name": "A",
                "team": "sales",
                "employee_id": None,
                "start": None,
                "end": None,
                "target_bonus": 0,
            },
            {
                "id": 2,
                "email": "b@x",
                "name": "B",
                "team": "marketing",
                "employee_id": None,
                "start": None,
                "end": None,
                "target_bonus": 0,
            },
        ],
        "credit": [[1, 1, None, 1_000_001], [2, 1, 7, 1_000_001]],
        "adjustments": [],
        "reversals": [],
        "balances": [],
    }
    values.update(changes)
    return values


def test_the_pool_is_rounded_once_and_split_exactly() -> None:
    results = engine.compute(inputs())
    # 0.03 x 1,000,001 = 30,000.03 -> 30,000; sales 18,000, marketing 12,000.
    assert results["pool"]["pool"] == 30_000
    assert [(t["team"], t["pool"]) for t in results["teams"]] == [("sales", 18_000), ("marketing", 12_000)]
    assert [(line["person_id"], line["amount"]) for line in results["lines"]] == [(1, 18_000), (2, 12_000)]
    assert results["traces"] == [[1, 1, None, 1_000_001, 18_000], [2, 1, 7, 1_000_001, 12_000]]


def test_a_float_anywhere_in_the_inputs_is_refused() -> None:
    with pytest.raises(engine.EngineError, match="float"):
        engine.compute(inputs(won=[[1, 1_000_001.0]]))


def test_an_invalid_plan_is_refused_with_its_reason() -> None:
    bad = plan(teams=[{"team": "sales", "share": "0.7", "rule": "by_credit"}])
    with pytest.raises(engine.EngineError, match="add up to exactly 1"):
        engine.compute(inputs(plan=bad))


def test_clawbacks_apply_within_the_window_only() -> None:
    reversal = {
        "opportunity_id": 9, "closed_on": "2026-05-01", "reversed_on": "2026-07-30", "window_days": 90,
        "source_run_id": 3, "traced": [[1, 5_000], [2, 1_000]],
    }  # fmt: skip
    inside = engine.compute(inputs(reversals=[reversal]))
    assert [(x["person_id"], x["amount"]) for x in inside["lines"] if x["kind"] == "clawback"] == [
        (1, -5_000),
        (2, -1_000),
    ]
    outside = engine.compute(inputs(reversals=[{**reversal, "reversed_on": "2026-07-31"}]))  # 91 days
    assert [x for x in outside["lines"] if x["kind"] == "clawback"] == []


def test_a_negative_total_pays_nothing_and_is_carried() -> None:
    results = engine.compute(
        inputs(
            adjustments=[{"entry_id": 4, "person_id": 2, "amount": -20_000, "reason": "overpaid"}],
            balances=[[1, -500]],
        )
    )
    by_person = {p["person_id"]: p for p in results["payable"]}
    assert by_person[2] == {
        "person_id": 2, "earning": 12_000, "adjustment": -20_000, "clawback": 0, "carried_in": 0,
        "total": -8_000, "payable": 0, "carried_out": -8_000,
    }  # fmt: skip
    assert by_person[1]["carried_in"] == -500 and by_person[1]["payable"] == 17_500
    assert results["paid"] == 17_500


people_st = st.lists(
    st.tuples(
        st.sampled_from(["sales", "marketing"]),
        st.integers(0, 10**9),  # credit
        st.integers(0, 10**7),  # target bonus
        st.integers(0, 92),  # days employed
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    people=people_st,
    rules=st.tuples(*[st.sampled_from(["by_credit", "equal", "by_target_bonus"])] * 2),
    share=st.integers(0, 100),
    cap=st.one_of(
        st.none(),
        st.integers(1, 10**6).map(lambda a: {"cap_amount": a}),
        st.sampled_from(["0.5", "1", "2.5"]).map(lambda m: {"cap_multiple": m}),
    ),
    attainment=st.sampled_from(["0", "0.49", "0.5", "0.75", "1", "1.2", "3"]),
    won=st.lists(st.integers(0, 10**10), min_size=0, max_size=6),
    carried=st.integers(0, 10**6),
)
def test_lines_and_leftover_add_up_to_the_pool_and_traces_to_each_line(
    people: list[tuple[str, int, int, int]],
    rules: tuple[str, str],
    share: int,
    cap: dict[str, Any] | None,
    attainment: str,
    won: list[int],
    carried: int,
) -> None:
    teams = [
        {"team": "sales", "share": f"{share}e-2", "rule": rules[0]},
        {"team": "marketing", "share": f"{100 - share}e-2", "rule": rules[1]},
    ]
    rows = [
        {
            "id": i + 1, "email": f"p{i}@x", "name": f"P{i}", "team": team, "employee_id": None,
            "start": (dt.date(2026, 7, 1) + dt.timedelta(days=92 - days)).isoformat(),
            "end": None, "target_bonus": target,
        }
        for i, (team, _, target, days) in enumerate(people)
    ]  # fmt: skip
    credit = [
        [i + 1, 100 + i % 3, None if team == "sales" else 7, c]
        for i, (team, c, _, _) in enumerate(people)
        if c
    ]
    data = inputs(
        plan=plan(teams=teams, **(cap or {})),
        key_results=[{"id": 1, "title": "KR", "weight": "1", "attainment": attainment}],
        won=[[i + 1, a] for i, a in enumerate(won)],
        people=rows,
        credit=credit,
        carried_forward={"amount": carried, "from_run_id": None},
    )
    results = engine.compute(data)
    pool = results["pool"]["pool"]
    earned = engine.sum_lines(results["lines"])
    assert earned + results["leftover"]["amount"] == pool
    assert sum(t["pool"] for t in results["teams"]) == pool
    for line in results["lines"]:
        assert line["amount"] >= 0
        if line.get("cap") is not None:
            assert line["amount"] <= line["cap"]
        traced = sum(t[4] for t in results["traces"] if t[0] == line["person_id"])
        assert traced in (0, line["amount"])
        if line["amount"] and line["credit"]:
            assert traced == line["amount"]
    assert engine.canonical(engine.compute(data)) == engine.canonical(results)
