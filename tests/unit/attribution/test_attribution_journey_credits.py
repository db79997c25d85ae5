"""`journey_credits` (every model side by side, as runs store it) against `attribute` (model by model)."""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.attribution.test_attribution_credit import EFFECTS, batches

from okr.attribution.core import (
    PRESETS,
    WEIGHT_UNITS,
    MilestoneWeights,
    ModelSpec,
    Opportunity,
    Scope,
    Touch,
    account_journey,
    account_path,
    attribute,
    channel_path,
    journey_credits,
)

MODELS = [
    *PRESETS.values(),
    ModelSpec.custom_milestone(
        MilestoneWeights(D("0.1"), D("0.2"), D("0.3"), D("0.15"), D("0.25")), name="custom"
    ),
    ModelSpec.time_decay(timedelta(days=30), name="slow_decay"),
]


def _long(credits: list) -> dict[tuple[str, int], list[tuple[object, ...]]]:
    """The side-by-side figures read model by model, zero weights left out, as `attribute` gives them."""
    by: dict[tuple[str, int], list[tuple[object, ...]]] = defaultdict(list)
    for c in credits:
        for m, model in enumerate(MODELS):
            for i in range(max(len(c.steps), 1)):
                units = c.units[m][i]
                if not units:
                    continue
                t = c.steps[i] if c.steps else None
                by[model.name, c.opportunity.id].append(
                    (
                        t.id if t else None,
                        t.channel if t else "unattributed",
                        D(units).scaleb(-10),
                        c.amounts[m][i],
                    )
                )
    return by


@settings(max_examples=150, deadline=None)
@given(batch=batches(), scope=st.sampled_from(list(Scope)), rate=st.sampled_from([None, 1, 3]))
def test_journey_credits_are_the_rows_of_attribute_for_every_model(
    batch: list[tuple[Opportunity, list[Touch]]], scope: Scope, rate: int | None
) -> None:
    triples = [(o, touches, None if rate is None else o.amount * rate) for o, touches in batch]
    credits = list(journey_credits(triples, models=MODELS, scope=scope, removal_effects=EFFECTS))
    expected: dict[tuple[str, int], list[tuple[object, ...]]] = defaultdict(list)
    for row in attribute(batch, models=MODELS, scopes=(scope,), removal_effects=EFFECTS):
        expected[row.model, row.opportunity_id].append(
            (row.touchpoint_id, row.channel, row.weight, row.amount)
        )
    assert _long(credits) == expected
    for c in credits:
        for m in range(len(MODELS)):
            assert sum(c.units[m]) == WEIGHT_UNITS
            assert sum(c.amounts[m]) == c.opportunity.amount
            base = c.base[m]
            if rate is None:
                assert base is None
            else:
                assert base is not None and sum(base) == c.opportunity.amount * rate
                # The same weights split the base amount: each share within one unit of rate x share.
                assert all(abs(b - a * rate) <= rate for a, b in zip(c.amounts[m], base, strict=True))


@settings(max_examples=150, deadline=None)
@given(batch=batches(), lookback=st.sampled_from([1, 30, 365]))
def test_account_path_is_the_channel_path_of_the_account_journey(
    batch: list[tuple[Opportunity, list[Touch]]], lookback: int
) -> None:
    for _, touches in batch:
        points = [(t.occurred_at, t.external_id, t.channel) for t in touches]
        expected = channel_path(account_journey(touches, lookback_days=lookback))
        assert account_path(points, window_start=lambda latest: latest - timedelta(days=lookback)) == expected
