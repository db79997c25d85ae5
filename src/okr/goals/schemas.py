"""Goals request and response shapes: the JSON API's bodies and answers, and the page forms as typed.

API numbers: a KR's values are in its unit (currency in major units of the organisation's currency,
percent in percentage points), as decimal strings; attainment, progress, pace and scores are ratios
(1 = 100 %) to six places.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from okr.goals.services import (
    CheckInView,
    GoalsOverview,
    KeyResultDetail,
    KeyResultFields,
    KeyResultView,
    ObjectiveFields,
    ObjectiveView,
    PersonRef,
    RollForwardResult,
    TeamRef,
)
from okr.kpis.core import KpiFilters
from okr.kpis.schemas import records_url

API = "/api/v1/goals"
_PLACES = Decimal("0.000001")


def ratio(value: Decimal | None) -> Decimal | None:
    """A ratio to six places (half up)."""
    return None if value is None else value.quantize(_PLACES, rounding=ROUND_HALF_UP)


# -- API bodies --------------------------------------------------------------------------------------------


class FiltersBody(msgspec.Struct, forbid_unknown_fields=True):
    """What narrows a metric KR's KPI (null: any): team, person and campaign ids, channel, segment."""

    team: int | None = None
    person: int | None = None
    campaign: int | None = None
    channel: str | None = None
    segment: str | None = None

    def kpi_filters(self) -> KpiFilters:
        """As the KPI library's filters."""
        return KpiFilters(
            team_id=self.team,
            person_id=self.person,
            campaign_id=self.campaign,
            channel=self.channel or None,
            segment=self.segment or None,
        )


class ObjectiveCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new objective in a period; a joint objective names several owning teams."""

    period: str
    title: str
    team_ids: list[int]
    description: str = ""
    owner_id: int | None = None
    weight: Decimal = Decimal(1)

    def fields(self) -> ObjectiveFields:
        """The service's fields."""
        return ObjectiveFields(
            title=self.title,
            description=self.description,
            team_ids=tuple(self.team_ids),
            owner_id=self.owner_id,
            weight=self.weight,
        )


class ObjectivePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to an objective: `version` is the one you read (409 when someone changed it since); fields
    left out stay as they are."""

    version: int
    title: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    team_ids: list[int] | UnsetType = UNSET
    owner_id: int | UnsetType | None = UNSET
    weight: Decimal | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields sent, as the service names them."""
        found: dict[str, Any] = {}
        for name in ("title", "description", "team_ids", "owner_id", "weight"):
            value = getattr(self, name)
            if value is not UNSET:
                found[name] = tuple(value) if name == "team_ids" else value
        return found


class ArchiveBody(msgspec.Struct, forbid_unknown_fields=True):
    """Archive: give the `version` you read to be refused (409) when someone changed it since."""

    version: int | None = None


class KeyResultCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new KR of an objective: a metric (a KPI of the library, with filters) or manual (check-ins).

    A metric KR's unit is its KPI's (left out: taken from the KPI); a manual KR needs one.
    """

    objective_id: int
    title: str
    kind: str
    start_value: Decimal
    target: Decimal
    unit: str | None = None
    stretch: Decimal | None = None
    weight: Decimal = Decimal(1)
    owner_ids: list[int] = msgspec.field(default_factory=list)
    counts_toward_bonus: bool = False
    source: str = "manual"
    metric: str | None = None
    filters: FiltersBody | None = None

    def fields(self) -> KeyResultFields:
        """The service's fields."""
        return KeyResultFields(
            title=self.title,
            kind=self.kind,
            unit=self.unit or "",
            start_value=self.start_value,
            target=self.target,
            stretch=self.stretch,
            weight=self.weight,
            owner_ids=tuple(self.owner_ids),
            counts_toward_bonus=self.counts_toward_bonus,
            source=self.source,
            metric=self.metric,
            filters=self.filters.kpi_filters() if self.filters else KpiFilters(),
        )


class KeyResultPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a KR: `version` is the one you read (409 when someone changed it since); fields left out
    stay as they are; `filters` replaces all filters."""

    version: int
    title: str | UnsetType = UNSET
    kind: str | UnsetType = UNSET
    unit: str | UnsetType = UNSET
    start_value: Decimal | UnsetType = UNSET
    target: Decimal | UnsetType = UNSET
    stretch: Decimal | UnsetType | None = UNSET
    weight: Decimal | UnsetType = UNSET
    owner_ids: list[int] | UnsetType = UNSET
    counts_toward_bonus: bool | UnsetType = UNSET
    source: str | UnsetType = UNSET
    metric: str | UnsetType | None = UNSET
    filters: FiltersBody | UnsetType | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields sent, as the service names them."""
        found: dict[str, Any] = {}
        for name in (
            "title", "kind", "unit", "start_value", "target", "stretch", "weight", "owner_ids",
            "counts_toward_bonus", "source", "metric", "filters",
        ):  # fmt: skip
            value = getattr(self, name)
            if value is UNSET:
                continue
            if name == "owner_ids":
                value = tuple(value)
            elif name == "filters":
                value = value.kpi_filters() if value is not None else KpiFilters()
            found[name] = value
        return found


class CheckInCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A check-in: the current value (manual KRs only), your confidence and a note."""

    confidence: Literal["on_track", "at_risk", "off_track"]
    value: Decimal | None = None
    note: str = ""


class RollForwardBody(msgspec.Struct, forbid_unknown_fields=True):
    """Roll `period`'s objectives and KRs forward into the next period."""

    period: str


# -- API answers -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefRead:
    """A team or person by id and name."""

    id: int
    name: str

    @classmethod
    def of(cls, ref: TeamRef | PersonRef) -> "RefRead":
        """From the service's reference."""
        return cls(ref.id, ref.name)


@dataclass(frozen=True, slots=True)
class CheckInRead:
    """A check-in: value (manual KRs), confidence, note, author, time."""

    id: int
    key_result_id: int
    value: Decimal | None
    confidence: str
    note: str
    author: RefRead | None
    created_at: dt.datetime

    @classmethod
    def of(cls, c: CheckInView) -> "CheckInRead":
        """From the service's view."""
        author = None if c.author is None else RefRead.of(c.author)
        return cls(c.id, c.key_result_id, c.value, c.confidence, c.note, author, c.created_at)


@dataclass(frozen=True, slots=True)
class FiltersRead:
    """The filters of a metric KR (null: any)."""

    team: int | None
    person: int | None
    campaign: int | None
    channel: str | None
    segment: str | None

    @classmethod
    def of(cls, f: KpiFilters) -> "FiltersRead":
        """From the KPI filters."""
        return cls(f.team_id, f.person_id, f.campaign_id, f.channel, f.segment)


@dataclass(frozen=True, slots=True)
class KeyResultRead:
    """A key result with its value now and its scoring.

    `value` is the live KPI value (metric) or the last checked-in value (manual), in the KR's unit.
    `attainment` may exceed 1; `progress` is the bar (clamped to 1) and `overflow` what lies beyond;
    `expected` is where the value should be today; `pace` = actual / expected progress, and `status`
    on_track (from 0.95), lagging (from 0.75) or at_risk; null where there is none yet.
    `sandbagged`: the target asks no more than the trailing two-quarter actual (`trailing_actual`).
    """

    id: int
    objective_id: int
    period: str
    title: str
    kind: str
    unit: str
    start_value: Decimal
    target: Decimal
    stretch: Decimal | None
    weight: Decimal
    owners: list[RefRead]
    counts_toward_bonus: bool
    source: str
    metric: str | None
    filters: FiltersRead | None
    position: int
    version: int
    archived_at: dt.datetime | None
    value: Decimal | None
    attainment: Decimal | None
    progress: Decimal | None
    overflow: Decimal | None
    expected: Decimal | None
    pace: Decimal | None
    status: str | None
    sandbagged: bool
    trailing_actual: Decimal | None
    last_check_in: CheckInRead | None
    records_url: str | None
    url: str
    problem: str | None

    @classmethod
    def of(cls, kr: KeyResultView) -> "KeyResultRead":
        """From the service's view."""
        metric = kr.source == "metric" and kr.metric is not None
        return cls(
            id=kr.id,
            objective_id=kr.objective_id,
            period=kr.period,
            title=kr.title,
            kind=kr.kind,
            unit=kr.unit,
            start_value=kr.start_value,
            target=kr.target,
            stretch=kr.stretch,
            weight=kr.weight,
            owners=[RefRead.of(p) for p in kr.owners],
            counts_toward_bonus=kr.counts_toward_bonus,
            source=kr.source,
            metric=kr.metric,
            filters=FiltersRead.of(kr.filters) if metric else None,
            position=kr.position,
            version=kr.version,
            archived_at=kr.archived_at,
            value=kr.value,
            attainment=ratio(kr.attainment),
            progress=ratio(kr.fill),
            overflow=ratio(kr.overflow),
            expected=kr.expected.quantize(_PLACES, rounding=ROUND_HALF_UP)
            if kr.expected is not None
            else None,
            pace=ratio(kr.pace),
            status=None if kr.status is None else kr.status.value,
            sandbagged=kr.sandbagged,
            trailing_actual=kr.trailing_actual,
            last_check_in=None if kr.last_check_in is None else CheckInRead.of(kr.last_check_in),
            records_url=records_url(kr.metric, kr.period, kr.filters) if metric and kr.metric else None,
            url=f"{API}/key-results/{kr.id}",
            problem=kr.problem,
        )


@dataclass(frozen=True, slots=True)
class ObjectiveRead:
    """An objective with its KRs; `score` is the weighted mean of their attainment, each capped at 1, and
    `band` red (below 0.4), yellow (below 0.7) or green."""

    id: int
    period: str
    title: str
    description: str
    teams: list[RefRead]
    joint: bool
    owner: RefRead | None
    weight: Decimal
    position: int
    version: int
    archived_at: dt.datetime | None
    rolled_from_id: int | None
    score: Decimal | None
    band: str | None
    key_results: list[KeyResultRead]
    url: str

    @classmethod
    def of(cls, o: ObjectiveView) -> "ObjectiveRead":
        """From the service's view."""
        return cls(
            id=o.id,
            period=o.period,
            title=o.title,
            description=o.description,
            teams=[RefRead.of(t) for t in o.teams],
            joint=o.joint,
            owner=None if o.owner is None else RefRead.of(o.owner),
            weight=o.weight,
            position=o.position,
            version=o.version,
            archived_at=o.archived_at,
            rolled_from_id=o.rolled_from_id,
            score=ratio(o.score),
            band=None if o.band is None else o.band.value,
            key_results=[KeyResultRead.of(kr) for kr in o.key_results],
            url=f"{API}/objectives/{o.id}",
        )


@dataclass(frozen=True, slots=True)
class ObjectiveListRead:
    """A period's objectives in their order, and its overall score (objective weights)."""

    period: str
    state: str
    period_start: dt.date
    period_end: dt.date
    score: Decimal | None
    band: str | None
    objectives: list[ObjectiveRead]

    @classmethod
    def of(cls, overview: GoalsOverview) -> "ObjectiveListRead":
        """From the service's overview."""
        w = overview.window
        return cls(
            period=w.key,
            state=w.state,
            period_start=w.first_day,
            period_end=w.last_day,
            score=ratio(overview.score),
            band=None if overview.band is None else overview.band.value,
            objectives=[ObjectiveRead.of(o) for o in overview.objectives],
        )


@dataclass(frozen=True, slots=True)
class PointRead:
    """A KR's value at a moment."""

    at: dt.datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class ProgressRead:
    """A KR's progress: its scoring now, its value through the period, and its forecasts at period end.

    `linear_forecast` extends the least-squares trend of the history; `opportunity_forecast` (revenue
    KRs while the period runs) is revenue won + commit + probability x best case of the open deals.
    """

    key_result: KeyResultRead
    period_start: dt.date
    period_end: dt.date
    elapsed: Decimal
    history: list[PointRead]
    linear_forecast: Decimal | None
    opportunity_forecast: Decimal | None
    chart_text: str

    @classmethod
    def of(cls, d: KeyResultDetail) -> "ProgressRead":
        """From the service's detail."""
        w = d.overview.window
        return cls(
            key_result=KeyResultRead.of(d.key_result),
            period_start=w.first_day,
            period_end=w.last_day,
            elapsed=ratio(w.share(d.overview.now)) or Decimal(0),
            history=[PointRead(p.at, p.value) for p in d.history],
            linear_forecast=None if d.linear_forecast is None else d.linear_forecast.quantize(_PLACES),
            opportunity_forecast=d.opportunity_forecast,
            chart_text=d.chart.text,
        )


@dataclass(frozen=True, slots=True)
class NotCopiedRead:
    """A KR roll forward left out, and why."""

    objective: str
    key_result: str
    problems: dict[str, str]


@dataclass(frozen=True, slots=True)
class RollForwardRead:
    """What a roll forward copied."""

    source: str
    target: str
    objective_ids: list[int]
    key_results: int
    already_copied: list[str]
    not_copied: list[NotCopiedRead]
    message: str

    @classmethod
    def of(cls, r: RollForwardResult) -> "RollForwardRead":
        """From the service's result."""
        return cls(
            source=r.source.key,
            target=r.target.key,
            objective_ids=list(r.objective_ids),
            key_results=r.key_results,
            already_copied=list(r.already_copied),
            not_copied=[NotCopiedRead(x.objective, x.key_result, dict(x.problems)) for x in r.not_copied],
            message=r.message,
        )


@dataclass(frozen=True, slots=True)
class GoalsProblem:
    """A refused request (RFC 9457 problem): `errors` names each bad field and why."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)


# -- page forms (as typed, so a bad value comes back as typed) -----------------------------------------------


@dataclass(slots=True)
class ObjectiveForm:
    """The objective form as typed, and each field's error."""

    title: str = ""
    description: str = ""
    team_ids: list[str] = field(default_factory=list)
    owner_id: str = ""
    weight: str = "1"
    version: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, o: ObjectiveView) -> "ObjectiveForm":
        """The form filled with an objective's fields."""
        return cls(
            title=o.title,
            description=o.description,
            team_ids=[str(t) for t in o.team_ids],
            owner_id="" if o.owner is None else str(o.owner.id),
            weight=str(o.weight),
            version=str(o.version),
        )


FILTER_FIELDS = ("team", "person", "campaign", "channel", "segment")


@dataclass(slots=True)
class KeyResultForm:
    """The KR form as typed, and each field's error."""

    title: str = ""
    kind: str = "increase_to"
    unit: str = "count"
    source: str = "manual"
    metric: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    start_value: str = "0"
    target: str = ""
    stretch: str = ""
    weight: str = "1"
    owner_ids: list[str] = field(default_factory=list)
    counts_toward_bonus: bool = False
    version: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, kr: KeyResultView) -> "KeyResultForm":
        """The form filled with a KR's fields."""
        params = kr.filters.params
        return cls(
            title=kr.title,
            kind=kr.kind,
            unit=kr.unit,
            source=kr.source,
            metric=kr.metric or "",
            filters={k: "" if v is None else str(v) for k, v in params.items()},
            start_value=str(kr.start_value),
            target=str(kr.target),
            stretch="" if kr.stretch is None else str(kr.stretch),
            weight=str(kr.weight),
            owner_ids=[str(p.id) for p in kr.owners],
            counts_toward_bonus=kr.counts_toward_bonus,
            version=str(kr.version),
        )


@dataclass(slots=True)
class CheckInForm:
    """An inline check-in form as typed, its errors, and a notice once saved."""

    key_result_id: int
    value: str = ""
    confidence: str = "on_track"
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
