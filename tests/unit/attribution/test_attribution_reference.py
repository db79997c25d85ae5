"""An independent implementation of DESIGN 3 (first, last, linear, milestone, data-driven credit) agrees
with okr's core to the cent on random journeys.

The reference below shares no code with okr: it reads DESIGN 3 literally with Fractions (journey,
roles, weights, the 10-decimal weights and the money split by the largest-remainder rule of 6.4) and
is written for clarity, not speed. The data-driven model takes removal effects as given (the chain
itself has its own independent reference in test_attribution_markov.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from okr.attribution import core

END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
UNITS = 10**10
EFFECTS = {"email": D("0.5"), "webinar": D("0.1234567890123"), "event": D(0), "ads": D("0.25")}
# name -> (first, lead creation, opportunity creation, closed won, middle) for the milestone models.
MILESTONES = {
    "u_shaped": ("0.4", "0.4", "0", "0", "0.2"),
    "w_shaped": ("0.3", "0.3", "0.3", "0", "0.1"),
    "full_path": ("0.225", "0.225", "0.225", "0.225", "0.1"),
    "odd": ("0.1", "0", "0.35", "0.3333333333", "0.2166666667"),
}
MODELS = ["first_touch", "last_touch", "linear", *MILESTONES, "data_driven"]


@dataclass(frozen=True)
class T:
    id: int
    ext: str
    at: datetime
    channel: str
    lead_created: datetime | None


@dataclass(frozen=True)
class Deal:
    id: int
    amount: int
    created: datetime
    closed: datetime | None
    status: str


# -- the reference --------------------------------------------------------------------------------------


def ref_journey(touches: Sequence[T], end: datetime, lookback: int = 365) -> list[T]:
    inside = [t for t in touches if end - timedelta(days=lookback) <= t.at <= end]
    return sorted(inside, key=lambda t: (t.at, t.ext))


def last_at_or_before(journey: list[T], moment: datetime) -> int | None:
    found = [i for i, t in enumerate(journey) if t.at <= moment]
    return found[-1] if found else None


def ref_roles(journey: list[T], deal: Deal, scope: str) -> dict[str, int]:
    if not journey:
        return {}
    held = {"first": 0}
    leads = [t.lead_created for t in journey if t.lead_created is not None]
    lead = last_at_or_before(journey, min(leads)) if leads else None
    held["lead"] = 0 if lead is None else lead
    opp = last_at_or_before(journey, deal.created)
    if opp is not None:
        held["opp"] = opp
    if scope == "revenue" and deal.status == "won" and deal.closed is not None:
        won = last_at_or_before(journey, deal.closed)
        if won is not None:
            held["won"] = won
    return held


def ref_scores(model: str, journey: list[T], held: dict[str, int]) -> list[Fraction]:
    n = len(journey)
    if n == 1:
        return [Fraction(1)]
    if model == "first_touch":
        return [Fraction(int(i == 0)) for i in range(n)]
    if model == "last_touch":
        return [Fraction(int(i == n - 1)) for i in range(n)]
    if model == "linear":
        return [Fraction(1)] * n
    if model == "data_driven":
        scores = [Fraction(EFFECTS.get(t.channel, D(0))) for t in journey]
        return scores if any(scores) else [Fraction(1)] * n
    first, lead, opp, won, middle = (Fraction(D(w)) for w in MILESTONES[model])
    scores = [Fraction(0)] * n
    with_role: set[int] = set()
    for role, weight in (("first", first), ("lead", lead), ("opp", opp), ("won", won)):
        if weight > 0 and role in held:  # a role of weight 0 is no role; an absent one drops its share
            scores[held[role]] += weight
            with_role.add(held[role])
    middles = [i for i in range(n) if i not in with_role]
    if middles and middle > 0:
        for i in middles:
            scores[i] = middle / len(middles)
    return scores if any(scores) else [Fraction(1)] * n


def largest_remainder(total: int, shares: list[Fraction], keys: list[tuple[Fraction, str]]) -> list[int]:
    """`total` split in proportion to `shares`; the units left go to the largest remainders, ties by
    `keys` (the larger weight first, then the smaller external id), then position."""
    whole = sum(shares)
    exact = [total * s / whole for s in shares]
    result = [int(x) for x in exact]  # floor: every x >= 0
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - result[i]), -keys[i][0], keys[i][1], i))
    for i in order[: total - sum(result)]:
        result[i] += 1
    return result


def ref_credit(
    model: str, deal: Deal, touches: Sequence[T], scope: str
) -> list[tuple[int | None, int]] | None:
    """(touch id, cents) per journey step (None: unattributed), or None when the deal has no credit."""
    if scope == "revenue" and deal.status != "won":
        return None
    end = deal.created if scope == "pipeline" else deal.closed
    assert end is not None
    journey = ref_journey(touches, end)
    if not journey:
        return [(None, deal.amount)]
    scores = ref_scores(model, journey, ref_roles(journey, deal, scope))
    exts = [t.ext for t in journey]
    units = largest_remainder(UNITS, scores, list(zip(scores, exts, strict=True)))
    weights = [Fraction(u) for u in units]
    cents = largest_remainder(deal.amount, weights, list(zip(weights, exts, strict=True)))
    return [(t.id, c) for t, c in zip(journey, cents, strict=True)]


# -- random deals and journeys ---------------------------------------------------------------------------


@st.composite
def deals(draw: st.DrawFn) -> tuple[Deal, list[T]]:
    touches = []
    leads = [END - timedelta(hours=draw(st.integers(0, 24 * 400))) for _ in range(draw(st.integers(1, 3)))]
    for k in range(draw(st.integers(0, 9))):
        hours = draw(st.integers(0, 24 * 420))
        touches.append(
            T(
                k + 1,
                draw(st.sampled_from(["a", "b", "z"])) + str(draw(st.integers(0, 99))) + f"-{k}",
                END - timedelta(hours=hours),
                draw(st.sampled_from(list(EFFECTS))),
                draw(st.sampled_from([*leads, None])),
            )
        )
    closed = END - timedelta(hours=draw(st.integers(0, 24 * 60)))
    created = closed - timedelta(hours=draw(st.integers(0, 24 * 120)))
    status = draw(st.sampled_from(["won", "lost", "open"]))
    amount = draw(st.one_of(st.integers(0, 100), st.integers(0, 10**12)))
    return Deal(1, amount, created, None if status == "open" else closed, status), touches


def okr_credit(deal: Deal, touches: list[T], scope: str) -> dict[str, list[tuple[int | None, int]]]:
    specs = []
    for model in MODELS:
        if model in MILESTONES:
            weights = core.MilestoneWeights(*(D(w) for w in MILESTONES[model]))
            specs.append(core.ModelSpec.custom_milestone(weights, name=model))
        else:
            specs.append(core.PRESETS[model])
    opportunity = core.Opportunity(deal.id, "O-1", deal.amount, deal.created, deal.closed, deal.status)
    account = [
        core.Touch(t.id, t.ext, t.at, 100 + t.id, t.channel, "marketing", t.lead_created) for t in touches
    ]
    found: dict[str, list[tuple[int | None, int]]] = {}
    for credit in core.journey_credits(
        [(opportunity, account, None)], models=specs, scope=core.Scope(scope), removal_effects=EFFECTS
    ):
        for m, model in enumerate(MODELS):
            if credit.steps:
                found[model] = [(t.id, a) for t, a in zip(credit.steps, credit.amounts[m], strict=True)]
            else:
                found[model] = [(None, credit.amounts[m][0])]
    return found


@settings(max_examples=400, deadline=None)
@given(case=deals(), scope=st.sampled_from(["pipeline", "revenue"]))
def test_okr_and_the_reference_agree_to_the_cent(case: tuple[Deal, list[T]], scope: str) -> None:
    deal, touches = case
    got = okr_credit(deal, touches, scope)
    for model in MODELS:
        expected = ref_credit(model, deal, touches, scope)
        if expected is None:
            assert model not in got
        else:
            assert got[model] == expected, model
            assert sum(c for _, c in expected) == deal.amount


def test_the_reference_on_a_hand_worked_journey() -> None:
    # Three touches, 100 cents, linear: 33.33.. each; the odd cent goes to the smallest external id.
    touches = [
        T(1, "b", END - timedelta(days=3), "email", None),
        T(2, "a", END - timedelta(days=2), "email", None),
        T(3, "c", END - timedelta(days=1), "email", None),
    ]
    deal = Deal(1, 100, END, END, "won")
    assert ref_credit("linear", deal, touches, "pipeline") == [(1, 33), (2, 34), (3, 33)]
    assert okr_credit(deal, touches, "pipeline")["linear"] == [(1, 33), (2, 34), (3, 33)]
    # U-shaped on the same journey: first and lead creation (no lead: the first touch again) share 80 %,
    # the two others 10 % each.
    assert ref_credit("u_shaped", deal, touches, "pipeline") == [(1, 80), (2, 10), (3, 10)]
