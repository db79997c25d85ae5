"""`okr.attribution.vector` gives the core's integers bit for bit: journeys, roles, weights, money, paths."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okr.attribution import vector
from okr.attribution.core import (
    CONVERSION,
    NULL,
    PRESETS,
    ROLE_BITS,
    START,
    WON,
    MilestoneWeights,
    ModelSpec,
    Opportunity,
    Scope,
    Touch,
    journey_credits,
    markov_paths,
    roles,
    solve_removal_effects,
    solve_transitions,
)

END = datetime(2026, 6, 30, 12, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHANNELS = ["email", "webinar", "event", "ads", "social"]
ODD = MilestoneWeights(D("0.1234567891"), D("0.2"), D("0.3"), D("0.1765432109"), D("0.2"))
MODELS = [
    *PRESETS.values(),
    ModelSpec.custom_milestone(ODD, name="custom"),
    ModelSpec.custom_milestone(MilestoneWeights(D(0), D(0), D(0), D(1), D(0)), name="only_won"),
    ModelSpec.time_decay(timedelta(days=30), name="slow_decay"),
    ModelSpec.time_decay(timedelta(minutes=15), name="fast_decay"),
]


def us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


Batch = tuple[list[tuple[Opportunity, int]], dict[int, list[Touch]]]


@st.composite
def accounts(draw: st.DrawFn) -> Batch:
    """Accounts with touches (times often equal, channels often repeated) and deals sharing them."""
    deals: list[tuple[Opportunity, int]] = []
    touches: dict[int, list[Touch]] = {}
    tid = oid = 0
    hours = st.integers(0, 24 * 500) if draw(st.booleans()) else st.sampled_from([0, 1, 2, 48, 49, 24 * 90])
    for account in range(1, draw(st.integers(1, 6)) + 1):
        mine = []
        for _ in range(draw(st.integers(0, 9))):
            tid += 1
            lead = draw(st.one_of(st.none(), hours))
            mine.append(
                Touch(
                    tid,
                    draw(st.sampled_from(["a", "b", "c", "ab"]))
                    + str(draw(st.integers(0, 10**6)))
                    + f"-{tid}",
                    END - timedelta(hours=draw(hours)),
                    draw(st.integers(1, 4)),
                    draw(st.sampled_from(CHANNELS)),
                    draw(st.sampled_from(["marketing", "sdr"])),
                    None if lead is None else END - timedelta(hours=lead),
                )
            )
        touches[account] = mine
        for _ in range(draw(st.integers(0, 3))):
            oid += 1
            closed = draw(hours)
            created = closed + draw(st.integers(0, 24 * 100))
            status = draw(st.sampled_from(["won", "lost", "open"]))
            amount = draw(
                st.one_of(st.integers(0, 10**9), st.integers(0, 10**16), st.integers(-(10**6), 10**6))
            )
            deals.append(
                (
                    Opportunity(
                        oid,
                        f"O{oid}",
                        amount,
                        END - timedelta(hours=created),
                        None if status == "open" else END - timedelta(hours=closed),
                        status,
                    ),
                    account,
                )
            )
    return deals, touches


EFFECTS = st.one_of(
    st.just({c: D(0) for c in CHANNELS}),
    st.fixed_dictionaries(
        {
            c: st.sampled_from([D(0), D("0.5"), D("0.25"), D("0.1234567890123456789012345678")])
            for c in CHANNELS
        }
    ),
    st.fixed_dictionaries({c: st.decimals(0, 1, places=28) for c in CHANNELS[:3]}),
)


def _arrays(batch: Batch) -> tuple[vector.Touches, list[Touch]]:
    _, touches = batch
    flat = [(account, t) for account, ts in touches.items() for t in ts]
    ranks = {e: k for k, e in enumerate(sorted(t.external_id for _, t in flat))}
    account = np.array([a for a, _ in flat], dtype=np.int64)
    at = np.array([us(t.occurred_at) for _, t in flat], dtype=np.int64)
    rank = np.array([ranks[t.external_id] for _, t in flat], dtype=np.int64)
    order = vector.sort_order(account, at, rank)
    ordered = [flat[k][1] for k in order]
    lead = [vector.NO_TIME if t.lead_created_at is None else us(t.lead_created_at) for t in ordered]
    return (
        vector.Touches(
            account=account[order],
            at=at[order],
            rank=rank[order],
            channel=np.array([CHANNELS.index(t.channel) for t in ordered], dtype=np.int64),
            lead_at=np.array(lead, dtype=np.int64),
        ),
        ordered,
    )


def _journeys(
    batch: Batch, scope: Scope, rate: int | None
) -> tuple[list[Opportunity], vector.Journeys, object]:
    deals, _ = batch
    if scope is Scope.REVENUE:
        deals = [(o, a) for o, a in deals if o.status == WON and o.closed_at is not None]
    touches, ordered = _arrays(batch)
    ends = [o.created_at if scope is Scope.PIPELINE else o.closed_at for o, _ in deals]
    won = [
        us(o.closed_at) if scope is Scope.REVENUE and o.status == WON and o.closed_at else vector.NO_TIME
        for o, _ in deals
    ]
    journeys, steps = vector.journeys(
        touches,
        account=np.array([a for _, a in deals], dtype=np.int64),
        end=np.array([us(e) for e in ends], dtype=np.int64),
        created=np.array([us(o.created_at) for o, _ in deals], dtype=np.int64),
        closed_won=np.array(won, dtype=np.int64),
        amount=np.array([o.amount for o, _ in deals], dtype=np.int64),
        base=np.array([o.amount * (rate or 0) for o, _ in deals], dtype=np.int64),
        priced=np.array([rate is not None] * len(deals), dtype=bool),
        lookback_days=365,
    )
    return [o for o, _ in deals], journeys, [ordered[k] for k in steps]


def _fits(batch: Batch, rate: int | None) -> bool:
    return all(abs(o.amount) * (rate or 1) < 2**62 for o, _ in batch[0])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=accounts(),
    scope=st.sampled_from(list(Scope)),
    rate=st.sampled_from([None, 1, 3]),
    effects=EFFECTS,
)
def test_every_model_gives_the_cores_units_amounts_and_base(
    batch: Batch, scope: Scope, rate: int | None, effects: dict[str, D]
) -> None:
    if not _fits(batch, rate):
        return
    opportunities, journeys, steps = _journeys(batch, scope, rate)
    triples = [
        (o, batch[1][a], None if rate is None else o.amount * rate)
        for (o, a) in batch[0]
        if o in opportunities
    ]
    expected = list(journey_credits(triples, models=MODELS, scope=scope, removal_effects=effects))
    got = vector.credit(journeys, MODELS, vector.scaled_effects(effects, CHANNELS))
    sizes = journeys.sizes.tolist()
    assert [len(c.steps) for c in expected] == sizes
    offset = 0
    for j, c in enumerate(expected):
        n = sizes[j]
        assert [t.id for t in steps[offset : offset + n]] == [t.id for t in c.steps]
        if n:
            assert journeys.roles[offset : offset + n].tolist() == c.roles
        for m, model in enumerate(MODELS):
            if not n:
                continue
            r = got[m]
            assert r.units[offset : offset + n].tolist() == c.units[m], model.name
            assert r.amount[offset : offset + n].tolist() == c.amounts[m], model.name
            if rate is not None:
                assert r.base[offset : offset + n].tolist() == c.base[m], model.name
        offset += n


def test_roles_of_one_journey_match_the_core() -> None:
    touch = [
        Touch(1, "b", END - timedelta(days=30), 1, "email", "marketing", END - timedelta(days=20)),
        Touch(2, "a", END - timedelta(days=30), 1, "ads", "marketing", None),
        Touch(3, "c", END - timedelta(days=10), 2, "event", "sdr", END - timedelta(days=40)),
        Touch(4, "d", END - timedelta(days=1), 2, "email", "sdr", None),
    ]
    o = Opportunity(1, "O1", 1000, END - timedelta(days=5), END, "won")
    batch: Batch = ([(o, 1)], {1: touch})
    _, journeys, steps = _journeys(batch, Scope.REVENUE, None)
    held = roles(steps, opportunity=o, scope=Scope.REVENUE)  # type: ignore[arg-type]
    mask = [0] * 4
    for role, i in held.items():
        mask[i] |= ROLE_BITS[role]
    assert journeys.roles.tolist() == mask
    # Equal times order by external id: "a" before "b"; the lead-creation role goes to the last touch at
    # or before the earliest lead creation (40 days ago: none, so the first touch).
    assert [t.id for t in steps] == [2, 1, 3, 4]  # type: ignore[attr-defined]
    assert mask == [ROLE_BITS["first"] | ROLE_BITS["lead_creation"], 0, ROLE_BITS["opportunity_creation"], 8]


def test_a_touch_after_the_end_is_refused() -> None:
    j = vector.Journeys(
        start=np.array([0, 2]),
        end=np.array([10]),
        amount=np.array([100]),
        base=np.array([0]),
        priced=np.array([False]),
        at=np.array([5, 11]),
        channel=np.array([0, 0]),
        rank=np.array([0, 1]),
        roles=np.array([1, 0]),
    )
    with pytest.raises(ValueError, match="after the scope's end"):
        vector.credit(j, [PRESETS["time_decay"]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=accounts(), scope=st.sampled_from(list(Scope)), effects=EFFECTS)
def test_journeys_the_float_bound_leaves_in_doubt_take_the_exact_path(
    batch: Batch, scope: Scope, effects: dict[str, D]
) -> None:
    """Where the float result is in doubt, the journey's units are the core's exact ones (here every
    float result is spoiled and marked in doubt: only the exact path can give the core's units)."""
    if not _fits(batch, None):
        return
    opportunities, journeys, _ = _journeys(batch, scope, None)
    triples = [(o, batch[1][a], None) for (o, a) in batch[0] if o in opportunities]
    models = [PRESETS["time_decay"], PRESETS["data_driven"], MODELS[-1]]
    expected = list(journey_credits(triples, models=models, scope=scope, removal_effects=effects))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vector, "_floating", lambda ix, *_: (np.zeros(len(ix.jid), dtype=np.int64), ix.n > 0))
        got = vector.credit(journeys, models, vector.scaled_effects(effects, CHANNELS))
    units = [[u for c in expected for u in c.units[m] if c.steps] for m in range(len(models))]
    assert [g.units.tolist() for g in got] == units


@settings(max_examples=100, deadline=None)
@given(batch=accounts())
def test_transition_counts_solve_to_the_cores_removal_effects(batch: Batch) -> None:
    deals = [(o, a) for o, a in batch[0] if o.status in ("won", "lost") and o.closed_at is not None]
    touches, _ = _arrays(batch)
    closed = np.array([us(o.closed_at) for o, _ in deals], dtype=np.int64)
    lo, hi = vector.windows(
        touches, np.array([a for _, a in deals], dtype=np.int64), closed - 365 * vector.US_PER_DAY, closed
    )
    converted = np.array([o.status == "won" for o, _ in deals], dtype=bool)
    counts, paths, conversions = vector.window_transitions(touches, lo, hi, converted)
    states = {vector.START_CODE: START, vector.CONVERSION_CODE: CONVERSION, vector.NULL_CODE: NULL}
    named = {(states.get(a) or CHANNELS[a], states.get(b) or CHANNELS[b]): n for (a, b), n in counts.items()}
    expected = solve_removal_effects(markov_paths([(o, batch[1][a]) for o, a in deals]))
    got = solve_transitions(named, paths, conversions)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(
    journeys=st.lists(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=7),
        min_size=1,
        max_size=6,
    ),
    data=st.data(),
)
def test_units_left_over_go_by_remainder_then_score_then_external_id(
    journeys: list[list[tuple[int, int]]], data: st.DataObject
) -> None:
    """Many equal remainders and scores: the one-key sort and its fallback give DESIGN 6.4's order."""
    sizes = [len(j) for j in journeys]
    start = np.append(0, np.cumsum(sizes)).astype(np.int64)
    ranks = [data.draw(st.permutations(range(n))) for n in sizes]
    ix = vector._Index(
        np.arange(len(sizes)), start, np.array([r for rs in ranks for r in rs], dtype=np.int64)
    )
    left = np.array([data.draw(st.integers(0, n - 1)) for n in sizes], dtype=np.int64)
    remainders = np.array([r for j in journeys for r, _ in j], dtype=np.int64)
    scores = np.array([s for j in journeys for _, s in j], dtype=np.int64)
    got = sorted(ix.award(left, remainders, scores).tolist())
    expected = []
    for k, j in enumerate(journeys):
        order = sorted(range(len(j)), key=lambda i, j=j, k=k: (-j[i][0], -j[i][1], ranks[k][i]))
        expected += [int(start[k]) + i for i in order[: left[k]]]
    assert got == sorted(expected)
