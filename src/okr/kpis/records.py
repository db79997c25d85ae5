"""The records behind a KPI figure, 50 a page, sortable by an allow-list: the leads, opportunities or
campaigns that the figure counts, narrowed by the same filters, so the rows add up to the figure.

Marketing-sourced and -influenced deals are read from the current pipeline-scope attribution run (its
sourcing rows and each deal's first credit row), else from the touches at request time.
"""

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from okr.db.attribution import OpportunitySourcing
from okr.db.models import Account, Campaign, Lead, Opportunity, Person, Team
from okr.db.pipeline import OpportunityStatus
from okr.kpis.core import (
    DASHBOARD_KPIS,
    MICROS_PER_HOUR,
    KpiDefinition,
    KpiFilters,
    Records,
    SlaStatus,
    Unit,
    first_disposition,
    get_kpi,
    inapplicable,
    ratio,
)
from okr.kpis.queries import (
    KpiSql,
    Window,
    attributed_revenue,
    campaign_costs,
    current_runs,
    dialect_sql,
    disposition,
    first_touch_campaign,
    lead_conditions,
    library_kpi,
    marketing_read,
    marketing_stored,
    opportunity_conditions,
    resolve_model,
    source_team,
    window,
)
from okr.lib.errors import NotFound, ValidationFailed
from okr.lib.money import CURRENCY_DECIMALS
from okr.lib.paging import PageWindow
from okr.lib.periods import Quarter
from okr.settings import Settings

PAGE_SIZE: Final = 50
_WON, _LOST = OpportunityStatus.WON.value, OpportunityStatus.LOST.value


@dataclass(frozen=True, slots=True)
class OpportunityRow:
    """An opportunity behind a figure, with its amount in the org currency."""

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
    first_campaign: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class LeadRow:
    """A lead behind a figure; `date` is the instant the figure counts it by (MQL, SQL, accepted...)."""

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
    date: dt.datetime | None = None
    response_hours: Decimal | None = None  # MQL to first acceptance or rejection
    sla: SlaStatus | None = None


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """A campaign behind a figure: its cost in the period (None: no FX rate or no dates) and, for ROI,
    the revenue attributed to it and its ROI."""

    id: int
    external_id: str
    name: str
    channel: str
    owner: str | None
    team: str
    cost: int | None
    attributed: int | None = None

    @property
    def roi(self) -> Decimal | None:
        """(attributed − cost) / cost; None without a cost or attributed revenue."""
        if self.attributed is None or not self.cost:
            return None
        return ratio(self.attributed - self.cost, self.cost)


# The sort fields a drill-down accepts, per kind of record (never an arbitrary attribute).
SORTS: dict[Records, tuple[str, ...]] = {
    Records.OPPORTUNITIES: ("amount", "date", "name", "account", "owner", "status"),
    Records.LEADS: ("date", "email", "account", "owner"),
    Records.CAMPAIGNS: ("cost", "attributed", "roi", "name", "channel", "owner"),
}


@dataclass(frozen=True, slots=True)
class RecordPage(PageWindow):
    """One page of the records behind a KPI figure."""

    kpi: KpiDefinition
    quarter: Quarter
    rows: Sequence[OpportunityRow | LeadRow | CampaignRow]
    total: int
    page: int
    sort: str
    descending: bool
    currency: str
    date_label: str
    per_page: int = PAGE_SIZE
    filters: KpiFilters = field(default_factory=KpiFilters)
    model: str | None = None  # the attribution model of campaign ROI
    sla_hours: int | None = None  # sla_compliance: the follow-up hours of the period's SLA rule
    sla_rule: str | None = None  # sla_compliance: the period's rule in words
    from_run: bool | None = None  # sourced/influenced/ROI: read from a stored run (False: from the touches)


def default_sort(kpi: KpiDefinition) -> tuple[str, bool]:
    """The order a drill-down opens in: biggest amounts first for money, newest first otherwise."""
    if kpi.records == Records.CAMPAIGNS:
        return ("roi", True) if kpi.name == "campaign_roi" else ("cost", True)
    return ("amount", True) if kpi.unit == Unit.CURRENCY else ("date", True)


def _order(column: Any, descending: bool, *, nullable: bool) -> list[Any]:
    # NULLs last in both directions, on both databases; a column without NULLs keeps its index usable.
    direction = column.desc() if descending else column.asc()
    return [column.is_(None), direction] if nullable else [direction]


_NULLABLE_SORTS = frozenset({"amount", "owner", "email"})


def drill_down_kpi(name: str) -> KpiDefinition:
    """The KPI whose records a dashboard drill-down lists; NotFound unless it is on the dashboard."""
    if name not in DASHBOARD_KPIS:
        raise NotFound(f"There is no list of records behind {name!r}. Pick a figure on the dashboard.")
    return get_kpi(name)


async def kpi_records(
    session: AsyncSession,
    *,
    settings: Settings,
    kpi: str,
    quarter: Quarter,
    page: int = 1,
    sort: str | None = None,
    descending: bool | None = None,
    filters: KpiFilters = KpiFilters(),
    as_of: dt.datetime | None = None,
    model: str | None = None,
) -> RecordPage:
    """A page of the records behind KPI `kpi` for `quarter` and `filters` (the same ones its value
    counts); NotFound for an unknown KPI, ValidationFailed for a filter that does not apply to it."""
    definition = library_kpi(kpi)
    refused = inapplicable(kpi, filters)
    if refused:
        raise ValidationFailed(
            f"{definition.label} cannot be narrowed by {', '.join(refused)}.",
            errors=[{"field": f, "message": f"the {f} filter does not apply to {kpi}"} for f in refused],
        )
    default_key, default_desc = default_sort(definition)
    key = sort if sort in SORTS[definition.records] else default_key
    desc = default_desc if descending is None else descending
    win = window(settings, [quarter], as_of=as_of)
    args: dict[str, Any] = {
        "settings": settings,
        "kpi": definition,
        "quarter": quarter,
        "win": win,
        "filters": filters,
        "page": max(1, page),
        "sort": key,
        "descending": desc,
    }
    if definition.records == Records.LEADS:
        return await _lead_records(session, **args)
    if definition.records == Records.CAMPAIGNS:
        return await _campaign_records(session, model=resolve_model(model), **args)
    return await _opportunity_records(session, **args)


def _clamp(page: int, total: int) -> int:
    return min(page, max(1, math.ceil(total / PAGE_SIZE)))


# -- Opportunities ---------------------------------------------------------------------------------------

_BY_CLOSE: Final = frozenset({"revenue_won", "deals_won", "win_rate", "avg_deal_size", "sales_cycle_days"})


async def _opportunity_records(
    session: AsyncSession,
    *,
    settings: Settings,
    kpi: KpiDefinition,
    quarter: Quarter,
    win: Window,
    filters: KpiFilters,
    page: int,
    sort: str,
    descending: bool,
) -> RecordPage:
    sql = await dialect_sql(session, settings)
    runs = await current_runs(session)
    by_close = kpi.name in _BY_CLOSE
    from_run: bool | None = None
    o = aliased(Opportunity)
    if kpi.name in ("pipeline_sourced_marketing", "pipeline_influenced_marketing"):
        sourced = kpi.name == "pipeline_sourced_marketing"
        from_run = runs.pipeline is not None
        if runs.pipeline is not None:
            found = marketing_stored(win, filters, runs.pipeline, sourced=sourced)
        else:
            found = marketing_read(sql, win, filters, sourced=sourced)
    else:
        conditions = opportunity_conditions(sql, o, filters, runs.pipeline)
        stamp = o.closed_at if by_close else o.created_at
        if by_close:
            statuses = [_WON, _LOST] if kpi.name == "win_rate" else [_WON]
            conditions += [o.status.in_(statuses), o.closed_at >= win.start, o.closed_at < win.cut]
        elif kpi.name == "pipeline_velocity":
            at = win.snapshot
            conditions += [o.created_at < at, or_(o.closed_at.is_(None), o.closed_at >= at)]
        else:
            conditions += [o.created_at >= win.start, o.created_at < win.cut]
        found = select(o.id.label("id"), sql.converted(o.amount, o.currency, stamp).label("converted")).where(
            *conditions
        )
    behind = found.cte("behind").prefix_with("MATERIALIZED")
    total = int((await session.execute(select(func.count()).select_from(behind))).scalar_one())
    page = _clamp(page, total)

    owner = aliased(Person)
    opp = aliased(Opportunity)
    sort_columns: dict[str, Any] = {
        "amount": behind.c.converted,
        "date": opp.closed_at if by_close else opp.created_at,
        "name": opp.name,
        "account": Account.name,
        "owner": owner.name,
        "status": opp.status,
    }
    stmt = (
        select(
            opp.id,
            opp.external_id,
            opp.name,
            Account.name,
            owner.name,
            opp.status,
            opp.stage,
            opp.created_at,
            opp.closed_at,
            opp.amount,
            opp.currency,
            behind.c.converted,
        )
        .select_from(behind)
        .join(opp, opp.id == behind.c.id)
        .join(Account, Account.id == opp.account_id)
        .outerjoin(owner, owner.id == opp.owner_id)
    )
    nullable = sort in _NULLABLE_SORTS
    stmt = stmt.order_by(*_order(sort_columns[sort], descending, nullable=nullable), opp.id)
    rows_found = (await session.execute(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))).all()
    ids = [r[0] for r in rows_found]
    sources: dict[int, tuple[str | None, str]] = {}
    if not by_close:
        if runs.pipeline is not None:
            sources = await _stored_sources(session, runs.pipeline, ids)
        else:
            sources = await _first_touches(session, sql, ids)
    rows = [
        OpportunityRow(
            id=r[0], external_id=r[1], name=r[2], account=r[3], owner=r[4], status=r[5], stage=r[6],
            created_at=r[7], closed_at=r[8], amount=r[9], currency=r[10],
            converted=None if r[11] is None or r[10] not in CURRENCY_DECIMALS else int(r[11]),
            first_campaign=sources.get(r[0], (None, None))[0], source=sources.get(r[0], (None, None))[1],
        )
        for r in rows_found
    ]  # fmt: skip
    return RecordPage(
        kpi=kpi,
        quarter=quarter,
        rows=rows,
        total=total,
        page=page,
        sort=sort,
        descending=descending,
        currency=settings.org_currency,
        date_label="Closed" if by_close else "Created",
        filters=filters,
        from_run=from_run,
    )


async def _stored_sources(
    session: AsyncSession, run: int, ids: list[int]
) -> dict[int, tuple[str | None, str]]:
    """Per opportunity id: its first-touch campaign's name and who sourced it, from the pipeline run."""
    if not ids:
        return {}
    s = OpportunitySourcing
    stmt = (
        select(s.opportunity_id, Campaign.name, s.sourced_by)
        .outerjoin(Campaign, Campaign.id == s.first_campaign_id)
        .where(s.run_id == run, s.opportunity_id.in_(ids))
    )
    return {r[0]: (r[1], str(r[2])) for r in (await session.execute(stmt)).all()}


async def _first_touches(
    session: AsyncSession, sql: KpiSql, ids: list[int]
) -> dict[int, tuple[str | None, str]]:
    """Per opportunity id: its first-touch campaign's name and the team that sourced it, read now."""
    if not ids:
        return {}
    o = aliased(Opportunity)
    first = (
        select(o.id.label("id"), first_touch_campaign(sql, o.account_id, o.created_at).label("campaign_id"))
        .where(o.id.in_(ids))
        .cte("first")
        .prefix_with("MATERIALIZED")
    )
    stmt = (
        select(first.c.id, Campaign.name, source_team(Campaign, Team, first.c.campaign_id))
        .select_from(first)
        .outerjoin(Campaign, Campaign.id == first.c.campaign_id)
        .outerjoin(Person, Person.id == Campaign.owner_id)
        .outerjoin(Team, Team.id == Person.team_id)
    )
    return {r[0]: (r[1], str(r[2])) for r in (await session.execute(stmt)).all()}


# -- Leads -----------------------------------------------------------------------------------------------

_LEAD_DATES: Final = {
    "leads_created": ("created_at", "Created"),
    "mqls": ("mql_at", "MQL"),
    "accepted_leads": ("accepted_at", "Accepted"),
    "rejected_leads": ("rejected_at", "Rejected"),
    "sqls": ("sql_at", "SQL"),
    "mql_to_sql_rate": ("mql_at", "MQL"),
    "speed_to_lead_hours": ("mql_at", "MQL"),
    "sla_compliance": ("mql_at", "MQL"),
    "mql_commitment_attainment": ("mql_at", "MQL"),
}


async def _lead_records(
    session: AsyncSession,
    *,
    settings: Settings,
    kpi: KpiDefinition,
    quarter: Quarter,
    win: Window,
    filters: KpiFilters,
    page: int,
    sort: str,
    descending: bool,
) -> RecordPage:
    # Imported here: okr.kpis.services imports this module.
    from okr.kpis.services import SlaRules, as_utc

    start, cut = win.start, win.cut
    conditions = lead_conditions(Lead, filters, touched_before=cut)
    stamp: Any
    if kpi.name == "acceptance_rate":
        # Dispositioned in the period: accepted or rejected in it, dated by that event.
        accepted_in = and_(Lead.accepted_at >= start, Lead.accepted_at < cut)
        rejected_in = and_(Lead.rejected_at >= start, Lead.rejected_at < cut)
        conditions.append(or_(accepted_in, rejected_in))
        stamp = case((accepted_in, Lead.accepted_at), else_=Lead.rejected_at)
        label = "Dispositioned"
    else:
        column, label = _LEAD_DATES[kpi.name]
        stamp = getattr(Lead, column)
        conditions += [stamp >= start, stamp < cut]
    disposed = disposition(Lead, win.as_of)
    rules = await SlaRules.load(session, settings=settings, win=win)
    if kpi.name == "speed_to_lead_hours":
        conditions.append(disposed.is_not(None))
    elif kpi.name == "sla_compliance":
        # The MQLs the figure judges: all but the open ones not yet due. Business hours are judged in
        # Python (services.SlaRules): find the pending ones among the open MQLs and leave them out.
        open_rows = await session.execute(
            select(Lead.id, Lead.mql_at).where(*conditions, disposed.is_(None)).order_by(Lead.id)
        )
        now = win.now
        pending = [
            i for i, m in open_rows if rules.judge(as_utc(m) or now, None, now=now).status == "pending"
        ]
        if pending:
            conditions.append(Lead.id.not_in(pending))
    total = int(
        (await session.execute(select(func.count()).select_from(Lead).where(*conditions))).scalar_one()
    )
    page = _clamp(page, total)
    sort_columns: dict[str, Any] = {
        "date": stamp,
        "email": Lead.email,
        "account": Account.name,
        "owner": Person.name,
    }
    # First the page's ids, joining only what the sort needs (a deep page then skips over index
    # entries, not over joined rows), then those 50 leads with their account and owner.
    ids_stmt = select(Lead.id).where(*conditions)
    if sort == "account":
        ids_stmt = ids_stmt.join(Account, Account.id == Lead.account_id)
    elif sort == "owner":
        ids_stmt = ids_stmt.outerjoin(Person, Person.id == Lead.owner_id)
    nullable = sort in _NULLABLE_SORTS
    ids_stmt = (
        ids_stmt.order_by(*_order(sort_columns[sort], descending, nullable=nullable), Lead.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    ids = list((await session.execute(ids_stmt)).scalars().all())
    stmt = (
        select(
            Lead.id,
            Lead.external_id,
            Lead.email,
            Account.name,
            Person.name,
            Lead.created_at,
            Lead.mql_at,
            Lead.accepted_at,
            Lead.rejected_at,
            Lead.sql_at,
            stamp,
        )
        .join(Account, Account.id == Lead.account_id)
        .outerjoin(Person, Person.id == Lead.owner_id)
        .where(Lead.id.in_(ids))
    )
    found = {}
    for r in (await session.execute(stmt)).all():
        disposed_at = first_disposition(r[6], r[7], r[8], as_of=win.as_of)
        hours = None
        if disposed_at is not None and r[6] is not None:
            delta = disposed_at - r[6]
            micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            hours = Decimal(micros) / MICROS_PER_HOUR
        mql_at = as_utc(r[6])
        sla = None if mql_at is None else rules.judge(mql_at, as_utc(disposed_at), now=win.now).status
        found[r[0]] = LeadRow(
            id=r[0], external_id=r[1], email=r[2], account=r[3], owner=r[4], created_at=r[5],
            mql_at=r[6], accepted_at=r[7], rejected_at=r[8], sql_at=r[9], date=_aware(r[10]),
            response_hours=hours, sla=sla,
        )  # fmt: skip
    rows = [found[i] for i in ids if i in found]
    return RecordPage(
        kpi=kpi,
        quarter=quarter,
        rows=rows,
        total=total,
        page=page,
        sort=sort,
        descending=descending,
        currency=settings.org_currency,
        date_label=label,
        filters=filters,
        sla_hours=rules.rules[0].hours if kpi.name == "sla_compliance" else None,
        sla_rule=rules.rules[0].describe() if kpi.name == "sla_compliance" else None,
    )


def _aware(value: Any) -> dt.datetime | None:
    """A timestamp read through an SQL expression (no column type on SQLite) as an aware datetime."""
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


# -- Campaigns -------------------------------------------------------------------------------------------


async def _campaign_records(
    session: AsyncSession,
    *,
    settings: Settings,
    kpi: KpiDefinition,
    quarter: Quarter,
    win: Window,
    filters: KpiFilters,
    page: int,
    sort: str,
    descending: bool,
    model: str,
) -> RecordPage:
    costs = await campaign_costs(session, settings=settings, win=win, filters=filters)
    roi = kpi.name == "campaign_roi"
    attributed: dict[int, int] = {}
    from_run: bool | None = None
    if roi:
        sql = await dialect_sql(session, settings)
        runs = await current_runs(session)
        from_run = runs.revenue is not None
        attributed = await attributed_revenue(session, sql, win, filters, runs, model, costs)
    rows = [
        CampaignRow(
            id=c.id,
            external_id=c.external_id,
            name=c.name,
            channel=c.channel,
            owner=c.owner,
            team=c.team,
            cost=c.cost,
            attributed=attributed.get(c.id, 0) if roi else None,
        )
        for c in costs
        if c.cost or (roi and attributed.get(c.id))
    ]
    keys: dict[str, Any] = {
        "cost": lambda r: r.cost,
        "attributed": lambda r: r.attributed,
        "roi": lambda r: r.roi,
        "name": lambda r: r.name.casefold(),
        "channel": lambda r: r.channel,
        "owner": lambda r: None if r.owner is None else r.owner.casefold(),
    }
    by_name = sorted(rows, key=lambda r: (r.name.casefold(), r.id))
    known = [r for r in by_name if keys[sort](r) is not None]
    unknown = [r for r in by_name if keys[sort](r) is None]
    ordered = sorted(known, key=keys[sort], reverse=descending) + unknown  # no value: last either way
    page = _clamp(page, len(ordered))
    first = (page - 1) * PAGE_SIZE
    return RecordPage(
        kpi=kpi,
        quarter=quarter,
        rows=ordered[first : first + PAGE_SIZE],
        total=len(ordered),
        page=page,
        sort=sort,
        descending=descending,
        currency=settings.org_currency,
        date_label="",
        filters=filters,
        model=model if roi else None,
        from_run=from_run,
    )
