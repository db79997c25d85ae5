"""The KPI library (DESIGN 4): what each KPI is, its unit and direction, and the pure comparison helpers.

No database and no web here: the services compute the values, pages and goals read these definitions.
"""

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

# A KPI's value: int for counts and money (minor units of the org currency), Decimal for rates
# (0.256 is 25.6 %), days, hours and per-day figures; None when it cannot be computed (0 / 0).
KpiValue = int | Decimal | None


class Unit(enum.StrEnum):
    """How a KPI's value reads."""

    COUNT = "count"
    CURRENCY = "currency"
    PERCENT = "percent"
    DAYS = "days"
    HOURS = "hours"
    PER_DAY = "per_day"  # money (minor units of the org currency) per day


class Records(enum.StrEnum):
    """What the records behind a figure are."""

    LEADS = "leads"
    OPPORTUNITIES = "opportunities"
    CAMPAIGNS = "campaigns"


@dataclass(frozen=True, slots=True)
class KpiDefinition:
    """One KPI of the library."""

    name: str
    label: str
    unit: Unit
    definition: str
    higher_is_better: bool
    records: Records


# In DESIGN 4's order. Money is converted to the org currency at the FX rate in force on the
# opportunity's creation date (pipeline) or close date (revenue).
_LIBRARY = (
    KpiDefinition(
        name="leads_created",
        label="Leads created",
        unit=Unit.COUNT,
        definition="Leads created in the period.",
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="mqls",
        label="MQLs",
        unit=Unit.COUNT,
        definition="Leads that became marketing-qualified (MQL) in the period.",
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="accepted_leads",
        label="Accepted leads",
        unit=Unit.COUNT,
        definition="Leads sales accepted in the period.",
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="rejected_leads",
        label="Rejected leads",
        unit=Unit.COUNT,
        definition="Leads sales rejected in the period.",
        higher_is_better=False,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="sqls",
        label="SQLs",
        unit=Unit.COUNT,
        definition="Leads that became sales-qualified (SQL) in the period.",
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="acceptance_rate",
        label="Acceptance rate",
        unit=Unit.PERCENT,
        definition="Accepted ÷ (accepted + rejected), for leads dispositioned in the period.",
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="mql_to_sql_rate",
        label="MQL → SQL rate",
        unit=Unit.PERCENT,
        definition="Of the period's MQLs, the share that reached SQL.",
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="speed_to_lead_hours",
        label="Speed to lead",
        unit=Unit.HOURS,
        definition="Median hours from MQL to acceptance or rejection, for the period's MQLs.",
        higher_is_better=False,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="sla_compliance",
        label="SLA compliance",
        unit=Unit.PERCENT,
        definition=(
            "Share of the period's MQLs dispositioned within the SLA; open overdue ones count as breaches."
        ),
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="opportunities_created",
        label="Opportunities created",
        unit=Unit.COUNT,
        definition="Opportunities created in the period, any status.",
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="pipeline_created",
        label="Pipeline created",
        unit=Unit.CURRENCY,
        definition=(
            "Amount of the opportunities created in the period, any status, "
            "at the FX rate of their creation date."
        ),
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="pipeline_sourced_marketing",
        label="Marketing-sourced pipeline",
        unit=Unit.CURRENCY,
        definition=(
            "Pipeline created in the period whose first touch (up to 365 days before creation) "
            "was on a marketing campaign."
        ),
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="pipeline_influenced_marketing",
        label="Marketing-influenced pipeline",
        unit=Unit.CURRENCY,
        definition="Pipeline created in the period with any marketing touch up to 365 days before creation.",
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="revenue_won",
        label="Revenue won",
        unit=Unit.CURRENCY,
        definition="Amount of the opportunities won in the period, at the FX rate of their close date.",
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="deals_won",
        label="Deals won",
        unit=Unit.COUNT,
        definition="Opportunities won in the period.",
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="win_rate",
        label="Win rate",
        unit=Unit.PERCENT,
        definition="Won ÷ (won + lost), among the opportunities closed in the period.",
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="avg_deal_size",
        label="Average deal size",
        unit=Unit.CURRENCY,
        definition="Revenue won ÷ deals won in the period.",
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="sales_cycle_days",
        label="Sales cycle",
        unit=Unit.DAYS,
        definition="Mean days from creation to close, for the deals won in the period.",
        higher_is_better=False,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="pipeline_velocity",
        label="Pipeline velocity",
        unit=Unit.PER_DAY,
        definition="Open opportunities × win rate × average deal size ÷ sales cycle days: revenue per day.",
        higher_is_better=True,
        records=Records.OPPORTUNITIES,
    ),
    KpiDefinition(
        name="campaign_cost",
        label="Campaign cost",
        unit=Unit.CURRENCY,
        definition="Cost of the campaigns running in the period.",
        higher_is_better=False,
        records=Records.CAMPAIGNS,
    ),
    KpiDefinition(
        name="cac",
        label="Customer acquisition cost",
        unit=Unit.CURRENCY,
        definition="Campaign cost ÷ deals won in the period.",
        higher_is_better=False,
        records=Records.CAMPAIGNS,
    ),
    KpiDefinition(
        name="campaign_roi",
        label="Campaign ROI",
        unit=Unit.PERCENT,
        definition="(Attributed revenue − campaign cost) ÷ campaign cost.",
        higher_is_better=True,
        records=Records.CAMPAIGNS,
    ),
)
KPIS: dict[str, KpiDefinition] = {k.name: k for k in _LIBRARY}

# The six tiles of the dashboard, in reading order: money first, then conversion, then the funnel.
DASHBOARD_KPIS: tuple[str, ...] = (
    "revenue_won",
    "pipeline_created",
    "pipeline_sourced_marketing",
    "win_rate",
    "mqls",
    "sqls",
)


class UnknownKpiError(KeyError):
    """No KPI of the library has this name."""


def get_kpi(name: str) -> KpiDefinition:
    """The definition of KPI `name`; raises UnknownKpiError."""
    try:
        return KPIS[name]
    except KeyError:
        raise UnknownKpiError(name) from None


def ratio(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """numerator / denominator as an exact-enough Decimal; None when the denominator is 0."""
    if denominator == 0:
        return None
    return Decimal(numerator) / Decimal(denominator)


Direction = Literal["up", "down", "flat"]


@dataclass(frozen=True, slots=True)
class Change:
    """How a value moved against a previous one, and whether that is good news."""

    direction: Direction
    delta: int | Decimal  # same unit as the value (percentage points as a ratio for percents)
    relative: Decimal | None  # delta / |previous|; None when previous is 0
    good: bool | None  # None when flat


def compare(current: KpiValue, previous: KpiValue, *, higher_is_better: bool) -> Change | None:
    """The change from `previous` to `current`; None when either value is missing."""
    if current is None or previous is None:
        return None
    delta = current - previous
    direction: Direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    good = None if direction == "flat" else (direction == "up") == higher_is_better
    relative = None if previous == 0 else Decimal(delta) / abs(Decimal(previous))
    return Change(direction=direction, delta=delta, relative=relative, good=good)
