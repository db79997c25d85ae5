"""Funnel planner request and response shapes (the JSON API under `/api/v1/planner`).

Money is in major units of the organisation's currency as decimal strings ("1000000.00"); rates are
fractions as decimal strings ("0.25" is 25 %); counts are integers.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from okr.lib.errors import ValidationFailed
from okr.lib.money import MoneyError, to_major, to_minor
from okr.planner import core
from okr.planner.services import Comparison, ObjectiveMade, PlanView, StageFlag, Trailing

# -- bodies ------------------------------------------------------------------------------------------------


class RatesBody(msgspec.Struct, forbid_unknown_fields=True):
    """Conversion rates as fractions in (0, 1]; a rate left out takes the trailing one."""

    lead_to_mql: Decimal | None = None
    acceptance_rate: Decimal | None = None
    accepted_to_sql: Decimal | None = None
    sql_to_opportunity: Decimal | None = None
    win_rate: Decimal | None = None

    def given(self) -> dict[str, Decimal | None]:
        """The rates by name (None: not given)."""
        return {name: getattr(self, name) for name in core.RATE_NAMES}


class ComputeBody(msgspec.Struct, forbid_unknown_fields=True):
    """A revenue target (major units) and optional inputs; what is left out comes from the two quarters
    before `period` (today's quarter when left out)."""

    revenue_target: Decimal
    period: str | None = None
    avg_deal_size: Decimal | None = None
    rates: RatesBody | None = None


class PlanCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A plan to save for a period: a name, the target and optional inputs (trailing ones otherwise)."""

    period: str
    name: str
    revenue_target: Decimal
    avg_deal_size: Decimal | None = None
    rates: RatesBody | None = None
    note: str | None = None


def minor(value: Decimal | None, currency: str, name: str) -> int | None:
    """Major units as minor units; ValidationFailed naming the field when it cannot be."""
    if value is None:
        return None
    try:
        return to_minor(value, currency)
    except (MoneyError, ArithmeticError, ValueError):
        raise ValidationFailed(
            f"{name} is not an amount of {currency}.",
            errors=[{"field": name, "message": f"enter an amount of {currency} with at most its decimals"}],
        ) from None


# -- answers -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PlannerProblem:
    """A refused request (RFC 9457 problem): `errors` names each bad field and why."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)


class StageRead(msgspec.Struct):
    """One stage: the records it needs and the rate toward the next stage."""

    key: str
    kpi: str
    label: str
    count: int
    rate_to_next: str | None
    rate_name: str | None
    trailing_per_quarter: str | None
    below_trailing: bool


class FlagRead(msgspec.Struct):
    """A planned figure at or below the trailing two-quarter actual per quarter (the sandbagging rule)."""

    key: str
    label: str
    target: str
    trailing_per_quarter: str


class TrailingRead(msgspec.Struct):
    """What the last two quarters give (null where there is no data)."""

    quarters: list[str]
    avg_deal_size: str | None
    rates: dict[str, str | None]


class WaterfallRead(msgspec.Struct):
    """A computed plan, top of the funnel first."""

    period: str
    currency: str
    revenue_target: str
    avg_deal_size: str
    rates: dict[str, str]
    stages: list[StageRead]
    pipeline_needed: str
    coverage: str
    open_pipeline: str | None
    open_coverage: str | None
    flags: list[FlagRead]
    trailing: TrailingRead

    @classmethod
    def of(
        cls,
        plan: core.Waterfall,
        *,
        period: str,
        currency: str,
        trail: Trailing,
        found: list[StageFlag],
        open_pipeline: int | None,
    ) -> "WaterfallRead":
        """From the core's waterfall and the trailing figures."""
        flagged = {f.key for f in found}

        def money(value: int | None) -> str | None:
            return None if value is None else str(to_major(value, currency))

        def per_quarter(key: str) -> str | None:
            value = trail.per_quarter.get(key)
            return None if value is None else str(value)

        open_cov = (
            None if open_pipeline is None else core.open_coverage(open_pipeline, plan.inputs.revenue_target)
        )
        return cls(
            period=period,
            currency=currency,
            revenue_target=str(to_major(plan.inputs.revenue_target, currency)),
            avg_deal_size=str(to_major(plan.inputs.avg_deal_size, currency)),
            rates={k: str(plan.inputs.rates[k]) for k in core.RATE_NAMES},
            stages=[
                StageRead(
                    key=s.key,
                    kpi=s.kpi,
                    label=s.label,
                    count=s.count,
                    rate_to_next=None if s.rate is None else str(s.rate),
                    rate_name=s.rate_name,
                    trailing_per_quarter=per_quarter(s.key),
                    below_trailing=s.key in flagged,
                )
                for s in plan.stages
            ],
            pipeline_needed=str(to_major(plan.pipeline_needed, currency)),
            coverage=str(plan.coverage.quantize(Decimal("0.01"))),
            open_pipeline=money(open_pipeline),
            open_coverage=None if open_cov is None else str(open_cov.quantize(Decimal("0.01"))),
            flags=[
                FlagRead(
                    key=f.key,
                    label=f.label,
                    target=money(f.target) if f.key in ("revenue", "pipeline") else str(f.target),  # type: ignore[arg-type]
                    trailing_per_quarter=str(
                        to_major(int(f.trailing), currency)
                        if f.key in ("revenue", "pipeline")
                        else f.trailing
                    ),
                )
                for f in found
            ],
            trailing=TrailingRead(
                quarters=[q.key for q in trail.quarters],
                avg_deal_size=money(trail.avg_deal_size),
                rates={k: None if v is None else str(v) for k, v in trail.rates.items()},
            ),
        )


class ProgressRead(msgspec.Struct):
    """A planned figure against the actual so far: counts as integers, money in major units."""

    key: str
    kpi: str
    label: str
    target: str
    actual: str | None
    expected_by_today: str
    pace: str | None
    status: str | None


class PlanRead(msgspec.Struct):
    """A saved plan; with `actuals` when read one at a time."""

    id: int
    period: str
    name: str
    note: str | None
    objective_id: int | None
    created_at: dt.datetime
    created_by: str | None
    revenue_target: str
    avg_deal_size: str
    rates: dict[str, str]
    results: dict[str, int]
    pipeline_needed: str
    coverage: str
    share_of_period: str | None = None
    actuals: list[ProgressRead] | None = None

    @classmethod
    def of(cls, view: PlanView, currency: str, comparison: Comparison | None = None) -> "PlanRead":
        """From a saved plan (and its comparison with the actuals)."""
        plan = view.waterfall
        actuals = None
        if comparison is not None:
            actuals = []
            for row in comparison.rows:
                is_money = row.key in ("revenue", "pipeline")

                def show(value: int | Decimal, *, is_money: bool = is_money) -> str:
                    if is_money:
                        return str(to_major(int(value), currency))
                    return str(value)

                actuals.append(
                    ProgressRead(
                        key=row.key,
                        kpi=row.kpi,
                        label=row.label,
                        target=show(row.target),
                        actual=None if row.actual is None else show(row.actual),
                        expected_by_today=str(
                            to_major(int(row.expected.to_integral_value()), currency)
                            if is_money
                            else row.expected.quantize(Decimal("0.01"))
                        ),
                        pace=None if row.pace is None else str(row.pace.quantize(Decimal("0.000001"))),
                        status=row.status,
                    )
                )
        return cls(
            id=view.id,
            period=view.period,
            name=view.name,
            note=view.note,
            objective_id=view.objective_id,
            created_at=view.created_at,
            created_by=view.created_by,
            revenue_target=str(to_major(plan.inputs.revenue_target, currency)),
            avg_deal_size=str(to_major(plan.inputs.avg_deal_size, currency)),
            rates={k: str(plan.inputs.rates[k]) for k in core.RATE_NAMES},
            results=plan.counts,
            pipeline_needed=str(to_major(plan.pipeline_needed, currency)),
            coverage=str(plan.coverage.quantize(Decimal("0.01"))),
            share_of_period=None
            if comparison is None
            else str(comparison.share.quantize(Decimal("0.000001"))),
            actuals=actuals,
        )


class PlanListRead(msgspec.Struct):
    """A period's saved plans, newest first."""

    period: str
    plans: list[PlanRead]


class KeyResultMadeRead(msgspec.Struct):
    """A KR made from the plan; `below_trailing` when its target asks no more than the trailing actual."""

    id: int
    title: str
    metric: str
    team: str
    target: str
    trailing: str | None
    below_trailing: bool


class ObjectiveMadeRead(msgspec.Struct):
    """The joint objective made from a plan, and where to see it."""

    objective_id: int
    period: str
    url: str
    key_results: list[KeyResultMadeRead]

    @classmethod
    def of(cls, made: ObjectiveMade) -> "ObjectiveMadeRead":
        """From the service's answer."""
        return cls(
            objective_id=made.objective_id,
            period=made.period,
            url=f"/goals?period={made.period}#objective-{made.objective_id}",
            key_results=[
                KeyResultMadeRead(
                    id=k.id,
                    title=k.title,
                    metric=k.metric,
                    team=k.team,
                    target=str(k.target),
                    trailing=None if k.trailing is None else str(k.trailing),
                    below_trailing=k.flagged,
                )
                for k in made.key_results
            ],
        )
