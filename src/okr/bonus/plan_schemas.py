"""Bonus plan request and response shapes: the editor's form as typed, and the JSON API's bodies and answers.

Rates, shares, scores and multipliers are decimals (0.03 for 3 %; a trailing `%` is read as percent in
the form). Money (pool cap, per-person cap) is typed and answered in major units of the organisation's
currency and stored in minor units. A value that cannot be read comes back beside its field, never as a
server error.
"""

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from litestar.datastructures import FormMultiDict

from okr.bonus import core
from okr.bonus.plans import PlanFields, PlanVersion, TeamFields, fields_of, plan_problems
from okr.goals.core import DEFAULT_KR_CAP
from okr.lib.errors import ValidationFailed
from okr.lib.money import MoneyError, decimals, parse_decimal, to_major, to_minor

API = "/api/v1/bonus/plans"
CAP_KINDS = ("none", "amount", "multiple")
_INT = re.compile(r"-?\d{1,6}")
_MAX_ROWS = 50


# -- reading typed numbers -----------------------------------------------------------------------------


def read_decimal(text: str) -> Decimal | None:
    """A typed decimal (`1,250.5`, `0.03`, `3 %` as 0.03); None when it is not one."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    percent = cleaned.endswith("%")
    if percent:
        cleaned = cleaned[:-1]
    try:
        value = parse_decimal(cleaned)
    except MoneyError:
        return None
    return value / 100 if percent else value


def read_money(text: str, currency: str) -> int | None:
    """Typed major units (`250,000.00`) as minor units; None when it is not an amount of `currency`."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    try:
        return to_minor(cleaned, currency)
    except MoneyError:
        return None


def money_text(minor: int | None, currency: str) -> str:
    """Minor units as the form shows them (`250000.00`); empty for none."""
    return "" if minor is None else str(to_major(minor, currency))


# -- the editor form -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class CurveRow:
    """A gate-curve point as typed."""

    score: str = ""
    multiplier: str = ""


@dataclass(slots=True)
class TeamRow:
    """A team's share and rule as typed."""

    name: str = ""
    share: str = ""
    rule: str = core.AllocationRule.BY_CREDIT


@dataclass(slots=True)
class PlanForm:
    """The plan editor as typed, and each field's error (keys as `okr.bonus.core.plan_problems` names them,
    plus `gate_curve[i]` and `teams[i].share` for a row that cannot be read)."""

    funding_rate: str = ""
    pipeline_rate: str = ""
    pool_cap: str = ""
    kr_cap: str = "1.5"
    curve: list[CurveRow] = field(default_factory=list)
    teams: list[TeamRow] = field(default_factory=list)
    model: str = "w_shaped"
    scope: str = "revenue"
    count_overlay: bool = False
    cap_kind: str = "none"
    cap_amount: str = ""
    cap_multiple: str = ""
    prorate: bool = True
    leftover_policy: str = core.LeftoverPolicy.CARRY_FORWARD
    clawback_days: str = "90"
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, fields: PlanFields, currency: str) -> "PlanForm":
        """The form filled with a plan's fields."""
        cap_kind = "none"
        if fields.cap_amount is not None:
            cap_kind = "amount"
        elif fields.cap_multiple is not None:
            cap_kind = "multiple"
        return cls(
            funding_rate=str(fields.funding_rate),
            pipeline_rate="" if not fields.pipeline_rate else str(fields.pipeline_rate),
            pool_cap=money_text(fields.pool_cap, currency),
            kr_cap=str(fields.kr_cap),
            curve=[CurveRow(str(s), str(m)) for s, m in fields.gate_curve],
            teams=[TeamRow(t.team, str(t.share), t.rule) for t in fields.teams],
            model=fields.model,
            scope=fields.scope,
            count_overlay=fields.count_overlay,
            cap_kind=cap_kind,
            cap_amount=money_text(fields.cap_amount, currency),
            cap_multiple="" if fields.cap_multiple is None else str(fields.cap_multiple),
            prorate=fields.prorate,
            leftover_policy=fields.leftover_policy,
            clawback_days=str(fields.clawback_days),
            note=fields.note,
        )

    def apply(self, action: str) -> bool:
        """Add or remove a curve point or a team row (`add_point`, `remove_point:2`, `add_team`,
        `remove_team:0`); False when `action` is none of them."""
        name, _, index = action.partition(":")
        if name == "add_point" and len(self.curve) < _MAX_ROWS:
            self.curve.append(CurveRow())
        elif name == "add_team" and len(self.teams) < _MAX_ROWS:
            self.teams.append(TeamRow())
        elif name in ("remove_point", "remove_team") and index.isdigit():
            rows: list[Any] = self.curve if name == "remove_point" else self.teams
            if int(index) < len(rows):
                del rows[int(index)]
        else:
            return False
        return True


def _text(data: FormMultiDict, name: str) -> str:
    return str(data.get(name, "") or "")


def _texts(data: FormMultiDict, name: str) -> list[str]:
    return [str(v) for v in data.getall(name, [])][:_MAX_ROWS]


def _checked(data: FormMultiDict, name: str) -> bool:
    return _text(data, name) in ("1", "on", "true", "yes")


def read_plan_form(data: FormMultiDict) -> PlanForm:
    """The submitted editor as typed (rows kept as they are, blank ones too)."""
    scores, mults = _texts(data, "curve_score"), _texts(data, "curve_multiplier")
    names, shares, rules = _texts(data, "team_name"), _texts(data, "team_share"), _texts(data, "team_rule")
    curve = [
        CurveRow(scores[i].strip() if i < len(scores) else "", mults[i].strip() if i < len(mults) else "")
        for i in range(max(len(scores), len(mults)))
    ]
    teams = [
        TeamRow(
            names[i].strip() if i < len(names) else "",
            shares[i].strip() if i < len(shares) else "",
            rules[i] if i < len(rules) else core.AllocationRule.BY_CREDIT,
        )
        for i in range(max(len(names), len(shares)))
    ]
    return PlanForm(
        funding_rate=_text(data, "funding_rate").strip(),
        pipeline_rate=_text(data, "pipeline_rate").strip(),
        pool_cap=_text(data, "pool_cap").strip(),
        kr_cap=_text(data, "kr_cap").strip(),
        curve=curve,
        teams=teams,
        model=_text(data, "model"),
        scope=_text(data, "scope"),
        count_overlay=_checked(data, "count_overlay"),
        cap_kind=_text(data, "cap_kind") or "none",
        cap_amount=_text(data, "cap_amount").strip(),
        cap_multiple=_text(data, "cap_multiple").strip(),
        prorate=_checked(data, "prorate"),
        leftover_policy=_text(data, "leftover_policy"),
        clawback_days=_text(data, "clawback_days").strip(),
        note=_text(data, "note"),
    )


RATE_HINT = "Enter a decimal number such as 0.03 (or 3 %)."


def _curve(form: PlanForm) -> tuple[list[tuple[Decimal, Decimal]], bool]:
    """The curve points that can be read, and whether every non-blank row could be."""
    points: list[tuple[Decimal, Decimal]] = []
    ok = True
    for i, row in enumerate(form.curve):
        score, mult = read_decimal(row.score), read_decimal(row.multiplier)
        if not row.score and not row.multiplier:
            continue
        if score is None or mult is None:
            form.errors.setdefault(
                f"gate_curve[{i}]", "Give the point a joint score and a multiplier, such as 0.5 and 1.0."
            )
            ok = False
            continue
        points.append((score, mult))
    return points, ok


def check_plan_form(form: PlanForm, currency: str) -> PlanFields | None:
    """The plan's fields when every value can be read and the plan is valid; else None, with each field's
    error on `form.errors`. Blank curve and team rows are dropped first (so the errors' row numbers match
    the rows shown again)."""
    form.errors.clear()
    form.curve = [r for r in form.curve if r.score or r.multiplier]
    form.teams = [r for r in form.teams if r.name or r.share]
    errors = form.errors
    numbers: dict[str, Decimal | None] = {}
    for name in ("funding_rate", "kr_cap"):
        numbers[name] = read_decimal(getattr(form, name))
        if numbers[name] is None:
            errors[name] = RATE_HINT if name == "funding_rate" else "Enter a number such as 1.5 (150 %)."
    pipeline = Decimal(0) if not form.pipeline_rate else read_decimal(form.pipeline_rate)
    if pipeline is None:
        errors["pipeline_rate"] = RATE_HINT + " Leave it empty for no pipeline funding."
    pool_cap = None
    if form.pool_cap:
        pool_cap = read_money(form.pool_cap, currency)
        if pool_cap is None:
            errors["pool_cap"] = (
                f"Enter an amount in {currency} such as 250000 (at most {decimals(currency)} decimals), "
                "or leave it empty for no cap."
            )
    curve, curve_ok = _curve(form)
    teams: list[TeamFields] = []
    teams_ok = True
    for i, row in enumerate(form.teams):
        share = read_decimal(row.share)
        if share is None:
            errors[f"teams[{i}].share"] = "Enter the share as a decimal number (0.6 for 60 %)."
            teams_ok = False
            continue
        teams.append(TeamFields(row.name, share, row.rule))
    cap_amount: int | None = None
    cap_multiple: Decimal | None = None
    if form.cap_kind == "amount":
        cap_amount = read_money(form.cap_amount, currency)
        if cap_amount is None:
            errors["person_cap"] = f"Enter the cap as an amount in {currency}, such as 20000."
    elif form.cap_kind == "multiple":
        cap_multiple = read_decimal(form.cap_multiple)
        if cap_multiple is None:
            errors["person_cap"] = "Enter the cap as a multiple of the target bonus, such as 2."
    elif form.cap_kind != "none":
        errors["person_cap"] = "Choose no cap, an amount or a multiple of the target bonus."
    clawback = int(form.clawback_days) if _INT.fullmatch(form.clawback_days) else None
    if clawback is None:
        errors["clawback_days"] = "Enter a whole number of days, such as 90 (0 for no clawback)."
    fields = PlanFields(
        funding_rate=numbers["funding_rate"] if numbers["funding_rate"] is not None else Decimal(0),
        gate_curve=tuple(curve),
        teams=tuple(teams),
        pipeline_rate=pipeline if pipeline is not None else Decimal(0),
        pool_cap=pool_cap,
        kr_cap=numbers["kr_cap"] if numbers["kr_cap"] is not None else DEFAULT_KR_CAP,
        model=form.model,
        scope=form.scope,
        count_overlay=form.count_overlay,
        cap_amount=cap_amount,
        cap_multiple=cap_multiple,
        prorate=form.prorate,
        leftover_policy=form.leftover_policy,
        clawback_days=clawback if clawback is not None else 0,
        note=form.note,
    )
    # What could be read is checked too, so every field's problem shows at once; a whole-list problem
    # is left out while a row of that list cannot be read (it would be about the wrong list).
    for name, message in plan_problems(fields).items():
        if (name == "gate_curve" and not curve_ok) or (name == "teams" and not teams_ok):
            continue
        errors.setdefault(name, message)
    return None if errors else fields


def preview_curve(form: PlanForm) -> tuple[list[tuple[Decimal, Decimal]], str | None]:
    """The curve the form's rows describe (blank rows skipped), or why it cannot be drawn."""
    scratch = PlanForm(curve=list(form.curve))
    curve, ok = _curve(scratch)
    if not ok:
        return [], "Some points are not numbers yet: give each a joint score and a multiplier."
    problem = core.plan_problems(
        core.Plan(funding_rate=Decimal(0), gate_curve=tuple(curve), teams=(core.TeamPlan("x", Decimal(1)),))
    ).get("gate_curve")
    return curve, problem


# -- API bodies ----------------------------------------------------------------------------------------------


class TeamBody(msgspec.Struct, forbid_unknown_fields=True):
    """A team's share of the pool (decimal, the shares sum to 1) and its allocation rule."""

    team: str
    share: Decimal
    rule: str = core.AllocationRule.BY_CREDIT


class PlanCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new draft version of a period's plan. Money (`pool_cap`, `cap_amount`) in major units of the
    organisation's currency; null for none. At most one of `cap_amount` and `cap_multiple`."""

    period: str
    funding_rate: Decimal
    gate_curve: list[tuple[Decimal, Decimal]]
    teams: list[TeamBody]
    pipeline_rate: Decimal = Decimal(0)
    pool_cap: Decimal | None = None
    kr_cap: Decimal = DEFAULT_KR_CAP
    model: str = "w_shaped"
    scope: str = "revenue"
    count_overlay: bool = False
    cap_amount: Decimal | None = None
    cap_multiple: Decimal | None = None
    prorate: bool = True
    leftover_policy: str = core.LeftoverPolicy.CARRY_FORWARD
    clawback_days: int = 90
    note: str = ""

    def fields(self, currency: str) -> PlanFields:
        """The service's fields; ValidationFailed when an amount has more decimals than the currency."""
        minor: dict[str, int | None] = {}
        problems: dict[str, str] = {}
        for name in ("pool_cap", "cap_amount"):
            value = getattr(self, name)
            try:
                minor[name] = None if value is None else to_minor(value, currency)
            except MoneyError:
                problems["person_cap" if name == "cap_amount" else name] = (
                    f"An amount in {currency} has at most {decimals(currency)} decimals."
                )
        if problems:
            raise ValidationFailed(
                "The bonus plan was not saved: correct " + ", ".join(problems) + ".",
                errors=[{"field": k, "message": v} for k, v in problems.items()],
            )
        return PlanFields(
            funding_rate=self.funding_rate,
            gate_curve=tuple((s, m) for s, m in self.gate_curve),
            teams=tuple(TeamFields(t.team, t.share, t.rule) for t in self.teams),
            pipeline_rate=self.pipeline_rate,
            pool_cap=minor["pool_cap"],
            kr_cap=self.kr_cap,
            model=self.model,
            scope=self.scope,
            count_overlay=self.count_overlay,
            cap_amount=minor["cap_amount"],
            cap_multiple=self.cap_multiple,
            prorate=self.prorate,
            leftover_policy=self.leftover_policy,
            clawback_days=self.clawback_days,
            note=self.note,
        )


# -- API answers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamRead:
    """A team's share and allocation rule."""

    team: str
    share: Decimal
    rule: str


@dataclass(frozen=True, slots=True)
class PlanRead:
    """One version of a period's bonus plan. Money in major units of `currency` (null: none)."""

    id: int
    period: str
    version: int
    status: str
    currency: str
    funding_rate: Decimal
    pipeline_rate: Decimal
    pool_cap: Decimal | None
    kr_cap: Decimal
    gate_curve: list[tuple[Decimal, Decimal]]
    teams: list[TeamRead]
    model: str
    scope: str
    count_overlay: bool
    cap_amount: Decimal | None
    cap_multiple: Decimal | None
    prorate: bool
    leftover_policy: str
    clawback_days: int
    note: str
    created_at: dt.datetime
    created_by: str | None
    approved_at: dt.datetime | None
    approved_by: str | None
    url: str

    @classmethod
    def of(cls, v: PlanVersion, period: str, currency: str) -> "PlanRead":
        """From a stored version."""
        p, f = v.plan, fields_of(v.plan)
        return cls(
            id=p.id,
            period=period,
            version=p.version,
            status=p.status,
            currency=currency,
            funding_rate=f.funding_rate,
            pipeline_rate=f.pipeline_rate,
            pool_cap=None if f.pool_cap is None else to_major(f.pool_cap, currency),
            kr_cap=f.kr_cap,
            gate_curve=list(f.gate_curve),
            teams=[TeamRead(t.team, t.share, t.rule) for t in f.teams],
            model=f.model,
            scope=f.scope,
            count_overlay=f.count_overlay,
            cap_amount=None if f.cap_amount is None else to_major(f.cap_amount, currency),
            cap_multiple=f.cap_multiple,
            prorate=f.prorate,
            leftover_policy=f.leftover_policy,
            clawback_days=f.clawback_days,
            note=f.note,
            created_at=p.created_at,
            created_by=v.created_by,
            approved_at=p.approved_at,
            approved_by=v.approved_by,
            url=f"{API}/{p.id}",
        )


@dataclass(frozen=True, slots=True)
class PlanListRead:
    """A period's plan versions, newest first, and the one in force (`approved_version`, null: none)."""

    period: str
    approved_version: int | None
    versions: list[PlanRead]

    @classmethod
    def of(cls, period: str, versions: Sequence[PlanVersion], currency: str) -> "PlanListRead":
        """From the stored versions."""
        approved = next((v.plan.version for v in versions if v.plan.status == "approved"), None)
        return cls(period, approved, [PlanRead.of(v, period, currency) for v in versions])


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """A refused request (RFC 9457 problem): `errors` names each bad field and why."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)
