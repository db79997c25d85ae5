"""What the attribution API answers, and the settings form as the page re-renders it.

Money is integer minor units with its currency code beside it (`currency` on the answer for the
organisation's currency); weights (10 places), shares and ROI (6 places) are decimal strings; no floats.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal
from urllib.parse import urlencode

from okr.attribution.jobs import RecomputeJob
from okr.attribution.queries import (
    CampaignDetail,
    CampaignFigure,
    ChannelFigure,
    CompareRow,
    Comparison,
    CreditedDeal,
    Figures,
    Journey,
    JourneyStep,
    LeftOut,
    PeopleCredit,
    PersonCredit,
    PersonShare,
    ScopeJourney,
)
from okr.attribution.services import AttributionConfig
from okr.settings import Settings

API = "/api/v1/attribution"
ScopeName = Literal["pipeline", "revenue"]


_RATIO_PLACES: Final = Decimal("0.000001")


def _ratio(value: Decimal | None) -> Decimal | None:
    """A share or ROI to 6 decimals, half up (a ratio, not money: the exact figures are the amounts)."""
    return None if value is None else value.quantize(_RATIO_PLACES, rounding=ROUND_HALF_UP)


def _query(**params: object) -> str:
    pairs = [(k, str(v)) for k, v in params.items() if v is not None]
    return "?" + urlencode(pairs) if pairs else ""


@dataclass(frozen=True, slots=True)
class LeftOutRead:
    """Deals left out of the money figures: no FX rate for their currency (or an unknown currency)."""

    currency: str
    count: int
    message: str

    @classmethod
    def of(cls, left: LeftOut) -> "LeftOutRead":
        """From the query's record."""
        return cls(left.currency, left.count, left.message)


@dataclass(frozen=True, slots=True)
class ChannelRead:
    """One channel: attributed amount (minor units of the org currency), deals credited, cost, ROI."""

    channel: str
    amount: int
    share: Decimal | None
    deals: int
    campaigns: int
    cost: int
    roi: Decimal | None
    sourced_pipeline: int
    campaigns_url: str

    @classmethod
    def of(cls, f: ChannelFigure, figures: Figures) -> "ChannelRead":
        """From the query's figure; `campaigns_url` lists its campaigns."""
        url = (
            API
            + "/figures"
            + _query(
                period=figures.quarter.key,
                model=figures.model,
                scope=figures.scope.value,
                group_by="campaign",
                channel=f.channel,
            )
        )
        return cls(
            f.channel,
            f.amount,
            _ratio(figures.share(f.amount)),
            f.deals,
            f.campaigns,
            f.cost,
            _ratio(f.roi),
            f.sourced,
            url,
        )


@dataclass(frozen=True, slots=True)
class CampaignRead:
    """One campaign: attributed amount, deals, cost in the period, ROI, sourced and influenced pipeline."""

    campaign_id: int
    external_id: str
    name: str
    channel: str
    owner_id: int | None
    owner: str | None
    team: str
    amount: int
    share: Decimal | None
    deals: int
    touched: int
    cost: int | None
    roi: Decimal | None
    sourced_pipeline: int
    sourced_deals: int
    influenced_pipeline: int
    influenced_deals: int
    detail_url: str

    @classmethod
    def of(
        cls, f: CampaignFigure, quarter: str, model: str, scope: str, share: Decimal | None
    ) -> "CampaignRead":
        """From the query's figure; `detail_url` is its campaign detail."""
        c = f.campaign
        url = f"{API}/campaigns/{c.id}" + _query(period=quarter, model=model, scope=scope)
        return cls(
            campaign_id=c.id,
            external_id=c.external_id,
            name=c.name,
            channel=c.channel,
            owner_id=c.owner_id,
            owner=c.owner,
            team=c.team,
            amount=f.amount,
            share=_ratio(share),
            deals=f.deals,
            touched=f.touched,
            cost=f.cost,
            roi=_ratio(f.roi),
            sourced_pipeline=f.sourced,
            sourced_deals=f.sourced_deals,
            influenced_pipeline=f.influenced,
            influenced_deals=f.influenced_deals,
            detail_url=url,
        )


@dataclass(frozen=True, slots=True)
class PersonRead:
    """A person's attribution credit (not payout): a marketer's campaigns, or a rep's revenue splits."""

    person_id: int | None
    name: str
    team: str | None
    role: Literal["marketer", "rep"]
    amount: int
    overlay: int
    deals: int
    campaigns: int

    @classmethod
    def of(cls, p: PersonCredit) -> "PersonRead":
        """From the query's record."""
        role: Literal["marketer", "rep"] = "marketer" if p.role == "marketer" else "rep"
        return cls(p.person_id, p.name, p.team, role, p.amount, p.overlay, p.deals, p.campaigns)


@dataclass(frozen=True, slots=True)
class SourcingRead:
    """Pipeline created in the period by who sourced it, and the part any marketing touch influenced."""

    pipeline_created: int
    sourced_by: dict[str, int]
    influenced_by_marketing: int


@dataclass(frozen=True, slots=True)
class FiguresRead:
    """Attribution figures for a period, model and scope, grouped by channel, campaign or person.

    `total` == `attributed` + `unattributed`, and equals the dashboard's pipeline created (pipeline scope)
    or revenue won (revenue scope) for the period. Only the list `group_by` asks for is filled.
    """

    period: str
    period_start: dt.date
    period_end: dt.date
    model: str
    scope: ScopeName
    group_by: Literal["channel", "campaign", "person"]
    currency: str
    computed_at: dt.datetime
    lookback_days: int
    total: int
    attributed: int
    unattributed: int
    unattributed_deals: int
    deals: int
    cost: int
    roi: Decimal | None
    sourcing: SourcingRead | None
    left_out: list[LeftOutRead]
    channels: list[ChannelRead] | None = None
    campaigns: list[CampaignRead] | None = None
    people: list[PersonRead] | None = None
    unattributed_url: str = ""

    @classmethod
    def of(
        cls,
        figures: Figures,
        *,
        settings: Settings,
        group_by: str,
        channel: str | None = None,
        people: PeopleCredit | None = None,
    ) -> "FiguresRead":
        """From the query's figures; `channel` narrows the campaign list to one channel."""
        q, model, scope = figures.quarter.key, figures.model, figures.scope.value
        first, last = figures.quarter.dates(settings.fiscal_year_start_month)
        channels = campaigns = persons = None
        if group_by == "channel":
            channels = [ChannelRead.of(c, figures) for c in figures.channels]
        elif group_by == "campaign":
            campaigns = [
                CampaignRead.of(f, q, model, scope, figures.share(f.amount))
                for f in figures.campaigns
                if channel is None or f.campaign.channel == channel
            ]
        elif people is not None:
            persons = [PersonRead.of(p) for p in people.marketers + people.reps]
        sourcing = None
        if figures.pipeline_run is not None:
            sourcing = SourcingRead(
                figures.pipeline_total, dict(sorted(figures.sourced_by.items())), figures.influenced_marketing
            )
        group: Literal["channel", "campaign", "person"] = (
            "channel" if group_by == "channel" else "person" if group_by == "person" else "campaign"
        )
        return cls(
            period=q,
            period_start=first,
            period_end=last,
            model=model,
            scope="pipeline" if scope == "pipeline" else "revenue",
            group_by=group,
            currency=figures.currency,
            computed_at=figures.run.computed_at,
            lookback_days=figures.run.lookback_days,
            total=figures.total,
            attributed=figures.attributed,
            unattributed=figures.unattributed,
            unattributed_deals=figures.unattributed_deals,
            deals=figures.deals,
            cost=figures.cost,
            roi=_ratio(figures.roi),
            sourcing=sourcing,
            left_out=[LeftOutRead.of(x) for x in figures.left_out],
            channels=channels,
            campaigns=campaigns,
            people=persons,
            unattributed_url=f"{API}/campaigns/unattributed" + _query(period=q, model=model, scope=scope),
        )


@dataclass(frozen=True, slots=True)
class CreditedDealRead:
    """An opportunity the campaign touched, with the campaign's weight and credit on it."""

    opportunity_id: int
    external_id: str
    name: str
    account: str
    owner: str | None
    status: str
    date: dt.datetime
    amount: int
    currency: str
    steps: int
    weight: Decimal
    credit: int
    credit_base: int | None
    journey_url: str

    @classmethod
    def of(cls, d: CreditedDeal, model: str) -> "CreditedDealRead":
        """From the query's record; `date` is the scope's end (created or closed)."""
        url = f"{API}/opportunities/{d.id}" + _query(model=model)
        return cls(
            d.id, d.external_id, d.name, d.account, d.owner, d.status, d.period_at, d.amount, d.currency,
            d.steps, d.weight, d.credit, d.credit_base, url,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CampaignDetailRead:
    """A campaign in a period under a model and scope, and one page of the deals it touched.

    `credit_base` of the deals (all pages) adds up to the campaign's `amount`.
    """

    period: str
    model: str
    scope: ScopeName
    currency: str
    campaign: CampaignRead
    page: int
    pages: int
    per_page: int
    total: int
    sort: str
    order: Literal["asc", "desc"]
    opportunities: list[CreditedDealRead]

    @classmethod
    def of(cls, d: CampaignDetail) -> "CampaignDetailRead":
        """From the query's detail."""
        q, scope = d.quarter.key, d.scope.value
        return cls(
            period=q,
            model=d.model,
            scope="pipeline" if scope == "pipeline" else "revenue",
            currency=d.currency,
            campaign=CampaignRead.of(d.figure, q, d.model, scope, None),
            page=d.page,
            pages=d.pages,
            per_page=d.per_page,
            total=d.total,
            sort=d.sort,
            order="desc" if d.descending else "asc",
            opportunities=[CreditedDealRead.of(r, d.model) for r in d.rows],
        )


@dataclass(frozen=True, slots=True)
class StepRead:
    """One step of a journey: the touch, the roles it holds, its weight (10 places) and its credit."""

    position: int
    occurred_at: dt.datetime | None
    touchpoint_id: int | None
    touchpoint: str | None
    kind: str | None
    campaign_id: int | None
    campaign: str | None
    channel: str
    roles: list[str]
    weight: Decimal
    amount: int
    base: int | None

    @classmethod
    def of(cls, s: JourneyStep) -> "StepRead":
        """From the query's step."""
        return cls(
            s.position, s.occurred_at, s.touchpoint_id, s.touchpoint, s.kind, s.campaign_id, s.campaign,
            s.channel, s.roles, s.weight, s.amount, s.base,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PersonShareRead:
    """A person's credit on the deal: `amount` in the deal's currency, `base` in the org currency."""

    person_id: int | None
    name: str
    amount: int
    base: int | None
    campaigns: int

    @classmethod
    def of(cls, p: PersonShare) -> "PersonShareRead":
        """From the query's record."""
        return cls(p.person_id, p.name, p.amount, p.base, p.campaigns)


@dataclass(frozen=True, slots=True)
class ScopeJourneyRead:
    """The journey in one scope: its steps (weights sum to 1, amounts to the deal) and people credit."""

    scope: ScopeName
    computed_at: dt.datetime
    ends_at: dt.datetime
    amount: int
    base: int | None
    steps: list[StepRead]
    reps: list[PersonShareRead]
    overlay: list[PersonShareRead]
    marketers: list[PersonShareRead]
    split_problem: str | None

    @classmethod
    def of(cls, s: ScopeJourney) -> "ScopeJourneyRead":
        """From the query's scope journey."""
        return cls(
            scope="pipeline" if s.scope == "pipeline" else "revenue",
            computed_at=s.run.computed_at,
            ends_at=s.end,
            amount=s.amount,
            base=s.base,
            steps=[StepRead.of(x) for x in s.steps],
            reps=[PersonShareRead.of(p) for p in s.reps],
            overlay=[PersonShareRead.of(p) for p in s.overlay],
            marketers=[PersonShareRead.of(p) for p in s.marketers],
            split_problem=s.split_problem,
        )


@dataclass(frozen=True, slots=True)
class JourneyRead:
    """An opportunity's journey under a model, in each scope whose run holds it (revenue: won deals)."""

    opportunity_id: int
    external_id: str
    name: str
    account: str
    owner: str | None
    status: str
    amount: int
    currency: str
    created_at: dt.datetime
    closed_at: dt.datetime | None
    model: str
    org_currency: str
    sourced_by: str | None
    influenced_by_marketing: bool | None
    scopes: list[ScopeJourneyRead]

    @classmethod
    def of(cls, j: Journey) -> "JourneyRead":
        """From the query's journey."""
        return cls(
            j.id, j.external_id, j.name, j.account, j.owner, j.status, j.amount, j.currency, j.created_at,
            j.closed_at, j.model, j.org_currency, j.sourced_by, j.influenced_by_marketing,
            [ScopeJourneyRead.of(s) for s in j.scopes],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CompareRowRead:
    """A channel or campaign under model A and model B (minor units of the org currency)."""

    label: str
    channel: str
    campaign_id: int | None
    amount_a: int
    amount_b: int
    difference: int

    @classmethod
    def of(cls, r: CompareRow) -> "CompareRowRead":
        """From the query's row; difference = B − A."""
        return cls(r.label, r.channel, r.campaign_id, r.a, r.b, r.difference)


@dataclass(frozen=True, slots=True)
class CompareRead:
    """Two models side by side for a period and scope: both add up to `total` with `unattributed`."""

    period: str
    scope: ScopeName
    model_a: str
    model_b: str
    currency: str
    total: int
    unattributed: int
    channels: list[CompareRowRead]
    campaigns: list[CompareRowRead]
    left_out: list[LeftOutRead]

    @classmethod
    def of(cls, c: Comparison) -> "CompareRead":
        """From the query's comparison."""
        return cls(
            period=c.quarter.key,
            scope="pipeline" if c.scope == "pipeline" else "revenue",
            model_a=c.model_a,
            model_b=c.model_b,
            currency=c.currency,
            total=c.total,
            unattributed=c.unattributed,
            channels=[CompareRowRead.of(r) for r in c.channels],
            campaigns=[CompareRowRead.of(r) for r in c.campaigns],
            left_out=[LeftOutRead.of(x) for x in c.left_out],
        )


@dataclass(frozen=True, slots=True)
class AttributionProblem:
    """A refused request (RFC 9457 problem): `errors` names each bad field and why."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)


# -- the settings form ---------------------------------------------------------------------------------

WEIGHT_FIELDS: tuple[tuple[str, str], ...] = (
    ("first", "First touch"),
    ("lead_creation", "Lead-creation touch"),
    ("opportunity_creation", "Opportunity-creation touch"),
    ("closed_won", "Closed-won touch"),
    ("middle", "Middle touches (shared)"),
)


@dataclass(slots=True)
class SettingsForm:
    """The settings form as typed (text, so a bad value is shown back as typed) and each field's error."""

    lookback_days: str = ""
    half_life_days: str = ""
    weights: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
    job: RecomputeJob | None = None
    """The recompute still under way after saving (the form then shows its progress)."""

    @classmethod
    def of(cls, config: AttributionConfig) -> "SettingsForm":
        """The form filled with the settings in force."""
        w = config.custom
        return cls(
            lookback_days=str(config.lookback_days),
            half_life_days=str(config.half_life_days),
            weights={
                "first": str(w.first),
                "lead_creation": str(w.lead_creation),
                "opportunity_creation": str(w.opportunity_creation),
                "closed_won": str(w.closed_won),
                "middle": str(w.middle),
            },
        )
