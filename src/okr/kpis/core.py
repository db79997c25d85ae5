"""The KPI library (DESIGN 4): what each KPI is, its unit and direction, the filters that narrow it,
and the pure helpers (comparison, median, judging MQLs against the lead SLA in business hours) the services
and pages share.

No database and no web here: the services compute the values, pages and goals read these definitions.
The filter semantics per KPI family are written down in docs/kpis.md.
"""

import datetime as dt
import enum
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Final, Literal

from okr.sla.core import BusinessCalendar

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
            "Share of the period's MQLs accepted or rejected within the period's SLA, in business hours; "
            "open overdue ones are breaches."
        ),
        higher_is_better=True,
        records=Records.LEADS,
    ),
    KpiDefinition(
        name="mql_commitment_attainment",
        label="MQL commitment attainment",
        unit=Unit.PERCENT,
        definition=(
            "MQLs delivered ÷ MQLs marketing committed to date (the SLA policy's MQLs per month, "
            "pro rata in the month under way)."
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
        definition="Cost of the campaigns in the period, each campaign's cost spread evenly over its days.",
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
        definition="(Revenue attributed to the campaigns − their cost) ÷ their cost, in the period.",
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


# -- Filters -----------------------------------------------------------------------------------------------

FILTER_NAMES: Final = ("team", "person", "campaign", "channel", "segment")
"""The filters a KPI can be narrowed by, as the pages and the API name them (DESIGN 4)."""


@dataclass(frozen=True, slots=True)
class KpiFilters:
    """What narrows a KPI: a team, a person, a campaign, a channel, an account segment (None: any).

    What each filter means differs per family of KPI (leads, opportunities, campaigns): see
    docs/kpis.md. Filters combine with AND.
    """

    team_id: int | None = None
    person_id: int | None = None
    campaign_id: int | None = None
    channel: str | None = None
    segment: str | None = None

    @property
    def params(self) -> dict[str, int | str | None]:
        """The filters under their URL names (team, person, campaign, channel, segment)."""
        return dict(zip(FILTER_NAMES, (getattr(self, f.name) for f in fields(self)), strict=True))

    @property
    def used(self) -> tuple[str, ...]:
        """The URL names of the filters that are set, in FILTER_NAMES order."""
        return tuple(name for name, value in self.params.items() if value is not None)

    def __bool__(self) -> bool:
        return bool(self.used)


_ALL_FILTERS: Final = frozenset(FILTER_NAMES)
# A campaign has no account, so no segment; CAC divides the campaigns' cost by the deals they reached,
# and only a campaign or a channel names both sides of that division (docs/kpis.md).
_APPLIES: Final[dict[str, frozenset[str]]] = {
    "campaign_cost": frozenset({"team", "person", "campaign", "channel"}),
    "campaign_roi": frozenset({"team", "person", "campaign", "channel"}),
    "cac": frozenset({"campaign", "channel"}),
    # Marketing commits to MQLs for the whole organisation: no filter splits the commitment.
    "mql_commitment_attainment": frozenset(),
}


def filters_applying(name: str) -> frozenset[str]:
    """The filters (URL names) that narrow KPI `name`."""
    get_kpi(name)
    return _APPLIES.get(name, _ALL_FILTERS)


def inapplicable(name: str, filters: KpiFilters) -> tuple[str, ...]:
    """The filters set in `filters` that have no meaning for KPI `name` (its value is then None)."""
    applying = filters_applying(name)
    return tuple(f for f in filters.used if f not in applying)


# -- Trailing quarters (the sandbagging flag) --------------------------------------------------------------

# KPIs whose value over two quarters is the sum of the two quarters' values: counts and amounts.
# Their trailing actual is the mean per quarter, so it compares with a quarter's target.
ADDITIVE: Final = frozenset(
    {
        "leads_created",
        "mqls",
        "accepted_leads",
        "rejected_leads",
        "sqls",
        "opportunities_created",
        "pipeline_created",
        "pipeline_sourced_marketing",
        "pipeline_influenced_marketing",
        "revenue_won",
        "deals_won",
        "campaign_cost",
    }
)


# -- The lead SLA (DESIGN 5) -------------------------------------------------------------------------------

SlaStatus = Literal["met", "breached", "pending"]


def first_disposition(
    mql_at: dt.datetime | None,
    accepted_at: dt.datetime | None,
    rejected_at: dt.datetime | None,
    *,
    as_of: dt.datetime | None = None,
) -> dt.datetime | None:
    """When a lead was first accepted or rejected at or after its MQL (before `as_of`); None when not."""
    if mql_at is None:
        return None
    found = [t for t in (accepted_at, rejected_at) if t is not None and t >= mql_at]
    if as_of is not None:
        found = [t for t in found if t < as_of]
    return min(found, default=None)


def micros(delta: dt.timedelta) -> int:
    """A timedelta in whole microseconds (exact)."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class BusinessClock:
    """Business time on one calendar, counted from `since`: the same instants as okr.sla.core's
    `deadline` and `business_time_between`, but each lookup is a bisection over the working windows
    read so far, so judging tens of thousands of MQLs stays fast. Instants must be at or after `since`."""

    def __init__(self, calendar: BusinessCalendar, since: dt.datetime) -> None:
        self._windows = calendar.windows(since.astimezone(dt.UTC))
        self._opens: list[dt.datetime] = []
        self._closes: list[dt.datetime] = []
        self._before: list[int] = []  # business microseconds from the clock's start to each opening
        self._after: list[int] = []  # ... to each closing

    def _grow(self) -> None:
        open_, close = next(self._windows)
        base = self._after[-1] if self._after else 0
        self._opens.append(open_)
        self._closes.append(close)
        self._before.append(base)
        self._after.append(base + micros(close - open_))

    def elapsed(self, moment: dt.datetime) -> int:
        """Business microseconds from the clock's start to `moment`."""
        while not self._closes or self._closes[-1] <= moment:
            self._grow()
        i = bisect_right(self._closes, moment)
        opened = self._opens[i]
        return self._before[i] if moment <= opened else self._before[i] + micros(moment - opened)

    def instant(self, total: int) -> dt.datetime:
        """The first instant at which `total` business microseconds (> 0) have elapsed."""
        while not self._after or self._after[-1] < total:
            self._grow()
        i = bisect_left(self._after, total)
        return self._opens[i] + dt.timedelta(microseconds=total - self._before[i])

    def due(self, mql_at: dt.datetime, hours: int) -> dt.datetime:
        """The deadline `hours` business hours after `mql_at` (okr.sla.core.deadline)."""
        if hours <= 0:
            raise ValueError("the follow-up time must be at least one hour")
        return self.instant(self.elapsed(mql_at) + hours * MICROS_PER_HOUR)

    def between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Business microseconds in [start, end) (start <= end)."""
        return self.elapsed(end) - self.elapsed(start)


def sla_status(
    mql_at: dt.datetime | None, disposed_at: dt.datetime | None, *, due: dt.datetime | None, now: dt.datetime
) -> SlaStatus | None:
    """met (dispositioned by the deadline `due`), breached (later, or still open past it at `now`),
    pending (open, not yet due); None for a lead that never became an MQL."""
    if mql_at is None or due is None:
        return None
    if disposed_at is not None:
        return "met" if disposed_at <= due else "breached"
    return "breached" if due < now else "pending"


def elapsed_share(start: dt.datetime, end: dt.datetime, cut: dt.datetime) -> Decimal:
    """The share of [start, end) that lies before `cut`, 0 to 1 (how much of a month's MQL commitment is
    due by `cut`)."""
    if end <= start:
        return Decimal(0)
    done = min(max(cut, start), end) - start
    return Decimal(micros(done)) / Decimal(micros(end - start))


# -- Small exact helpers -----------------------------------------------------------------------------------

MICROS_PER_HOUR: Final = 3_600_000_000
MICROS_PER_DAY: Final = 86_400_000_000


def median(values: Sequence[int | Decimal]) -> Decimal | None:
    """The median of `values` (mean of the middle two for an even count), exact; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(ordered[mid])
    return (Decimal(ordered[mid - 1]) + Decimal(ordered[mid])) / 2


def velocity(
    open_deals: int, win_rate: Decimal | None, revenue: int, priced_deals: int, cycle_days: Decimal | None
) -> Decimal | None:
    """Pipeline velocity (DESIGN 4): open deals x win rate x average deal / cycle days, money per day.

    The average deal is revenue / the won deals that have an amount in the org currency, unrounded;
    None when any part is missing or the cycle is 0 days.
    """
    if win_rate is None or cycle_days is None or cycle_days == 0 or priced_deals == 0:
        return None
    return Decimal(open_deals) * win_rate * (Decimal(revenue) / priced_deals) / cycle_days
