"""Benchmark: okr's attribution core against the open-source attribution packages, on the same journeys.

    python3 -m venv var/bench-venv
    var/bench-venv/bin/pip install -e . ChannelAttribution marketing-attribution-models matplotlib
    var/bench-venv/bin/python bench/attribution_packages.py
    var/bench-venv/bin/python bench/attribution_packages.py --opportunities 5000 --timeout 120

The packages live only in that venv (never in pyproject.toml). Journeys: the synthetic generator of
bench/attribution_core.py (N won opportunities, ~10 touches each, 8 channels) plus N/2 lost ones from
another seed, so the Markov chain has paths to (null). Every journey is okr's revenue-scope journey
(`journey`: lookback window, ties by external id); the packages get exactly those journeys as
'>'-joined channel paths: ChannelAttribution one row per distinct path with its conversions and nulls,
MAM (marketing-attribution-models) one row per journey with the hours from each touch to the close.

Like for like, every side starting from the same journeys built once: okr's run engine
(`okr.attribution.vector`, the numbers of the pure `core` bit for bit) with one model, on okr's journeys
(built once from the touches as a run reads them: lookback window, order with ties by external id,
milestone roles; timed in a row of its own, like MAM's input preprocessing), computing every touch's exact
integer weight and its share of the amount in integer minor units (more work than per-channel totals),
against each package's heuristic; okr's exact absorbing-chain solution (transition counts from the same
touches, then `solve_transitions`; plus, for data-driven, the credit per touch) against
ChannelAttribution's simulated `markov_model` (twice: max_step=1000, and its default, the longest
observed path, which cuts simulated journeys short) and MAM's `run_markov`. okr runs in this process; each
package call runs in a forked child that is killed after --timeout seconds. Every figure is the best of
--repeats runs, CPU time (process_time, all threads) and wall time. Agreement: the largest difference
over the channels of the credited conversions (okr: its weights summed per channel, as Fractions).
"""

import argparse
import contextlib
import io
import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import numpy as np
from attribution_core import Data, synthetic
from numpy.typing import NDArray

from okr.attribution import vector
from okr.attribution.core import (
    CONVERSION,
    LOST,
    NULL,
    PRESETS,
    START,
    WEIGHT_UNITS,
    WON,
    ZERO,
    MilestoneWeights,
    ModelSpec,
    RemovalEffects,
    Scope,
    journey,
    solve_transitions,
)

LOST_SEED = 20_261_123
HOUR = timedelta(hours=1)
POSITION_BASED = ModelSpec.custom_milestone(
    MilestoneWeights(Decimal("0.4"), ZERO, ZERO, Decimal("0.4"), Decimal("0.2")), name="position_based"
)
"""40 % first touch, 40 % closed-won touch (the last of a revenue journey), 20 % over the middle."""


class Timing(NamedTuple):
    cpu: float
    wall: float
    result: Any


Outcome = Timing | str  # a string: why the package could not give the figure


def opportunities(n: int) -> Data:
    """n won opportunities (the generator of attribution_core) and n // 2 lost ones (another seed)."""
    lost = [
        (replace(o, id=n + o.id, external_id=f"L{o.id:07d}", status=LOST), t)
        for o, t in synthetic(n // 2, seed=LOST_SEED)
    ]
    return synthetic(n) + lost


def package_inputs(data: Data) -> tuple[Any, dict[str, list[Any]], int]:
    """ChannelAttribution's grouped paths, MAM's journey columns, and the journeys with no touch."""
    import pandas as pd

    grouped: Counter[tuple[str, bool]] = Counter()
    columns: dict[str, list[Any]] = {"journey_id": [], "path": [], "hours": [], "converted": []}
    empty = 0
    for opportunity, touches in data:
        steps = journey(opportunity, touches, scope=Scope.REVENUE)
        if not steps:
            empty += 1
            continue
        path, won = ">".join(t.channel for t in steps), opportunity.status != LOST
        grouped[path, won] += 1
        end = opportunity.closed_at
        assert end is not None
        columns["journey_id"].append(opportunity.external_id)
        columns["path"].append(path)
        columns["hours"].append(">".join(repr((end - t.occurred_at) / HOUR) for t in steps))
        columns["converted"].append(won)
    paths = sorted({p for p, _ in grouped})
    frame = pd.DataFrame(
        {"path": paths, "conv": [grouped[p, True] for p in paths], "null": [grouped[p, False] for p in paths]}
    )
    return frame, columns, empty


# -- okr --------------------------------------------------------------------------------------------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Arrays(NamedTuple):
    """The opportunities and touches as a run reads them from the database: arrays, one account per
    opportunity (built before timing, as the packages' inputs are)."""

    touches: vector.Touches
    channels: list[str]
    created: NDArray[np.int64]
    closed: NDArray[np.int64]
    won: NDArray[np.bool_]
    amount: NDArray[np.int64]


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def arrays(data: Data) -> Arrays:
    flat = [(k, t) for k, (_, touches) in enumerate(data) for t in touches]
    channels = sorted({t.channel for _, t in flat})
    code = {c: i for i, c in enumerate(channels)}
    external = np.array([t.external_id for _, t in flat], dtype=str)
    rank = np.empty(len(flat), dtype=np.int64)
    rank[np.argsort(external, kind="stable")] = np.arange(len(flat))
    account = np.array([k for k, _ in flat], dtype=np.int64)
    at = np.array([_us(t.occurred_at) for _, t in flat], dtype=np.int64)
    lead = [vector.NO_TIME if t.lead_created_at is None else _us(t.lead_created_at) for _, t in flat]
    order = vector.sort_order(account, at, rank)
    touches = vector.Touches(
        account=account[order],
        at=at[order],
        rank=rank[order],
        channel=np.array([code[t.channel] for _, t in flat], dtype=np.int64)[order],
        lead_at=np.array(lead, dtype=np.int64)[order],
    )
    closed = [vector.NO_TIME if o.closed_at is None else _us(o.closed_at) for o, _ in data]
    return Arrays(
        touches,
        channels,
        np.array([_us(o.created_at) for o, _ in data], dtype=np.int64),
        np.array(closed, dtype=np.int64),
        np.array([o.status == WON for o, _ in data], dtype=bool),
        np.array([o.amount for o, _ in data], dtype=np.int64),
    )


def okr_journeys(data: Arrays) -> vector.Journeys:
    """The revenue-scope journeys of the won deals from the raw touches: lookback window, order (ties by
    external id), milestone roles."""
    won = np.flatnonzero(data.won & (data.closed != vector.NO_TIME))
    end = data.closed[won]
    journeys, _ = vector.journeys(
        data.touches,
        account=won,
        end=end,
        created=data.created[won],
        closed_won=end,
        amount=data.amount[won],
        base=np.zeros(len(won), dtype=np.int64),
        priced=np.zeros(len(won), dtype=bool),
        lookback_days=365,
    )
    return journeys


def okr_credit(
    journeys: vector.Journeys,
    channels: Sequence[str],
    models: Sequence[ModelSpec],
    effects: Sequence[int] | None = None,
) -> list[dict[str, int]]:
    """Per model, every touch's exact weight and amount; returned summed per channel (weight units)."""
    totals = []
    for result in vector.credit(journeys, models, effects):
        per_channel = np.bincount(journeys.channel, weights=result.units, minlength=len(channels))
        # Each sum is below 2^53 (75,000 journeys x 10^10 units): the float64 sums are exact.
        totals.append(dict(zip(channels, map(int, per_channel.tolist()), strict=True)))
    return totals


def okr_removal_effects(data: Arrays) -> RemovalEffects:
    """The exact removal effects of the won and lost journeys' chain (DESIGN 3.1), from the raw touches."""
    closed = np.flatnonzero(data.closed != vector.NO_TIME)
    end = data.closed[closed]
    lo, hi = vector.windows(data.touches, closed, end - 365 * vector.US_PER_DAY, end)
    counts, paths, conversions = vector.window_transitions(data.touches, lo, hi, data.won[closed])
    names = {vector.START_CODE: START, vector.CONVERSION_CODE: CONVERSION, vector.NULL_CODE: NULL}
    names.update(enumerate(data.channels))
    return solve_transitions({(names[a], names[b]): n for (a, b), n in counts.items()}, paths, conversions)


def okr_data_driven(data: Arrays, journeys: vector.Journeys) -> tuple[RemovalEffects, dict[str, int]]:
    """The exact removal effects, then the data-driven credit per touch."""
    solved = okr_removal_effects(data)
    effects = vector.scaled_effects(solved.as_decimals(), data.channels)
    return solved, okr_credit(journeys, data.channels, [PRESETS["data_driven"]], effects)[0]


# -- Packages (each call in a forked child) ---------------------------------------------------------


def channel_attribution() -> Any:
    """The ChannelAttribution module, its import banner swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        import ChannelAttribution

    return ChannelAttribution


def ca_call(frame: Any, what: str, **max_step: Any) -> Callable[[], Callable[[], dict[str, dict[str, Any]]]]:
    """ChannelAttribution's heuristic_models or markov_model on the grouped paths, as channel dicts."""

    options = {"sep": ">", "verbose": False, "flg_pro": False, **max_step}

    def setup() -> Callable[[], dict[str, dict[str, Any]]]:
        ca = channel_attribution()

        def run() -> dict[str, dict[str, Any]]:
            if what == "heuristics":
                out = ca.heuristic_models(frame, "path", "conv", sep=">", flg_pro=False)
                return {n: dict(zip(out.channel_name, out[n], strict=True)) for n in out.columns[1:]}
            out = ca.markov_model(frame, "path", "conv", var_null="null", out_more=True, **options)
            effects, result = out["removal_effects"], out["result"]
            return {
                "effects": dict(zip(effects.channel_name, effects.iloc[:, 1], strict=True)),
                "conversions": dict(zip(result.channel_name, result.total_conversions, strict=True)),
            }

        return run

    return setup


MAM_FORMAT: dict[str, Any] = {
    "format_type": "journey",
    "channels_colname": "path",
    "journey_with_conv_colname": "converted",
    "user_id_colname": "journey_id",
    "time_till_conv_colname": "hours",
    "path_separator": ">",
}


def mam_run(columns: dict[str, list[Any]], what: str) -> Callable[[], Callable[[], Any]]:
    """MAM built from the journey columns (untimed unless `what` is "build"), then `what` timed."""

    def setup() -> Callable[[], Any]:
        import mam
        import polars as pl
        from mam.models.markov import MarkovModel

        frame = pl.DataFrame(columns)
        if what == "build":
            return lambda: mam.MAM(frame, **MAM_FORMAT).unified_df.height
        model = mam.MAM(frame, **MAM_FORMAT)

        def totals(result: Any) -> dict[str, float]:
            out = result.to_dict()
            return dict(zip(map(str, out["channels"]), out["attribution"], strict=True))

        def run() -> Any:
            if what == "removal_effects":  # the chain alone, as run_markov computes it first
                markov = MarkovModel(transition_to_same_state=False)
                markov._compute_markov(model.unified_df)
                return markov.removal_effect_df["removal_effect"].to_dict()
            if what == "run_markov":
                result = model.run_markov()
                return totals(result), result.metadata["removal_effect"]["removal_effect"].to_dict()
            return totals(model.run_time_decay(168.0) if what == "run_time_decay" else getattr(model, what)())

        return run

    return setup


def _child(setup: Callable[[], Callable[[], Any]], conn: Connection) -> None:
    try:
        run = setup()
        c0, t0 = time.process_time(), time.perf_counter()
        result = run()
        conn.send(("ok", Timing(time.process_time() - c0, time.perf_counter() - t0, result)))
    except Exception as exc:
        conn.send(("error", f"failed: {type(exc).__name__}: {exc}"[:160]))


def isolated(setup: Callable[[], Callable[[], Any]], repeats: int, timeout: float) -> Outcome:
    """The best of `repeats` runs, each in a forked child; a string when it fails or runs too long."""
    runs: list[Timing] = []
    context = multiprocessing.get_context("fork")
    for _ in range(repeats):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(setup, sender), daemon=True)
        process.start()
        sender.close()
        try:
            kind, payload = (
                receiver.recv() if receiver.poll(timeout) else ("error", f"over {timeout:g} s, stopped")
            )
        except EOFError:
            kind, payload = "error", "crashed"
        process.kill()  # this child only, finished or not
        process.join()
        if kind == "error":
            return payload
        runs.append(payload)
    return Timing(min(r.cpu for r in runs), min(r.wall for r in runs), runs[-1].result)


def in_process(run: Callable[[], Any], repeats: int) -> Timing:
    """The best CPU and wall time of `repeats` runs here, and the last result."""
    cpu = wall = math.inf
    result = None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        result = run()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - t0)
    return Timing(cpu, wall, result)


# -- Report -----------------------------------------------------------------------------------------


def gap(okr: Mapping[str, Fraction | int], package: Mapping[str, float], scale: int = WEIGHT_UNITS) -> str:
    """The largest difference over the channels, okr's value divided by `scale`, exactly."""
    channels = set(okr) | set(package)
    worst = max(abs(Fraction(okr.get(c, 0)) / scale - Fraction(package.get(c, 0.0))) for c in channels)
    return "0" if worst == 0 else f"{float(worst):.1e}"


def shares(values: Mapping[str, Fraction | float]) -> dict[str, Fraction]:
    total = sum(Fraction(v) for v in values.values())
    return {c: Fraction(v) / total for c, v in values.items()}


def cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return "not offered"
    return outcome if isinstance(outcome, str) else f"{outcome.cpu:.3f} / {outcome.wall:.3f}"


def ratio(okr: Outcome, ca: Outcome | None, mam: Outcome | None) -> str:
    if not isinstance(okr, Timing):
        return "-"
    parts = [
        f"{p} {okr.cpu / o.cpu:.1f}" for p, o in (("CA", ca), ("MAM", mam)) if isinstance(o, Timing) and o.cpu
    ]
    return ", ".join(parts) or "-"


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--opportunities", type=int, default=50_000, help="won opportunities (lost: half)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per package call")
    opts = parser.parse_args()
    n, reps, timeout = opts.opportunities, opts.repeats, opts.timeout

    data = opportunities(n)
    prepared = arrays(data)
    building = in_process(lambda: okr_journeys(prepared), reps)
    journeys = building.result
    c0 = time.process_time()
    frame, columns, empty = package_inputs(data)
    prep = time.process_time() - c0
    touches = sum(len(t) for _, t in data)
    print(f"data: {n:,} won + {n // 2:,} lost opportunities, {touches:,} account touches;")
    print(
        f"  {len(columns['path']):,} journeys with a touch ({empty} without), {len(frame):,} distinct paths;"
    )
    print(f"  package inputs built from okr's journeys in {prep:.2f} s CPU (not counted below)")

    def okr_run(*models: ModelSpec) -> Timing:
        return in_process(lambda: okr_credit(journeys, prepared.channels, models), reps)

    def mam(what: str) -> Outcome:
        return isolated(mam_run(columns, what), reps, timeout)

    def ca(what: str, **options: Any) -> Outcome:
        return isolated(ca_call(frame, what, **options), reps, timeout)

    rows: list[tuple[str, Outcome, Outcome | None, Outcome | None, str]] = []
    heuristics, mam_three = ca("heuristics"), []
    for name, ca_name, method in (
        ("first_touch", "first_touch", "run_first_click"),
        ("last_touch", "last_touch", "run_last_click"),
        ("linear", "linear_touch", "run_linear"),
    ):
        okr, m = okr_run(PRESETS[name]), mam(method)
        mam_three.append(m)
        agree = [f"MAM {gap(okr.result[0], m.result)}"] if isinstance(m, Timing) else []
        if isinstance(heuristics, Timing):
            agree.insert(0, f"CA {gap(okr.result[0], heuristics.result[ca_name])}")
        rows.append((name, okr, "in the next row", m, ", ".join(agree)))
    okr = okr_run(PRESETS["first_touch"], PRESETS["last_touch"], PRESETS["linear"])
    done = [m for m in mam_three if isinstance(m, Timing)]
    m3 = Timing(sum(m.cpu for m in done), sum(m.wall for m in done), None) if len(done) == 3 else "-"
    rows.append(("first + last + linear in one call (MAM: the 3 above)", okr, heuristics, m3, "as above"))
    for label, spec, method in (
        ("time_decay, 7-day half life", PRESETS["time_decay"], "run_time_decay"),
        ("position-based 40/20/40 (okr: milestone first + closed-won)", POSITION_BASED, "run_position_based"),
        ("u_shaped preset (first + lead creation 40/40, 20 middle)", PRESETS["u_shaped"], ""),
    ):
        okr, m = okr_run(spec), mam(method) if method else "other model"
        agree = f"MAM {gap(okr.result[0], m.result)}" if isinstance(m, Timing) else "-"
        rows.append((label, okr, None, m, agree))

    okr = in_process(lambda: okr_removal_effects(prepared), reps)
    exact: RemovalEffects = okr.result
    exact_shares = shares(exact.effects)
    m = mam("removal_effects")
    for label, options in (("max_step=1000", {"max_step": 1000}), ("its default max_step", {})):
        c = ca("markov", **options)
        agree = [f"MAM {gap(exact.effects, m.result, 1)}"] if isinstance(m, Timing) else []
        if isinstance(c, Timing):
            agree.insert(0, f"CA {gap(exact.effects, c.result['effects'], 1)}")
            agree.append(f"shares: CA {gap(exact_shares, shares(c.result['conversions']), 1)}")
        rows.append((f"Markov removal effects (CA: {label})", okr, c, m, ", ".join(agree) or "-"))
    okr, m = in_process(lambda: okr_data_driven(prepared, journeys), reps), mam("run_markov")
    agree = f"MAM {gap(okr.result[1], m.result[0])}" if isinstance(m, Timing) else "-"
    rows.append(("data-driven: removal effects + credit per touch", okr, "channel totals only", m, agree))
    rows.append(("okr: journeys from the touches (window, order, roles), once", building, "-", "-", "-"))
    rows.append(("MAM(...) input preprocessing, once", "-", "-", mam("build"), "-"))

    print(f"\nCPU / wall seconds, best of {reps}; ratio: okr CPU / package CPU (above 1: okr slower)\n")
    print("| model | okr | ChannelAttribution | MAM | ratio | agreement (largest gap) |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for label, okr, c, m, agreement in rows:
        print(f"| {label} | {cell(okr)} | {cell(c)} | {cell(m)} | {ratio(okr, c, m)} | {agreement} |")


if __name__ == "__main__":
    main()
