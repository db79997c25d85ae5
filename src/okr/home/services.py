"""The personal page (`/me`, `/people/{id}`) and the team page (`/teams/{id}`) of issue 4, item 5.

Each page reads the period's goals with one `goals_overview` call (objectives and KRs, valued, scored and
paced by the goals feature) and its KPI figures with one `kpi_values` call per distinct filter set; the
rest is selection over those plain views: which KRs are the person's, their share of the joint metric KRs,
what needs their attention, the team's people and their KRs. The reasons: docs/goals.md, "Personal and
team pages".
"""

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.schemas import CurrentUser
from okr.db.people import Person, Team
from okr.goals import core as goals_core
from okr.goals import services as goals
from okr.goals.services import GoalsOverview, KeyResultView, ObjectiveView, TeamRef
from okr.home.guards import check_may_see_person, may_see_person, no_such_person
from okr.kpis import services as kpis
from okr.kpis.core import (
    ADDITIVE,
    DASHBOARD_KPIS,
    KPIS,
    KpiDefinition,
    KpiFilters,
    KpiValue,
    filters_applying,
)
from okr.lib.errors import NotFound
from okr.lib.periods import Quarter
from okr.settings import Settings

PaceStatus = goals_core.PaceStatus

STALE_AFTER: Final = dt.timedelta(days=7)
"""A manual KR whose last check-in is at least this old (or that has none) needs its owner."""


# -- people ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonCard:
    """Whose page it is: name, role and team."""

    id: int
    name: str
    role: str
    team: TeamRef
    is_active: bool = True

    @classmethod
    def of(cls, user: CurrentUser) -> "PersonCard":
        """The logged-in person, without a query."""
        return cls(id=user.id, name=user.name, role=user.role, team=TeamRef(user.team_id, user.team))


async def visible_person(session: AsyncSession, *, user: CurrentUser, person_id: int) -> PersonCard:
    """The person `person_id` when `user` may see them (home.guards); NotFound alike when they do not
    exist and when the caller may not see them."""
    row = (
        await session.execute(
            select(Person.id, Person.name, Person.role, Person.is_active, Team.id, Team.name)
            .join(Team, Team.id == Person.team_id)
            .where(Person.id == person_id)
        )
    ).one_or_none()
    if row is None:
        raise no_such_person(person_id)
    pid, name, role, active, team_id, team_name = row
    check_may_see_person(user, person_id=int(pid), team_id=int(team_id))
    return PersonCard(
        id=int(pid),
        name=str(name),
        role=str(role),
        team=TeamRef(int(team_id), str(team_name)),
        is_active=bool(active),
    )


# -- the personal page -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyResultGroup:
    """The person's KRs of one objective, in the objective's order."""

    objective: ObjectiveView
    key_results: tuple[KeyResultView, ...]


@dataclass(frozen=True, slots=True)
class Contribution:
    """The person's own figure of a joint metric KR: the KR's KPI with its filters and the person's.

    `value` is in the KR's unit, like the KR's total (`key_result.value`); `share` is value / total for
    counts and amounts (None for rates, medians and means, which do not add up, and without a total).
    """

    objective: ObjectiveView
    key_result: KeyResultView
    filters: KpiFilters
    value: Decimal | None
    share: Decimal | None

    @property
    def total(self) -> Decimal | None:
        """The KR's value: the KPI with the KR's filters."""
        return self.key_result.value

    @property
    def additive(self) -> bool:
        """Whether people's figures add up to the total (counts and amounts)."""
        return self.key_result.metric in ADDITIVE

    @property
    def records_params(self) -> dict[str, str | int | None]:
        """The query of the records page behind the person's figure."""
        return {"period": self.key_result.period, **self.filters.params}


class Attention(enum.StrEnum):
    """Why a KR needs the person, most urgent first."""

    AT_RISK = "at_risk"
    LAGGING = "lagging"
    NO_CHECK_IN = "no_check_in"
    STALE = "stale"
    SANDBAGGED = "sandbagged"


_URGENCY: Final = {reason: n for n, reason in enumerate(Attention)}


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """A KR that needs the person, and every reason why (most urgent first)."""

    objective: ObjectiveView
    key_result: KeyResultView
    reasons: tuple[Attention, ...]
    days_since_check_in: int | None = None


@dataclass(frozen=True, slots=True)
class PersonalPage:
    """Everything the personal page shows for one person and period."""

    person: PersonCard
    overview: GoalsOverview
    groups: tuple[KeyResultGroup, ...]
    contributions: tuple[Contribution, ...]
    attention: tuple[AttentionItem, ...]
    owned: tuple[ObjectiveView, ...]

    @property
    def key_results(self) -> list[KeyResultView]:
        """The person's KRs, in page order."""
        return [kr for g in self.groups for kr in g.key_results]

    @property
    def status_counts(self) -> dict[PaceStatus | None, int]:
        """The person's KRs per pace status (None: no status yet)."""
        return status_counts(self.key_results)

    @property
    def empty(self) -> bool:
        """Nothing of the person's in the period: no KR, no objective, no joint KR to contribute to."""
        return not (self.groups or self.owned or self.contributions)


def status_counts(key_results: Iterable[KeyResultView]) -> dict[PaceStatus | None, int]:
    """KRs per pace status, every status present (None: no status yet)."""
    counts: dict[PaceStatus | None, int] = {s: 0 for s in PaceStatus}
    counts[None] = 0
    for kr in key_results:
        counts[kr.status] += 1
    return counts


def owned_key_results(overview: GoalsOverview, person_id: int) -> tuple[KeyResultGroup, ...]:
    """The KRs `person_id` owns, grouped by objective, in page order."""
    groups = []
    for o in overview.objectives:
        mine = tuple(kr for kr in o.key_results if person_id in kr.owner_ids)
        if mine:
            groups.append(KeyResultGroup(o, mine))
    return tuple(groups)


def contribution_candidates(
    overview: GoalsOverview, person: PersonCard
) -> list[tuple[ObjectiveView, KeyResultView, KpiFilters]]:
    """The metric KRs the person contributes to, each with its filters narrowed to the person.

    Those of joint objectives and of the person's team's objectives; not a KR already narrowed to one
    person (it is that person's own figure), nor one whose KPI has no per-person figure (CAC)."""
    found = []
    for o in overview.objectives:
        if not (o.joint or person.team.id in o.team_ids):
            continue
        for kr in o.key_results:
            if kr.source != goals_core.Source.METRIC or kr.kpi is None or kr.filters.person_id is not None:
                continue
            if "person" not in filters_applying(kr.kpi.name):
                continue
            found.append((o, kr, replace(kr.filters, person_id=person.id)))
    return found


async def contributions(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    overview: GoalsOverview,
    person: PersonCard,
) -> tuple[Contribution, ...]:
    """The person's figure of each joint metric KR: one kpi_values call per distinct filter set."""
    candidates = contribution_candidates(overview, person)
    wanted: dict[KpiFilters, set[str]] = defaultdict(set)
    for _, kr, filters in candidates:
        wanted[filters].add(str(kr.metric))
    values: dict[tuple[str, KpiFilters], KpiValue] = {}
    for filters, names in wanted.items():
        got = await kpis.kpi_values(
            session, settings=settings, quarter=quarter, names=sorted(names), filters=filters
        )
        values.update({(name, filters): value for name, value in got.items()})
    found = []
    for o, kr, filters in candidates:
        kpi = KPIS[str(kr.metric)]
        mine = goals.kr_value_of(values[(kpi.name, filters)], kpi, settings.org_currency)
        share = None
        if kpi.name in ADDITIVE and mine is not None and kr.value:
            share = mine / kr.value
        found.append(Contribution(o, kr, filters, mine, share))
    return tuple(found)


def needs_attention(
    overview: GoalsOverview, person_id: int, *, stale_after: dt.timedelta = STALE_AFTER
) -> tuple[AttentionItem, ...]:
    """What needs the person, one item per KR, most urgent first.

    Their KRs at risk or lagging; their manual KRs without a check-in for `stale_after`, or ever, once the
    period has started; the sandbagged targets of the objectives they own. Nothing in a closed period
    (it is read-only); before the period starts only the sandbagged targets (it is being planned).
    """
    window, now = overview.window, overview.now
    if window.read_only:
        return ()
    started = window.elapsed(now) > dt.timedelta(0)
    items = []
    for o in overview.objectives:
        owns_objective = o.owner is not None and o.owner.id == person_id
        for kr in o.key_results:
            reasons: list[Attention] = []
            days = None
            if person_id in kr.owner_ids:
                if kr.status == PaceStatus.AT_RISK:
                    reasons.append(Attention.AT_RISK)
                elif kr.status == PaceStatus.LAGGING:
                    reasons.append(Attention.LAGGING)
                if started and kr.source == goals_core.Source.MANUAL:
                    last = kr.last_check_in
                    if last is None:
                        reasons.append(Attention.NO_CHECK_IN)
                    elif now - last.created_at >= stale_after:
                        reasons.append(Attention.STALE)
                        days = (now - last.created_at).days
            if owns_objective and kr.sandbagged:
                reasons.append(Attention.SANDBAGGED)
            if reasons:
                items.append(AttentionItem(o, kr, tuple(reasons), days))
    # Stable: within one urgency, the page order of the objectives and KRs.
    return tuple(sorted(items, key=lambda item: _URGENCY[item.reasons[0]]))


async def personal_page(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    person: PersonCard,
    user: CurrentUser,
    now: dt.datetime | None = None,
) -> PersonalPage:
    """The person's KRs, their share of the joint metric KRs and what needs them, seen by `user`."""
    overview = await goals.goals_overview(session, settings=settings, quarter=quarter, user=user, now=now)
    return PersonalPage(
        person=person,
        overview=overview,
        groups=owned_key_results(overview, person.id),
        contributions=await contributions(
            session, settings=settings, quarter=quarter, overview=overview, person=person
        ),
        attention=needs_attention(overview, person.id),
        owned=tuple(o for o in overview.objectives if o.owner is not None and o.owner.id == person.id),
    )


# -- the team page -----------------------------------------------------------------------------------------

TEAM_KPIS: Final[dict[str, tuple[str, ...]]] = {
    "sales": (
        "revenue_won",
        "pipeline_created",
        "deals_won",
        "win_rate",
        "avg_deal_size",
        "sales_cycle_days",
    ),
    "sdr": ("mqls", "accepted_leads", "sqls", "speed_to_lead_hours", "sla_compliance", "campaign_cost"),
    "marketing": (
        "pipeline_sourced_marketing",
        "pipeline_influenced_marketing",
        "mqls",
        "campaign_cost",
        "campaign_roi",
    ),
}
"""The key KPIs of a team page, by team name; other teams get the dashboard's six."""

WHOLE_ORGANISATION: Final[dict[str, frozenset[str]]] = {
    "marketing": frozenset({"pipeline_sourced_marketing", "pipeline_influenced_marketing", "mqls"})
}
"""KPIs that are a team's own by definition and read without the team filter on its page: the team
filter means the *owner's* team (docs/kpis.md), and marketing owns the campaigns, not the leads or deals
its campaigns bring, so "marketing's MQLs and sourced pipeline" are the whole organisation's."""


@dataclass(frozen=True, slots=True)
class TeamFigure:
    """One key KPI of a team page and the filters it was read with (the team's, or none)."""

    kpi: KpiDefinition
    value: KpiValue
    filters: KpiFilters
    period: str

    @property
    def team_filtered(self) -> bool:
        """Narrowed to the team's people (else the organisation's figure, the team's by definition)."""
        return self.filters.team_id is not None

    @property
    def records_params(self) -> dict[str, str | int | None]:
        """The query of the records page behind the figure."""
        return {"period": self.period, **self.filters.params}


@dataclass(frozen=True, slots=True)
class TeamPerson:
    """Someone on a team page: a member of the team, or the owner of one of its KRs from another team."""

    id: int
    name: str
    role: str
    team: TeamRef
    member: bool
    key_results: tuple[KeyResultView, ...]
    visible: bool
    status_counts: dict[PaceStatus | None, int]


@dataclass(frozen=True, slots=True)
class TeamPage:
    """Everything the team page shows for one team and period."""

    team: TeamRef
    overview: GoalsOverview
    figures: tuple[TeamFigure, ...]
    people: tuple[TeamPerson, ...]

    @property
    def members(self) -> list[TeamPerson]:
        """The team's own people."""
        return [p for p in self.people if p.member]

    @property
    def others(self) -> list[TeamPerson]:
        """People of other teams who own KRs of this team's objectives."""
        return [p for p in self.people if not p.member]


def team_kpis(team_name: str) -> tuple[str, ...]:
    """The key KPIs of the team called `team_name`."""
    return TEAM_KPIS.get(team_name.lower(), DASHBOARD_KPIS)


async def team_figures(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, team: TeamRef
) -> tuple[TeamFigure, ...]:
    """The team's key KPIs for the period: one kpi_values call per filter set (the team's, and none)."""
    names = team_kpis(team.name)
    whole = WHOLE_ORGANISATION.get(team.name.lower(), frozenset())
    scoped = KpiFilters(team_id=team.id)
    filters_of = {name: KpiFilters() if name in whole else scoped for name in names}
    values: dict[str, KpiValue] = {}
    for filters in dict.fromkeys(filters_of.values()):
        chosen = [n for n in names if filters_of[n] == filters]
        values.update(
            await kpis.kpi_values(session, settings=settings, quarter=quarter, names=chosen, filters=filters)
        )
    return tuple(TeamFigure(KPIS[n], values[n], filters_of[n], quarter.key) for n in names)


async def team_ref(session: AsyncSession, *, team_id: int) -> TeamRef:
    """The team `team_id`; NotFound when there is none."""
    name = await session.scalar(select(Team.name).where(Team.id == team_id))
    if name is None:
        raise NotFound(f"There is no team {team_id}.")
    return TeamRef(team_id, str(name))


def _people_of(
    team: TeamRef,
    members: Sequence[tuple[int, str, str, int, str]],
    others: Sequence[tuple[int, str, str, int, str]],
    overview: GoalsOverview,
    user: CurrentUser,
) -> tuple[TeamPerson, ...]:
    krs_of: dict[int, list[KeyResultView]] = defaultdict(list)
    for kr in overview.key_results:
        for owner in kr.owners:
            krs_of[owner.id].append(kr)
    people = []
    # Those who carry KRs first (by name, as the rows come), then the rest of the team.
    members = sorted(members, key=lambda row: row[0] not in krs_of)
    for rows, member in ((members, True), (others, False)):
        for pid, name, role, team_id, team_name in rows:
            mine = tuple(krs_of.get(pid, ()))
            people.append(
                TeamPerson(
                    id=pid,
                    name=name,
                    role=role,
                    team=team if member else TeamRef(team_id, team_name),
                    member=member,
                    key_results=mine,
                    visible=may_see_person(user, person_id=pid, team_id=team_id),
                    status_counts=status_counts(mine),
                )
            )
    return tuple(people)


async def team_page(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    team_id: int,
    user: CurrentUser,
    now: dt.datetime | None = None,
) -> TeamPage:
    """The team's objectives (scored), key KPIs and people with their KRs in them, seen by `user`."""
    team = await team_ref(session, team_id=team_id)
    overview = await goals.goals_overview(
        session, settings=settings, quarter=quarter, user=user, team_id=team_id, now=now
    )
    figures = await team_figures(session, settings=settings, quarter=quarter, team=team)
    owners = {p.id for kr in overview.key_results for p in kr.owners}
    columns = (Person.id, Person.name, Person.role, Team.id, Team.name)
    rows = (
        await session.execute(
            select(*columns)
            .join(Team, Team.id == Person.team_id)
            .where(or_(and_(Person.team_id == team_id, Person.is_active.is_(True)), Person.id.in_(owners)))
            .order_by(Person.name, Person.id)
        )
    ).all()
    found = [(int(i), str(n), str(r), int(t), str(tn)) for i, n, r, t, tn in rows]
    members = [row for row in found if row[3] == team_id]
    others = [row for row in found if row[3] != team_id]
    return TeamPage(
        team=team,
        overview=overview,
        figures=figures,
        people=_people_of(team, members, others, overview, user),
    )


__all__ = [
    "STALE_AFTER",
    "TEAM_KPIS",
    "WHOLE_ORGANISATION",
    "Attention",
    "AttentionItem",
    "Contribution",
    "KeyResultGroup",
    "PersonCard",
    "PersonalPage",
    "TeamFigure",
    "TeamPage",
    "TeamPerson",
    "contribution_candidates",
    "contributions",
    "needs_attention",
    "owned_key_results",
    "personal_page",
    "status_counts",
    "team_figures",
    "team_kpis",
    "team_page",
    "team_ref",
    "visible_person",
]


@dataclass(frozen=True, slots=True)
class TeamSummary:
    """A team on the teams page: its people, and the objectives it owns in the period with their score."""

    team: TeamRef
    people: int
    objectives: int
    score: Decimal | None
    band: goals_core.Band | None


async def team_summaries(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, user: CurrentUser
) -> tuple[GoalsOverview, tuple[TeamSummary, ...]]:
    """Every team with its active people and its objectives' weighted score (joint ones count for each
    of their teams), from one goals overview of the period."""
    overview = await goals.goals_overview(session, settings=settings, quarter=quarter, user=user)
    counts = dict(
        (
            await session.execute(
                select(Person.team_id, func.count())
                .where(Person.is_active.is_(True))
                .group_by(Person.team_id)
            )
        ).all()
    )
    found = []
    for team in await goals.teams(session):
        owned = [o for o in overview.objectives if team.id in o.team_ids]
        scored = [(o.score, o.weight) for o in owned if o.score is not None]
        score = goals_core.objective_score(scored) if scored else None
        band = goals_core.band(score) if score is not None else None
        found.append(TeamSummary(team, int(counts.get(team.id, 0)), len(owned), score, band))
    return overview, tuple(found)
