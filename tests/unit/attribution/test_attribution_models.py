"""DESIGN 3 models: hand-worked weights for every model and edge case, and their invariants."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr.attribution.core import (
    PRESETS,
    WEIGHT_PLACES,
    AttributionError,
    MilestoneWeights,
    ModelKind,
    ModelSpec,
    Opportunity,
    Role,
    Scope,
    Touch,
    journey,
    milestone_weight_problems,
    preset,
    roles,
    scope_end,
    weights,
)

END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EFFECTS = {"email": D("0.5"), "webinar": D(1), "event": D("0.25"), "ads": D(0)}


def at(days: float) -> datetime:
    return END - timedelta(days=days)


def touch(
    tid: int, days: float, *, ext: str | None = None, channel: str = "email", lead_days: float | None = None
) -> Touch:
    lead = None if lead_days is None else at(lead_days)
    return Touch(tid, ext or f"T{tid:03d}", at(days), 100 + tid, channel, "marketing", lead)


def opp(created_days: float, closed_days: float | None = None, status: str = "open") -> Opportunity:
    closed = None if closed_days is None else at(closed_days)
    return Opportunity(1, "O-1", 10_000, at(created_days), closed, status)


def weigh(
    model: str | ModelSpec, o: Opportunity, touches: list[Touch], scope: Scope = Scope.PIPELINE
) -> list[D]:
    spec = PRESETS[model] if isinstance(model, str) else model
    steps = journey(o, touches, scope=scope)
    held = roles(steps, opportunity=o, scope=scope)
    end = scope_end(o, scope)
    assert end is not None
    return weights(spec, steps, held, scope_end=end, removal_effects=EFFECTS)


def ds(*values: str) -> list[D]:
    return [D(v) for v in values]


ALL_MODELS = [*PRESETS.values(), ModelSpec.time_decay(timedelta(hours=6), name="td_6h")]


# -- one and two touches -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.name)
@pytest.mark.parametrize("scope", list(Scope))
def test_a_journey_of_one_touch_gives_it_everything(model: ModelSpec, scope: Scope) -> None:
    o = opp(5, 0, "won")
    assert weigh(model, o, [touch(1, 10, channel="ads")], scope) == [D(1)]


def test_every_model_gives_nothing_to_an_empty_journey() -> None:
    for model in ALL_MODELS:
        assert weights(model, [], {}, scope_end=END, removal_effects={}) == []


TWO = [touch(1, 7, channel="email", lead_days=7), touch(2, 0, channel="webinar")]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", ("1", "0")),
        ("last_touch", ("0", "1")),
        ("linear", ("0.5", "0.5")),
        # 2^-1 : 2^0 -> 1/3 : 2/3, the odd unit of 10^-10 to the larger remainder.
        ("time_decay", ("0.3333333333", "0.6666666667")),
        # T001 first + lead creation 0.8; T002 creates the opportunity, no role under u_shaped: middle.
        ("u_shaped", ("0.8", "0.2")),
        # T001 0.6, T002 0.3, no middle touch: 0.1 dropped, 0.6 : 0.3 renormalised.
        ("w_shaped", ("0.6666666667", "0.3333333333")),
        # 0.45 : 0.225 (closed-won dropped in the pipeline scope, no middle touch).
        ("full_path", ("0.6666666667", "0.3333333333")),
        # RE email 0.5, webinar 1.
        ("data_driven", ("0.3333333333", "0.6666666667")),
    ],
)
def test_two_touches_by_hand(model: str, expected: tuple[str, str]) -> None:
    assert weigh(model, opp(0), TWO) == ds(*expected)


def test_weights_have_exactly_ten_decimals() -> None:
    for model in ALL_MODELS:
        for w in weigh(model, opp(0), TWO):
            assert w.as_tuple().exponent == -WEIGHT_PLACES


# -- milestones ---------------------------------------------------------------------------------------


def test_one_touch_holding_several_roles_adds_them_up() -> None:
    # Lead created before every touch: T001 is first and lead-creation; T003 creates the opportunity.
    touches = [touch(1, 20, lead_days=25), touch(2, 10), touch(3, 0)]
    assert weigh("w_shaped", opp(0), touches) == ds("0.6", "0.1", "0.3")
    # Lead created at T003: it is lead-creation and opportunity-creation, 0.3 + 0.3.
    touches = [touch(1, 20, lead_days=0), touch(2, 10), touch(3, 0)]
    assert weigh("w_shaped", opp(0), touches) == ds("0.3", "0.1", "0.6")


def test_u_shaped_treats_the_opportunity_creation_touch_as_a_middle_touch() -> None:
    # Revenue scope: T001 first, T002 creates the opportunity (day 15), T003 creates the lead.
    o = opp(15, 0, "won")
    touches = [touch(1, 30), touch(2, 20), touch(3, 5, lead_days=5)]
    assert weigh("u_shaped", o, touches, Scope.REVENUE) == ds("0.4", "0.2", "0.4")
    # w_shaped gives T002 its role; no middle touch left: 0.1 dropped, 1/3 each, odd unit to T001.
    assert weigh("w_shaped", o, touches, Scope.REVENUE) == ds("0.3333333334", "0.3333333333", "0.3333333333")
    # full_path: T003 is lead-creation and closed-won 0.45; 0.225 / 0.9 = 0.25 for T001 and T002.
    assert weigh("full_path", o, touches, Scope.REVENUE) == ds("0.25", "0.25", "0.5")


def test_closed_won_share_is_dropped_in_the_pipeline_scope() -> None:
    # T001 first + lead 0.45, T002 middle 0.1, T003 opportunity-creation 0.225: over 0.775.
    touches = [touch(1, 20, lead_days=20), touch(2, 10), touch(3, 0)]
    got = weigh("full_path", opp(0), touches)
    # 18/31, 4/31, 9/31 -> floors 5806451612, 1290322580, 2903225806; two units left to the larger remainders.
    assert got == ds("0.5806451613", "0.1290322581", "0.2903225806")
    exact = [Fraction(18, 31), Fraction(4, 31), Fraction(9, 31)]
    assert all(abs(Fraction(w) - f) < Fraction(1, 10**10) for w, f in zip(got, exact, strict=True))


def test_empty_middle_share_is_dropped_and_the_rest_renormalised() -> None:
    # u_shaped, lead created at T002: T001 first 0.4, T002 lead 0.4, nobody in the middle: 1/2 each.
    touches = [touch(1, 20), touch(2, 10, lead_days=10)]
    assert weigh("u_shaped", opp(0), touches) == ds("0.5", "0.5")


def test_middle_share_is_spread_evenly() -> None:
    touches = [touch(1, 40, lead_days=40), touch(2, 30), touch(3, 20), touch(4, 10), touch(5, 0)]
    # u_shaped: T001 0.8; T002..T005 share 0.2 (the opportunity-creation touch T005 among them).
    assert weigh("u_shaped", opp(0), touches) == ds("0.8", "0.05", "0.05", "0.05", "0.05")
    # w_shaped: T001 0.6, T005 0.3; 0.1 over three: the odd unit to the smallest external id.
    assert weigh("w_shaped", opp(0), touches) == ds(
        "0.6", "0.0333333334", "0.0333333333", "0.0333333333", "0.3"
    )


def test_a_custom_milestone_model() -> None:
    custom = ModelSpec.custom_milestone(
        MilestoneWeights(D("0.5"), D(0), D("0.2"), D("0.1"), D("0.2")), name="ours"
    )
    assert custom.kind is ModelKind.MILESTONE and custom.name == "ours"
    o = opp(15, 0, "won")
    touches = [touch(1, 30), touch(2, 20), touch(3, 10), touch(4, 5)]
    # Revenue: T001 0.5, T002 opportunity-creation 0.2, T004 closed-won 0.1, T003 middle 0.2.
    assert weigh(custom, o, touches, Scope.REVENUE) == ds("0.5", "0.2", "0.2", "0.1")
    # Pipeline: T001 0.5, T002 0.2 (last at or before creation); no middle touch, no closed-won: 5/7, 2/7.
    assert weigh(custom, o, touches, Scope.PIPELINE) == ds("0.7142857143", "0.2857142857")


def test_a_milestone_model_with_every_share_dropped_splits_linearly() -> None:
    only_won = ModelSpec.custom_milestone(MilestoneWeights(D(0), D(0), D(0), D(1), D(0)), name="won_only")
    assert weigh(only_won, opp(0), [touch(1, 20), touch(2, 10), touch(3, 0)]) == ds(
        "0.3333333334", "0.3333333333", "0.3333333333"
    )
    o = opp(15, 0, "won")
    assert weigh(only_won, o, [touch(1, 20), touch(2, 10), touch(3, 0)], Scope.REVENUE) == ds("0", "0", "1")


def test_milestone_weight_validation_says_what_is_wrong() -> None:
    assert milestone_weight_problems(D("0.4"), D("0.4"), D(0), D(0), D("0.2")) == []
    assert milestone_weight_problems(D("0.5"), D("0.4"), D(0), D(0), D("0.2")) == [
        "the weights must add up to 1, they add up to 1.1"
    ]
    problems = milestone_weight_problems(D("-0.1"), D("0.4"), D(0), D("0.00000000001"), D("NaN"))
    assert problems == [
        "the first-touch weight must be 0 or more, got -0.1",
        "the closed-won weight may have at most 10 decimals, got 1E-11",
        "the middle weight must be a finite number, got NaN",
    ]
    assert milestone_weight_problems(D(1), D(0), D(0), D(0), 0.0) == [  # type: ignore[arg-type]
        "the middle weight must be a decimal number, got 0.0"
    ]
    with pytest.raises(AttributionError, match=r"add up to 1, they add up to 0\.9"):
        MilestoneWeights(D("0.3"), D("0.3"), D("0.3"), D(0), D(0))
    with pytest.raises(AttributionError, match="needs its weights"):
        ModelSpec("broken", ModelKind.MILESTONE)


def test_presets_are_the_designs() -> None:
    assert list(PRESETS) == [
        "first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "full_path", "data_driven"
    ]  # fmt: skip
    u, w, f = (preset(n).milestone for n in ("u_shaped", "w_shaped", "full_path"))
    assert u == MilestoneWeights(D("0.4"), D("0.4"), D(0), D(0), D("0.2"))
    assert w == MilestoneWeights(D("0.3"), D("0.3"), D("0.3"), D(0), D("0.1"))
    assert f == MilestoneWeights(D("0.225"), D("0.225"), D("0.225"), D("0.225"), D("0.1"))
    assert preset("time_decay").half_life == timedelta(days=7)
    with pytest.raises(AttributionError, match="unknown attribution model 'nope'; use one of first_touch"):
        preset("nope")


# -- time decay ------------------------------------------------------------------------------------------


def test_time_decay_halves_every_half_life() -> None:
    touches = [touch(1, 14), touch(2, 7), touch(3, 0)]
    # 1 : 2 : 4 -> 1/7, 2/7, 4/7; floors leave one unit, to 1/7's remainder (.571).
    assert weigh("time_decay", opp(0), touches) == ds("0.1428571429", "0.2857142857", "0.5714285714")


def test_time_decay_half_life_is_settable() -> None:
    one_day = ModelSpec.time_decay(timedelta(days=1), name="td_1d")
    assert weigh(one_day, opp(0), [touch(1, 2), touch(2, 1), touch(3, 0)]) == ds(
        "0.1428571429", "0.2857142857", "0.5714285714"
    )
    # Ten half lives apart: 1 : 1024.
    assert weigh(one_day, opp(0), [touch(1, 10), touch(2, 0)]) == ds("0.0009756098", "0.9990243902")
    with pytest.raises(AttributionError, match="half life"):
        ModelSpec.time_decay(timedelta(0))


def test_time_decay_measures_age_from_the_scope_end() -> None:
    # The youngest touch is a week before the end: the ratios are what count, 1 : 2.
    assert weigh("time_decay", opp(0), [touch(1, 14), touch(2, 7)]) == ds("0.3333333333", "0.6666666667")
    # Revenue scope: ages from the close, not the creation.
    o = opp(7, 0, "won")
    assert weigh("time_decay", o, [touch(1, 14), touch(2, 7), touch(3, 0)], Scope.REVENUE) == ds(
        "0.1428571429", "0.2857142857", "0.5714285714"
    )


def test_time_decay_of_irrational_ratios_matches_an_independent_computation() -> None:
    # Ages 0, 1, 2.5 and 300 days with a 7-day half life: compare with 50-digit Decimal powers.
    from decimal import localcontext

    ages = [300, 2.5, 1, 0]
    touches = [touch(i + 1, a) for i, a in enumerate(ages)]
    got = weigh("time_decay", opp(0), touches)
    with localcontext() as ctx:
        ctx.prec = 50
        raw = [D(2) ** (-D(str(a)) / 7) for a in ages]
        total = sum(raw)
        exact = [r / total for r in raw]
    assert sum(got) == 1
    for w, e in zip(got, exact, strict=True):
        assert abs(w - e) <= D("1E-10")


def test_time_decay_refuses_a_touch_after_the_end() -> None:
    steps = [touch(1, 1), touch(2, -1)]
    with pytest.raises(AttributionError, match="after the scope's end"):
        weights(PRESETS["time_decay"], steps, {}, scope_end=END)


def test_very_old_touches_with_a_short_half_life_do_not_underflow() -> None:
    hourly = ModelSpec.time_decay(timedelta(hours=1), name="td_1h")
    # 300 days and 5 days before the youngest touch: 2^-7200 and 2^-120, nothing at ten decimals.
    touches = [touch(1, 3300), touch(2, 3005), touch(3, 3000)]
    o = Opportunity(1, "O", 100, at(2999), None, "open")
    got = weigh(hourly, o, touches)
    assert got == ds("0", "0", "1")
    assert sum(got) == 1


# -- data driven -----------------------------------------------------------------------------------------


def test_data_driven_weighs_each_touch_by_its_channels_removal_effect() -> None:
    touches = [touch(1, 30, channel="email"), touch(2, 20, channel="event"), touch(3, 10, channel="webinar")]
    # 0.5 : 0.25 : 1 over 1.75.
    assert weigh("data_driven", opp(0), touches) == ds("0.2857142857", "0.1428571429", "0.5714285714")
    # A channel the run did not see, or with RE 0, weighs 0.
    touches = [touch(1, 30, channel="email"), touch(2, 20, channel="ads"), touch(3, 10, channel="radio")]
    assert weigh("data_driven", opp(0), touches) == ds("1", "0", "0")


def test_data_driven_with_zero_removal_effects_is_linear() -> None:
    touches = [touch(1, 30, channel="ads"), touch(2, 20, channel="radio"), touch(3, 10, channel="ads")]
    assert weigh("data_driven", opp(0), touches) == ds("0.3333333334", "0.3333333333", "0.3333333333")


def test_data_driven_needs_removal_effects() -> None:
    steps = [touch(1, 30), touch(2, 20)]
    with pytest.raises(AttributionError, match="removal effects"):
        weights(PRESETS["data_driven"], steps, {}, scope_end=END)
    with pytest.raises(AttributionError, match="must be 0 or more"):
        weights(PRESETS["data_driven"], steps, {}, scope_end=END, removal_effects={"email": D("-0.1")})


def test_linear_odd_units_go_to_the_smallest_external_ids() -> None:
    touches = [touch(1, 30, ext="C"), touch(2, 20, ext="A"), touch(3, 10, ext="B")]
    assert weigh("linear", opp(0), touches) == ds("0.3333333333", "0.3333333334", "0.3333333333")
    six = [touch(i, 30 - i, ext=f"X{7 - i}") for i in range(1, 7)]
    # 10^10 / 6 = 1666666666 rest 4: X1..X4 (the last four touches) get one more unit.
    assert weigh("linear", opp(0), six) == ds(*["0.1666666666"] * 2, *["0.1666666667"] * 4)


# -- invariants ------------------------------------------------------------------------------------------

CHANNELS = ["email", "webinar", "event", "ads", "radio"]


@st.composite
def journeys(draw: st.DrawFn) -> tuple[Opportunity, list[Touch], Scope]:
    n = draw(st.integers(min_value=1, max_value=12))
    seconds = st.integers(min_value=0, max_value=400 * 86_400)
    touches = [
        Touch(
            i,
            draw(st.text("ABC0123", min_size=1, max_size=3)) + f"-{i}",
            END - timedelta(seconds=draw(seconds), microseconds=draw(st.integers(0, 999_999))),
            draw(st.integers(1, 5)),
            draw(st.sampled_from(CHANNELS)),
            "marketing",
            draw(st.none() | seconds.map(lambda s: END - timedelta(seconds=s))),
        )
        for i in range(n)
    ]
    closed = draw(st.integers(min_value=0, max_value=200 * 86_400))
    created = closed + draw(st.integers(min_value=0, max_value=200 * 86_400))
    status = draw(st.sampled_from(["won", "lost", "open"]))
    o = Opportunity(
        1,
        "O",
        draw(st.integers(0, 10**12)),
        END - timedelta(seconds=created),
        END - timedelta(seconds=closed),
        status,
    )
    return o, touches, draw(st.sampled_from(list(Scope)))


weight_values = st.integers(min_value=0, max_value=10**10).map(lambda u: D(u).scaleb(-10))


@st.composite
def milestone_models(draw: st.DrawFn) -> ModelSpec:
    parts = draw(st.lists(st.integers(0, 1000), min_size=5, max_size=5).filter(any))
    total = sum(parts)
    units = [p * 10**10 // total for p in parts]
    units[draw(st.integers(0, 4))] += 10**10 - sum(units)
    return ModelSpec.custom_milestone(MilestoneWeights(*(D(u).scaleb(-10) for u in units)))


models = st.one_of(
    st.sampled_from(list(PRESETS.values())),
    st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=400)).map(ModelSpec.time_decay),
    milestone_models(),
)
effects = st.dictionaries(st.sampled_from(CHANNELS), st.decimals(min_value=0, max_value=1, places=28))


@settings(max_examples=400, deadline=None)
@given(case=journeys(), model=models, removal_effects=effects)
def test_weights_sum_to_exactly_one_for_every_model_and_journey(
    case: tuple[Opportunity, list[Touch], Scope], model: ModelSpec, removal_effects: dict[str, D]
) -> None:
    o, touches, scope = case
    end = scope_end(o, scope)
    if end is None:
        return
    steps = journey(o, touches, scope=scope)
    got = weights(
        model, steps, roles(steps, opportunity=o, scope=scope), scope_end=end, removal_effects=removal_effects
    )
    assert len(got) == len(steps)
    if not steps:
        assert got == []
        return
    assert sum(got) == 1
    assert sum(Fraction(w) for w in got) == 1  # exact, whatever the context precision
    assert all(w >= 0 and w.as_tuple().exponent == -WEIGHT_PLACES for w in got)
    if len(steps) == 1:
        assert got == [D(1)]


@st.composite
def four_role_journeys(draw: st.DrawFn) -> tuple[Opportunity, list[Touch], int, int]:
    """A won deal's revenue journey whose four roles sit on four different touches, with a middle."""
    n = draw(st.integers(min_value=5, max_value=12))
    gaps = draw(st.lists(st.integers(1, 86_400 * 20), min_size=n, max_size=n))
    times = [END - timedelta(seconds=sum(gaps[i:])) for i in range(n)]  # strictly increasing, last < END
    lead, created = sorted(draw(st.lists(st.integers(1, n - 2), min_size=2, max_size=2, unique=True)))
    touches = [
        Touch(i, f"T{draw(st.integers(0, 99)):02d}-{i}", at_, i, "email", "marketing", times[lead])
        for i, at_ in enumerate(times)
    ]
    o = Opportunity(1, "O", 100, times[created], times[-1], "won")
    return o, touches, lead, created


@settings(max_examples=200, deadline=None)
@given(case=four_role_journeys())
def test_role_shares_are_kept_exactly_and_the_middle_is_spread_evenly(
    case: tuple[Opportunity, list[Touch], int, int],
) -> None:
    o, touches, lead, created = case
    n = len(touches)
    steps = journey(o, touches, scope=Scope.REVENUE)
    held = roles(steps, opportunity=o, scope=Scope.REVENUE)
    assert held == {
        Role.FIRST: 0,
        Role.LEAD_CREATION: lead,
        Role.OPPORTUNITY_CREATION: created,
        Role.CLOSED_WON: n - 1,
    }
    end = scope_end(o, Scope.REVENUE)
    assert end is not None

    def check(model: str, shares: dict[int, str], middle: str) -> None:
        got = weights(PRESETS[model], steps, held, scope_end=end)
        for i, share in shares.items():
            assert got[i] == D(share)
        rest = [w for i, w in enumerate(got) if i not in shares]
        assert sum(rest) == D(middle)
        assert max(rest) - min(rest) <= D("1E-10")  # even, up to the odd unit

    check("full_path", {0: "0.225", lead: "0.225", created: "0.225", n - 1: "0.225"}, "0.1")
    check("w_shaped", {0: "0.3", lead: "0.3", created: "0.3"}, "0.1")
    # u_shaped: the opportunity-creation and closed-won touches are middle touches.
    check("u_shaped", {0: "0.4", lead: "0.4"}, "0.2")
