"""DESIGN 3 money per touch and people credit: exact splits, the unattributed bucket, reps and marketers."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr.attribution.core import (
    PRESETS,
    AttributionError,
    CreditRow,
    ModelSpec,
    Opportunity,
    Scope,
    Split,
    Touch,
    attribute,
    credit,
    journey,
    marketer_credit,
    rep_credit,
    roles,
    scope_end,
    weights,
)

END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EFFECTS = {"email": D("0.5"), "webinar": D(1), "event": D("0.25")}


def at(days: float) -> datetime:
    return END - timedelta(days=days)


def touch(
    tid: int, days: float, *, ext: str | None = None, channel: str = "email", campaign: int | None = None
) -> Touch:
    return Touch(tid, ext or f"T{tid:03d}", at(days), campaign or 100 + tid, channel, "marketing")


def opp(
    amount: int = 10_000, status: str = "won", *, created: float = 10, closed: float | None = 0
) -> Opportunity:
    return Opportunity(7, "O-7", amount, at(created), None if closed is None else at(closed), status)


def rows_for(
    model: str, o: Opportunity, touches: list[Touch], scope: Scope = Scope.PIPELINE
) -> list[CreditRow]:
    spec = PRESETS[model]
    steps = journey(o, touches, scope=scope)
    end = scope_end(o, scope)
    w = (
        []
        if end is None
        else weights(
            spec, steps, roles(steps, opportunity=o, scope=scope), scope_end=end, removal_effects=EFFECTS
        )
    )
    return credit(o, steps, w, model_name=spec.name, scope=scope)


# -- money per touch -----------------------------------------------------------------------------------


def test_a_hundred_cents_over_three_linear_touches_gives_the_odd_cent_by_external_id() -> None:
    touches = [touch(1, 30, ext="T-C"), touch(2, 20, ext="T-A"), touch(3, 15, ext="T-B")]
    rows = rows_for("linear", opp(100), touches)
    assert [(r.touchpoint_id, r.amount) for r in rows] == [(1, 33), (2, 34), (3, 33)]
    assert sum(r.amount for r in rows) == 100


def test_credit_rows_carry_everything_needed_to_trace_a_figure() -> None:
    rows = rows_for("u_shaped", opp(1000), [touch(1, 30, channel="webinar", campaign=5), touch(2, 20)])
    assert rows == [
        CreditRow(7, 1, 5, "webinar", "u_shaped", Scope.PIPELINE, D("0.8"), 800),
        CreditRow(7, 2, 102, "email", "u_shaped", Scope.PIPELINE, D("0.2"), 200),
    ]
    assert rows[0]._asdict()["scope"] == "pipeline"


def test_rows_of_weight_zero_are_left_out() -> None:
    rows = rows_for("first_touch", opp(999), [touch(1, 30), touch(2, 20), touch(3, 15)])
    assert [(r.touchpoint_id, r.weight, r.amount) for r in rows] == [(1, D(1), 999)]


def test_a_touch_of_positive_weight_keeps_its_row_even_at_zero_money() -> None:
    rows = rows_for("linear", opp(2), [touch(1, 30), touch(2, 20), touch(3, 15)])
    assert [r.amount for r in rows] == [1, 1, 0]


def test_no_touch_credits_the_whole_amount_to_unattributed() -> None:
    for model in PRESETS:
        for scope in Scope:
            assert rows_for(model, opp(12_345), [], scope) == [
                CreditRow(7, None, None, "unattributed", model, scope, D(1), 12_345)
            ]
    rows = rows_for("linear", opp(12_345), [touch(1, 400)])  # outside the lookback
    assert rows == [CreditRow(7, None, None, "unattributed", "linear", Scope.PIPELINE, D(1), 12_345)]


def test_lost_opportunities_count_as_pipeline_but_carry_no_revenue_credit() -> None:
    lost = opp(500, "lost")
    touches = [touch(1, 30), touch(2, 5)]
    assert sum(r.amount for r in rows_for("linear", lost, touches, Scope.PIPELINE)) == 500
    assert rows_for("linear", lost, touches, Scope.REVENUE) == []
    # Even with no touch at all: no unattributed revenue for a lost deal.
    assert rows_for("linear", lost, [], Scope.REVENUE) == []


def test_open_opportunities_have_no_revenue_yet() -> None:
    still_open = opp(500, "open", closed=None)
    assert rows_for("linear", still_open, [touch(1, 30)], Scope.REVENUE) == []
    assert sum(r.amount for r in rows_for("linear", still_open, [touch(1, 30)])) == 500


def test_revenue_scope_credits_the_journey_up_to_the_close() -> None:
    rows = rows_for(
        "last_touch", opp(900, created=20, closed=0), [touch(1, 30), touch(2, 25), touch(3, 1)], Scope.REVENUE
    )
    assert [(r.touchpoint_id, r.scope, r.amount) for r in rows] == [(3, Scope.REVENUE, 900)]


def test_a_zero_amount_gives_zero_rows_that_still_carry_the_weights() -> None:
    rows = rows_for("linear", opp(0), [touch(1, 30), touch(2, 20)])
    assert [(r.weight, r.amount) for r in rows] == [(D("0.5"), 0), (D("0.5"), 0)]


def test_credit_refuses_mismatched_weights() -> None:
    steps = [touch(1, 30), touch(2, 20)]
    with pytest.raises(AttributionError, match="1 weights for a journey of 2"):
        credit(opp(), steps, [D(1)], model_name="x", scope=Scope.PIPELINE)
    with pytest.raises(AttributionError, match="cannot all be 0"):
        credit(opp(), steps, [D(0), D(0)], model_name="x", scope=Scope.PIPELINE)


# -- attribute() -----------------------------------------------------------------------------------------

MODELS = [*PRESETS.values(), ModelSpec.time_decay(timedelta(days=2), name="td_2d")]


def step_by_step(o: Opportunity, touches: list[Touch]) -> list[CreditRow]:
    out: list[CreditRow] = []
    for scope in Scope:
        for model in MODELS:
            steps = journey(o, touches, scope=scope)
            end = scope_end(o, scope)
            w = (
                []
                if end is None or not steps
                else weights(
                    model,
                    steps,
                    roles(steps, opportunity=o, scope=scope),
                    scope_end=end,
                    removal_effects=EFFECTS,
                )
            )
            out += credit(o, steps, w, model_name=model.name, scope=scope)
    return out


def test_attribute_gives_the_rows_of_the_step_by_step_functions() -> None:
    touches = [touch(1, 40, channel="webinar"), touch(2, 12, channel="event"), touch(3, 8), touch(4, -3)]
    cases = [
        (opp(1001, "won", created=10, closed=0), touches),
        (opp(77, "lost", created=10, closed=0), touches),
        (opp(5, "open", created=10, closed=None), touches),
        (opp(300, "won", created=10, closed=0), touches[:1]),
        (opp(300, "won", created=10, closed=0), []),
    ]
    got = list(attribute(cases, models=MODELS, removal_effects=EFFECTS))
    expected = [row for o, t in cases for row in step_by_step(o, t)]
    assert got == expected


def test_attribute_needs_removal_effects_for_data_driven() -> None:
    with pytest.raises(AttributionError, match="removal effects"):
        list(attribute([(opp(), [touch(1, 5)])], models=[PRESETS["data_driven"]]))
    # Other models do not.
    assert list(attribute([(opp(), [touch(1, 5)])], models=[PRESETS["linear"]], scopes=[Scope.PIPELINE]))


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[Opportunity, list[Touch]]]:
    out = []
    tid = 0
    for oid in range(draw(st.integers(1, 8))):
        touches = []
        for _ in range(draw(st.integers(0, 8))):
            tid += 1
            touches.append(
                Touch(
                    tid,
                    draw(st.sampled_from(["a", "b", "c"])) + str(tid),
                    END - timedelta(hours=draw(st.integers(0, 24 * 500))),
                    draw(st.integers(1, 4)),
                    draw(st.sampled_from(["email", "webinar", "event", "ads"])),
                    draw(st.sampled_from(["marketing", "sdr"])),
                )
            )
        closed = draw(st.integers(0, 24 * 100))
        created = closed + draw(st.integers(0, 24 * 100))
        status = draw(st.sampled_from(["won", "lost", "open"]))
        o = Opportunity(
            oid,
            f"O{oid}",
            draw(st.integers(0, 10**11)),
            END - timedelta(hours=created),
            END - timedelta(hours=closed),
            status,
        )
        out.append((o, touches))
    return out


@settings(max_examples=150, deadline=None)
@given(batch=batches())
def test_credits_add_up_to_each_amount_and_campaigns_plus_unattributed_to_the_total(
    batch: list[tuple[Opportunity, list[Touch]]],
) -> None:
    rows = list(attribute(batch, models=MODELS, removal_effects=EFFECTS))
    per_opportunity: Counter[tuple[int, str, str]] = Counter()
    per_bucket: Counter[tuple[str, str, int | None]] = Counter()
    for r in rows:
        per_opportunity[r.opportunity_id, r.model, r.scope] += r.amount
        per_bucket[r.model, r.scope, r.campaign_id] += r.amount
        assert (r.campaign_id is None) == (r.channel == "unattributed") == (r.touchpoint_id is None)
        assert r.weight > 0
    for o, _ in batch:
        for model in MODELS:
            assert per_opportunity[o.id, model.name, Scope.PIPELINE] == o.amount
            won = o.amount if o.status == "won" else 0
            assert per_opportunity[o.id, model.name, Scope.REVENUE] == won
    pipeline_total = sum(o.amount for o, _ in batch)
    revenue_total = sum(o.amount for o, _ in batch if o.status == "won")
    for model in MODELS:
        by_campaign = {k: v for k, v in per_bucket.items() if k[:2] == (model.name, Scope.PIPELINE)}
        assert sum(by_campaign.values()) == pipeline_total
        by_campaign = {k: v for k, v in per_bucket.items() if k[:2] == (model.name, Scope.REVENUE)}
        assert sum(by_campaign.values()) == revenue_total


# -- people credit --------------------------------------------------------------------------------------


def test_no_revenue_split_gives_everything_to_the_owner() -> None:
    assert rep_credit(10_000, [], [], 42, count_overlay=False) == {42: 10_000}


def test_revenue_splits_are_allocated_exactly_and_ties_go_to_the_smaller_email() -> None:
    splits = [Split(2, "zoe@example.com", D(50)), Split(3, "amy@example.com", D(50))]
    assert rep_credit(101, splits, [], 42, count_overlay=False) == {2: 50, 3: 51}
    thirds = [(1, "a@x", D("33.3333")), (2, "b@x", D("33.3333")), (3, "c@x", D("33.3334"))]
    assert rep_credit(100, thirds, [], 42, count_overlay=True) == {1: 33, 2: 33, 3: 34}


def test_overlay_is_added_half_up_only_when_the_plan_counts_it() -> None:
    revenue = [Split(2, "rep@x", D(100))]
    overlay = [Split(9, "sdr@x", D(10)), Split(2, "rep@x", D("2.5"))]
    # 10 % of 1005 = 100.5 -> 101; 2.5 % of 1005 = 25.125 -> 25 on top of the rep's 1005.
    assert rep_credit(1005, revenue, overlay, 42, count_overlay=True) == {2: 1030, 9: 101}
    assert rep_credit(1005, revenue, overlay, 42, count_overlay=False) == {2: 1005}
    # A reversal mirrors: -100.5 -> -101 (half away from zero).
    assert rep_credit(-1005, revenue, overlay[:1], 42, count_overlay=True) == {2: -1005, 9: -101}


def test_revenue_splits_must_add_up_to_a_hundred_percent() -> None:
    with pytest.raises(AttributionError, match="add up to 90 %, not 100 %"):
        rep_credit(100, [(1, "a@x", D(60)), (2, "b@x", D(30))], [], 42, count_overlay=False)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(-(10**12), 10**12),
    parts=st.lists(st.integers(1, 10**6), min_size=1, max_size=6),
)
def test_rep_credits_add_up_to_the_amount(amount: int, parts: list[int]) -> None:
    total = sum(parts)
    percents = [D(p * 100 * 10**4 // total).scaleb(-4) for p in parts]
    percents[0] += D(100) - sum(percents)
    if percents[0] <= 0:
        return
    splits = [(i, f"p{i}@x", p) for i, p in enumerate(percents)]
    assert sum(rep_credit(amount, splits, [(99, "o@x", D(5))], 42, count_overlay=False).values()) == amount


def test_marketer_credit_sums_the_campaigns_they_own() -> None:
    rows = [
        CreditRow(1, 10, 5, "email", "linear", Scope.REVENUE, D("0.5"), 300),
        CreditRow(1, 11, 6, "event", "linear", Scope.REVENUE, D("0.5"), 300),
        CreditRow(2, 12, 5, "email", "linear", Scope.REVENUE, D(1), 1000),
        CreditRow(3, 13, 7, "ads", "linear", Scope.REVENUE, D(1), 50),  # campaign without owner
        CreditRow(4, None, None, "unattributed", "linear", Scope.REVENUE, D(1), 999),
    ]
    owners: dict[int, int | None] = {5: 100, 6: 200, 7: None}
    assert marketer_credit(rows, owners) == {100: 1300, 200: 300}
    assert marketer_credit([], owners) == {}


def test_marketer_credit_refuses_mixed_models_or_scopes() -> None:
    rows = [
        CreditRow(1, 10, 5, "email", "linear", Scope.REVENUE, D(1), 300),
        CreditRow(1, 10, 5, "email", "linear", Scope.PIPELINE, D(1), 300),
    ]
    with pytest.raises(AttributionError, match="pass one model and scope"):
        marketer_credit(rows, {5: 1})
