"""Benchmark: the pure attribution core (DESIGN 3) for one scope over many won opportunities.

    .venv/bin/python bench/attribution_core.py
    .venv/bin/python bench/attribution_core.py --opportunities 50000 --profile
    .venv/bin/python bench/attribution_core.py --save-reference var/attribution_reference.json
    .venv/bin/python bench/attribution_core.py --reference var/attribution_reference.json

Synthetic, deterministic data (seeded): won opportunities with ~10 touches each over 8 channels,
several leads per account, a few touches outside the lookback window or after the close, a few
timestamp ties. Prints the time per model (revenue scope, `attribute` with that model alone), the
time of all six models in one pass, and the rows produced. Before timing, the rows of a sample
(the first 2,000 opportunities, every model) are checked against SAMPLE_DIGEST, the digest of the
rows the original (unoptimised) core produced: any change in a weight or an amount fails the run.
"""

import argparse
import cProfile
import hashlib
import json
import pstats
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from okr.attribution.core import (
    PRESETS,
    CreditRow,
    ModelSpec,
    Opportunity,
    Scope,
    Touch,
    attribute,
    journey_credits,
    markov_paths,
    solve_removal_effects,
)

CHANNELS = ("email", "webinar", "event", "paid_search", "paid_social", "organic", "content", "partner")
TEAMS = ("marketing", "marketing", "sdr", "sales")
MODELS = ("first_touch", "last_touch", "linear", "time_decay", "w_shaped", "data_driven")
SCOPE = Scope.REVENUE
SAMPLE = 2_000
SAMPLE_DIGEST = "1df97f0ede6d45ea9308591dc5a9893a8bc231b2898ac8f471f1407507de79e8"
"""SHA-256 of the sample rows (first SAMPLE opportunities, all MODELS) as the original core made them."""

Data = list[tuple[Opportunity, list[Touch]]]


def synthetic(n: int, seed: int = 20_260_601) -> Data:
    """n won opportunities, each with its account's touches (~10, 8 channels), deterministic."""
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    data: Data = []
    tid = 0
    for k in range(n):
        closed = base + timedelta(days=rng.randint(0, 180), minutes=rng.randint(0, 1439))
        created = closed - timedelta(days=rng.randint(5, 120), minutes=rng.randint(0, 1439))
        leads = [
            closed - timedelta(days=rng.randint(1, 400), seconds=rng.randint(0, 86_399)) for _ in range(3)
        ]
        touches: list[Touch] = []
        count = max(1, int(rng.gauss(10, 3)))
        previous: datetime | None = None
        for _ in range(count):
            tid += 1
            roll = rng.random()
            if roll < 0.02:  # outside the window (too old) or after the close
                at = closed - timedelta(days=rng.randint(366, 500))
            elif roll < 0.04:
                at = closed + timedelta(days=rng.randint(1, 30))
            elif roll < 0.07 and previous is not None:
                at = previous  # a tie: the external id decides
            else:
                at = closed - timedelta(days=rng.randint(0, 364), seconds=rng.randint(0, 86_399))
            previous = at
            channel = CHANNELS[min(7, int(rng.expovariate(0.4)))]
            touches.append(
                Touch(
                    tid,
                    f"T{rng.randint(0, 10**9):010d}",
                    at,
                    1_000 + rng.randint(0, 400),
                    channel,
                    rng.choice(TEAMS),
                    rng.choice(leads),
                )
            )
        amount = rng.choice((rng.randint(1, 99), rng.randint(100, 10**6), rng.randint(10**6, 10**10)))
        data.append((Opportunity(k + 1, f"O{k + 1:07d}", amount, created, closed, "won"), touches))
    return data


def removal_effects(data: Data) -> dict[str, Decimal]:
    """RE per channel: the won journeys convert; every 5th account also has a touch-only journey."""
    touch_only = [touches[: len(touches) // 2] for _, touches in data[::5]]
    return solve_removal_effects(markov_paths(data, touch_only)).as_decimals()


def run(data: Data, models: Sequence[ModelSpec], effects: dict[str, Decimal]) -> list[CreditRow]:
    """All credit rows of `models` over `data`, one scope."""
    return list(attribute(data, models=models, scopes=(SCOPE,), removal_effects=effects))


def as_json(rows: list[CreditRow]) -> list[list[object]]:
    """Rows as JSON values; the weight as its exact Decimal text (exponent included)."""
    return [
        [
            r.opportunity_id,
            r.touchpoint_id,
            r.campaign_id,
            r.channel,
            r.model,
            str(r.scope),
            str(r.weight),
            r.amount,
        ]
        for r in rows
    ]


def digest(rows: list[list[object]]) -> str:
    """SHA-256 of the rows' canonical JSON."""
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--opportunities", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the all-models pass (top 25)")
    parser.add_argument("--save-reference", type=Path, help="write the sample rows to this JSON file")
    parser.add_argument("--reference", type=Path, help="compare the sample rows with this JSON file")
    opts = parser.parse_args()

    t0 = time.perf_counter()
    data = synthetic(opts.opportunities)
    touches = sum(len(t) for _, t in data)
    print(f"data: {len(data):,} won opportunities, {touches:,} touches ({time.perf_counter() - t0:.2f} s)")
    t0 = time.perf_counter()
    effects = removal_effects(data)
    print(f"removal effects: {time.perf_counter() - t0:.2f} s")
    models = [PRESETS[m] for m in MODELS]

    # The sample's own removal effects: the sample rows do not depend on --opportunities.
    sample = as_json(run(data[:SAMPLE], models, removal_effects(data[:SAMPLE])))
    sample_digest = digest(sample)
    if opts.save_reference:
        opts.save_reference.parent.mkdir(parents=True, exist_ok=True)
        opts.save_reference.write_text(json.dumps(sample, separators=(",", ":")))
        print(f"sample saved: {len(sample):,} rows to {opts.save_reference}, digest {sample_digest}")
    if opts.reference:
        expected = json.loads(opts.reference.read_text())
        if expected != sample:
            diff = next((i for i, (a, b) in enumerate(zip(expected, sample, strict=False)) if a != b), None)
            at = min(len(expected), len(sample)) if diff is None else diff
            print(f"MISMATCH with {opts.reference} at row {at}", file=sys.stderr)
            print(f"  expected {expected[at] if at < len(expected) else None}", file=sys.stderr)
            print(f"  got      {sample[at] if at < len(sample) else None}", file=sys.stderr)
            sys.exit(1)
        print(f"sample check: {len(sample):,} rows equal to {opts.reference}")
    if opts.opportunities >= SAMPLE:
        if sample_digest != SAMPLE_DIGEST:
            print(f"MISMATCH: sample digest {sample_digest} != {SAMPLE_DIGEST}", file=sys.stderr)
            sys.exit(1)
        print(f"sample check: {len(sample):,} rows, digest {sample_digest[:16]}... as the original core")

    print("\n| model | CPU s | wall s | rows |\n| --- | ---: | ---: | ---: |")
    for model in models:
        c0, t0 = time.process_time(), time.perf_counter()
        rows = run(data, [model], effects)
        c1, t1 = time.process_time(), time.perf_counter()
        print(f"| {model.name} | {c1 - c0:.2f} | {t1 - t0:.2f} | {len(rows):,} |")
    c0, t0 = time.process_time(), time.perf_counter()
    if opts.profile:
        profiler = cProfile.Profile()
        rows = profiler.runcall(run, data, models, effects)
    else:
        rows = run(data, models, effects)
    c1, t1 = time.process_time(), time.perf_counter()
    print(f"| all six, one pass | {c1 - c0:.2f} | {t1 - t0:.2f} | {len(rows):,} |")
    # What a run uses: every model side by side per journey (the same figures, tested equal).
    c0, t0 = time.process_time(), time.perf_counter()
    steps = sum(
        len(c.steps)
        for c in journey_credits(
            ((o, t, o.amount) for o, t in data), models=models, scope=SCOPE, removal_effects=effects
        )
    )
    c1, t1 = time.process_time(), time.perf_counter()
    print(f"| all six side by side (`journey_credits`) | {c1 - c0:.2f} | {t1 - t0:.2f} | {steps:,} steps |")
    if opts.profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
