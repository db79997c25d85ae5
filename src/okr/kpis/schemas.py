"""What the KPI API answers.

Money is integer minor units of the organisation's currency (`currency` beside it); counts are integers;
rates, hours, days and per-day figures are decimal strings with 6 places (rounded half up); no floats.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal

from okr.kpis.core import FILTER_NAMES, KpiDefinition, KpiFilters, KpiValue, Unit, filters_applying
from okr.kpis.records import CampaignRow, LeadRow, OpportunityRow, RecordPage
from okr.lib.templating import url_with

API: Final = "/api/v1/kpis"
_PLACES: Final = Decimal("0.000001")


def api_value(value: KpiValue) -> int | Decimal | None:
    """A KPI value as the API gives it: int as is, a Decimal to 6 places (half up)."""
    if isinstance(value, Decimal):
        return value.quantize(_PLACES, rounding=ROUND_HALF_UP)
    return value


@dataclass(frozen=True, slots=True)
class FiltersRead:
    """The filters a figure was computed with (null: any)."""

    team: int | None
    person: int | None
    campaign: int | None
    channel: str | None
    segment: str | None

    @classmethod
    def of(cls, filters: KpiFilters) -> "FiltersRead":
        """From the service's filters."""
        return cls(filters.team_id, filters.person_id, filters.campaign_id, filters.channel, filters.segment)


@dataclass(frozen=True, slots=True)
class KpiRead:
    """One KPI of the library: what it is, its unit, which way is good, and what narrows it."""

    name: str
    label: str
    unit: str
    definition: str
    higher_is_better: bool
    records: Literal["leads", "opportunities", "campaigns"]
    filters: list[str]
    url: str

    @classmethod
    def of(cls, kpi: KpiDefinition) -> "KpiRead":
        """From the library's definition."""
        return cls(
            name=kpi.name,
            label=kpi.label,
            unit=kpi.unit.value,
            definition=kpi.definition,
            higher_is_better=kpi.higher_is_better,
            records=kpi.records.value,
            filters=[f for f in FILTER_NAMES if f in filters_applying(kpi.name)],
            url=f"{API}/{kpi.name}",
        )


@dataclass(frozen=True, slots=True)
class KpiValueRead:
    """One KPI for a period and filters.

    `value`: an integer for counts and money (minor units of `currency`), a decimal string for rates
    (0.25 is 25 %), hours, days and money per day; null when it cannot be computed (0 ÷ 0).
    """

    name: str
    label: str
    unit: str
    value: int | Decimal | None
    currency: str | None
    period: str
    start: dt.datetime
    end: dt.datetime
    filters: FiltersRead
    definition: str
    higher_is_better: bool
    model: str | None
    sla_hours: int | None
    records_url: str


def query_of(period: str, filters: KpiFilters, **more: object) -> dict[str, object]:
    """The query parameters that name a period and filters (for links)."""
    return {"period": period, **filters.params, **more}


def records_url(name: str, period: str, filters: KpiFilters, **more: object) -> str:
    """The API address of the records behind a figure."""
    return url_with(f"{API}/{name}/records", query_of(period, filters, **more))


def money_unit(unit: Unit) -> bool:
    """Whether a value of `unit` is money (minor units of the org currency)."""
    return unit in (Unit.CURRENCY, Unit.PER_DAY)


@dataclass(frozen=True, slots=True)
class LeadRecordRead:
    """A lead behind a figure; `date` is the instant the figure counts it by."""

    kind: Literal["lead"]
    id: int
    external_id: str
    email: str | None
    account: str
    owner: str | None
    created_at: dt.datetime
    mql_at: dt.datetime | None
    accepted_at: dt.datetime | None
    rejected_at: dt.datetime | None
    sql_at: dt.datetime | None
    date: dt.datetime | None
    response_hours: Decimal | None
    sla: Literal["met", "breached", "pending"] | None

    @classmethod
    def of(cls, r: LeadRow) -> "LeadRecordRead":
        """From the drill-down's row."""
        hours = api_value(r.response_hours)
        return cls(
            "lead", r.id, r.external_id, r.email, r.account, r.owner, r.created_at, r.mql_at, r.accepted_at,
            r.rejected_at, r.sql_at, r.date, hours if isinstance(hours, Decimal) else None, r.sla,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class OpportunityRecordRead:
    """An opportunity behind a figure: its amount in its own currency and in the org's (`converted`,
    null without an FX rate), and for pipeline figures the campaign of its first touch and who sourced it."""

    kind: Literal["opportunity"]
    id: int
    external_id: str
    name: str
    account: str
    owner: str | None
    status: str
    stage: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    amount: int
    currency: str
    converted: int | None
    first_campaign: str | None
    sourced_by: str | None

    @classmethod
    def of(cls, r: OpportunityRow) -> "OpportunityRecordRead":
        """From the drill-down's row."""
        return cls(
            "opportunity", r.id, r.external_id, r.name, r.account, r.owner, r.status, r.stage, r.created_at,
            r.closed_at, r.amount, r.currency, r.converted, r.first_campaign, r.source,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CampaignRecordRead:
    """A campaign behind a figure: its cost in the period (null: no FX rate or no dates), and for
    campaign ROI the revenue attributed to it and its ROI (decimal string)."""

    kind: Literal["campaign"]
    id: int
    external_id: str
    name: str
    channel: str
    owner: str | None
    team: str
    cost: int | None
    attributed: int | None
    roi: Decimal | None

    @classmethod
    def of(cls, r: CampaignRow) -> "CampaignRecordRead":
        """From the drill-down's row."""
        roi = api_value(r.roi)
        return cls(
            "campaign", r.id, r.external_id, r.name, r.channel, r.owner, r.team, r.cost, r.attributed,
            roi if isinstance(roi, Decimal) else None,
        )  # fmt: skip


RecordRead = LeadRecordRead | OpportunityRecordRead | CampaignRecordRead


@dataclass(frozen=True, slots=True)
class KpiRecordsRead:
    """One page (50 rows) of the records behind a figure, in the order asked for."""

    name: str
    label: str
    records: Literal["leads", "opportunities", "campaigns"]
    period: str
    filters: FiltersRead
    currency: str
    page: int
    pages: int
    per_page: int
    total: int
    sort: str
    order: Literal["asc", "desc"]
    rows: list[RecordRead]
    next_url: str | None
    value_url: str

    @classmethod
    def of(cls, p: RecordPage) -> "KpiRecordsRead":
        """From the drill-down's page."""
        rows: list[RecordRead] = []
        for r in p.rows:
            if isinstance(r, LeadRow):
                rows.append(LeadRecordRead.of(r))
            elif isinstance(r, OpportunityRow):
                rows.append(OpportunityRecordRead.of(r))
            else:
                rows.append(CampaignRecordRead.of(r))
        order: Literal["asc", "desc"] = "desc" if p.descending else "asc"
        extra = {"model": p.model} if p.model else {}
        next_url = None
        if p.page < p.pages:
            next_url = records_url(
                p.kpi.name, p.quarter.key, p.filters, sort=p.sort, order=order, page=p.page + 1, **extra
            )
        return cls(
            name=p.kpi.name,
            label=p.kpi.label,
            records=p.kpi.records.value,
            period=p.quarter.key,
            filters=FiltersRead.of(p.filters),
            currency=p.currency,
            page=p.page,
            pages=p.pages,
            per_page=p.per_page,
            total=p.total,
            sort=p.sort,
            order=order,
            rows=rows,
            next_url=next_url,
            value_url=url_with(f"{API}/{p.kpi.name}", query_of(p.quarter.key, p.filters, **extra)),
        )
