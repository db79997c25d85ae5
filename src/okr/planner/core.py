"""The funnel planner's reverse waterfall (DESIGN 5): from a revenue target back to the leads it needs.

Pure computation over plain data (no database, no web): Decimal rates, integer minor units, exact
fractions inside, never float. The services feed it the trailing rates; docs/planner.md has the whole
story and a worked example.

The stage chain follows the KPI library's own stages, so a plan compares with the actuals the same way:

    leads_created --lead_to_mql--> mqls --acceptance_rate--> accepted_leads --accepted_to_sql--> sqls
        --sql_to_opportunity--> opportunities_created --win_rate--> deals_won (x avg deal size = revenue)

Going backwards: deals = target / average deal size; each earlier stage = the later stage / the rate
between them. Every count is rounded UP to a whole record (you cannot close 12.3 deals), and each stage
is divided from the previous stage's rounded count, so the plan is always enough: leads x every rate x
the average deal size >= the target.

Worked example (tests/unit/planner): target 1,000,000.00, average deal 25,000.00, win rate 25 %,
SQL->opportunity 50 %, accepted->SQL 40 %, acceptance 80 %, lead->MQL 10 %:
deals 40, opportunities 160, SQLs 320, accepted 800, MQLs 1,000, leads 10,000; pipeline needed
160 x 25,000.00 = 4,000,000.00, a coverage of 4.0x the target.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Final

from okr.goals import core as goals_core

ONE: Final = Decimal(1)
MAX_TARGET: Final = 10**15
"""The largest revenue target in minor units (10 trillion in a two-decimal currency)."""
MIN_RATE: Final = Decimal("0.0001")
"""Rates below 0.01 % would ask for absurd funnels; the planner refuses them with a reason."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A conversion rate between two stages of the funnel."""

    name: str
    label: str
    definition: str
    library_kpi: str | None  # the KPI of the library this rate is, when it is one


@dataclass(frozen=True, slots=True)
class StageDef:
    """A stage of the funnel: the KPI of the library that counts it, and the rate that feeds the next."""

    key: str
    kpi: str
    label: str
    rate: str | None  # the rate from this stage to the next one; None for the last stage (deals)


# From the top of the funnel to the bottom.
RATES: Final = (
    Rate("lead_to_mql", "Lead → MQL", "MQLs ÷ leads created, over the same window.", None),
    Rate(
        "acceptance_rate",
        "MQL → accepted",
        "Accepted ÷ (accepted + rejected): the library's acceptance rate.",
        "acceptance_rate",
    ),
    Rate("accepted_to_sql", "Accepted → SQL", "SQLs ÷ accepted leads, over the same window.", None),
    Rate(
        "sql_to_opportunity",
        "SQL → opportunity",
        "Opportunities created ÷ SQLs, over the same window.",
        None,
    ),
    Rate(
        "win_rate",
        "Win rate",
        "Won ÷ (won + lost), among the deals closed: the library's win rate.",
        "win_rate",
    ),
)
RATE_NAMES: Final = tuple(r.name for r in RATES)
RATE_BY_NAME: Final = {r.name: r for r in RATES}

STAGES: Final = (
    StageDef("leads", "leads_created", "Leads", "lead_to_mql"),
    StageDef("mqls", "mqls", "MQLs", "acceptance_rate"),
    StageDef("accepted", "accepted_leads", "Accepted leads", "accepted_to_sql"),
    StageDef("sqls", "sqls", "SQLs", "sql_to_opportunity"),
    StageDef("opportunities", "opportunities_created", "Opportunities", "win_rate"),
    StageDef("deals", "deals_won", "Deals won", None),
)
STAGE_KEYS: Final = tuple(s.key for s in STAGES)

# Rates that are a ratio of two stage counts (the library has no KPI for them): rate -> (numerator KPI,
# denominator KPI), both counted over the same trailing window.
COUNT_RATES: Final = {
    "lead_to_mql": ("mqls", "leads_created"),
    "accepted_to_sql": ("sqls", "accepted_leads"),
    "sql_to_opportunity": ("opportunities_created", "sqls"),
}


class PlanError(ValueError):
    """The inputs cannot give a plan; `problems` maps each field to the reason."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = dict(problems)


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """What a plan is computed from: money in minor units of the org currency, rates as fractions."""

    revenue_target: int
    avg_deal_size: int
    rates: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a computed plan: how many records it needs, and the rate that feeds the next one."""

    key: str
    kpi: str
    label: str
    count: int
    rate: Decimal | None  # toward the next stage (None for deals)
    rate_name: str | None


@dataclass(frozen=True, slots=True)
class Waterfall:
    """A computed plan, top of the funnel first."""

    inputs: PlanInputs
    stages: tuple[Stage, ...]
    pipeline_needed: int  # minor units: opportunities x average deal size
    coverage: Decimal  # pipeline needed / revenue target

    def stage(self, key: str) -> Stage:
        """The stage named `key` (leads, mqls, accepted, sqls, opportunities, deals)."""
        return next(s for s in self.stages if s.key == key)

    @property
    def counts(self) -> dict[str, int]:
        """Each stage's count by key."""
        return {s.key: s.count for s in self.stages}


def stage_rate(numerator: int | Decimal | None, denominator: int | Decimal | None) -> Decimal | None:
    """A trailing rate from two counts, at most 1 (a later stage can outnumber an earlier one when
    records skip a step); None when either is missing or the rate would be 0."""
    if numerator is None or denominator is None or denominator <= 0 or numerator <= 0:
        return None
    return min(Decimal(numerator) / Decimal(denominator), ONE)


def suggested_rate(value: Decimal | None) -> Decimal | None:
    """A trailing rate as the planner offers it: six places, None when it cannot be used (0 or none)."""
    if value is None or value <= 0:
        return None
    return min(value, ONE).quantize(Decimal("0.000001")).normalize()


def _finite(value: object) -> bool:
    try:
        return isinstance(value, Decimal | int) and Decimal(value).is_finite()
    except (InvalidOperation, TypeError, ValueError):
        return False


def validate(*, revenue_target: object, avg_deal_size: object, rates: Mapping[str, object]) -> dict[str, str]:
    """What is wrong with the inputs, one reason per field; empty when they give a plan."""
    problems: dict[str, str] = {}
    if revenue_target is None:
        problems["revenue_target"] = "Enter the revenue target."
    elif not _finite(revenue_target) or Decimal(revenue_target) <= 0:  # type: ignore[arg-type]
        problems["revenue_target"] = "Enter a revenue target above 0."
    elif Decimal(revenue_target) >= MAX_TARGET:  # type: ignore[arg-type]
        problems["revenue_target"] = "Enter a smaller revenue target."
    if avg_deal_size is None:
        problems["avg_deal_size"] = "Enter the average deal size (there is no won deal to take it from)."
    elif not _finite(avg_deal_size) or Decimal(avg_deal_size) <= 0:  # type: ignore[arg-type]
        problems["avg_deal_size"] = "Enter an average deal size above 0."
    elif Decimal(avg_deal_size) >= MAX_TARGET:  # type: ignore[arg-type]
        problems["avg_deal_size"] = "Enter a smaller average deal size."
    for name in RATE_NAMES:
        value = rates.get(name)
        label = RATE_BY_NAME[name].label
        if value is None:
            problems[name] = f"{label}: enter a rate (there is no trailing data to take it from)."
        elif not _finite(value) or not MIN_RATE <= Decimal(value) <= ONE:  # type: ignore[arg-type]
            problems[name] = f"{label}: enter a rate above 0 % and at most 100 % (at least 0.01 %)."
    for name in sorted(set(rates) - set(RATE_NAMES)):
        problems[name] = "Not a rate of the planner."
    return problems


def _up(value: Fraction) -> int:
    """Rounded up to a whole record."""
    return math.ceil(value)


def _fraction(value: int | Decimal) -> Fraction:
    return Fraction(value)


def waterfall(inputs: PlanInputs) -> Waterfall:
    """The reverse waterfall: deals = target / deal size, then each earlier stage = the later one / the
    rate between them, every count rounded up; PlanError with a reason per field when the inputs are bad."""
    problems = validate(
        revenue_target=inputs.revenue_target, avg_deal_size=inputs.avg_deal_size, rates=inputs.rates
    )
    if problems:
        raise PlanError(problems)
    counts: dict[str, int] = {}
    later = _up(_fraction(inputs.revenue_target) / _fraction(inputs.avg_deal_size))
    counts["deals"] = later
    for stage in reversed(STAGES[:-1]):
        assert stage.rate is not None  # every stage but the last feeds the next one
        later = _up(Fraction(later) / _fraction(inputs.rates[stage.rate]))
        counts[stage.key] = later
    stages = tuple(
        Stage(
            key=s.key,
            kpi=s.kpi,
            label=s.label,
            count=counts[s.key],
            rate=None if s.rate is None else Decimal(inputs.rates[s.rate]),
            rate_name=s.rate,
        )
        for s in STAGES
    )
    pipeline = counts["opportunities"] * inputs.avg_deal_size
    coverage = Decimal(pipeline) / Decimal(inputs.revenue_target)
    return Waterfall(inputs=inputs, stages=stages, pipeline_needed=pipeline, coverage=coverage)


def open_coverage(open_pipeline: int, revenue_target: int) -> Decimal | None:
    """The open pipeline now as a multiple of the target; None for a target of 0."""
    return None if revenue_target <= 0 else Decimal(open_pipeline) / Decimal(revenue_target)


def below_trailing(target: int | Decimal, trailing_actual: Decimal | None) -> bool:
    """The sandbagging rule of the goals (DESIGN 4): a target at or below the trailing actual is flagged."""
    return goals_core.is_sandbagged(goals_core.Kind.INCREASE_TO, Decimal(target), trailing_actual)


# -- plan vs actual ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """One planned figure against its actual so far and where it should be today."""

    key: str
    kpi: str
    label: str
    target: int  # a count, or minor units for money
    actual: int | None
    expected: Decimal  # target x the share of the period gone by
    pace: Decimal | None
    status: str | None  # on_track, lagging, at_risk (goals' pace states)


def progress(
    *,
    key: str,
    kpi: str,
    label: str,
    target: int,
    actual: int | None,
    elapsed: goals_core.Duration,
    length: goals_core.Duration,
) -> Progress:
    """A planned figure against the actual to date, with the goals' pace (start 0, linear over the period)."""
    expected = goals_core.expected_value(Decimal(0), Decimal(target), elapsed, length)
    current = None if actual is None else Decimal(actual)
    found = goals_core.key_result_pace(
        goals_core.Kind.INCREASE_TO, Decimal(0), Decimal(target), current, elapsed, length
    )
    return Progress(
        key=key,
        kpi=kpi,
        label=label,
        target=target,
        actual=actual,
        expected=expected,
        pace=found.value,
        status=None if found.status is None else str(found.status),
    )
