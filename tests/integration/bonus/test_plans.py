"""The bonus plan editor on both databases: versions and their history, approval, refused plans with each
field's reason, closed periods; the pages by role (read-only, save, approve, 403), the gate-curve SVG with
the joint score; the JSON API with tokens and problem bodies.

The clock is pinned to 2026-08-15 (New York): 2026-Q3 is under way, 2026-Q2 is closed, 2026-Q4 ahead.
"""

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login
from tests.integration.goals.goals_data import NOW, Q2, Q3, Q4, Cast, cast, check_in, objective

from okr.auth.schemas import CurrentUser
from okr.auth.services import create_token
from okr.bonus import core, plans
from okr.db.audit import AuditEvent
from okr.db.bonus import BonusPlan
from okr.goals import services as goals
from okr.kpis import services as kpis
from okr.lib.clock import set_clock
from okr.lib.errors import Conflict, NotFound, ValidationFailed
from okr.settings import Settings

D = Decimal
Client = AsyncTestClient[Litestar]
API = "/api/v1/bonus/plans"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-08-15 in New York."""
    set_clock(lambda: NOW)
    kpis.clear_cache()
    goals.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    goals.clear_cache()


def fields(**changes: Any) -> plans.PlanFields:
    """A valid plan, with `changes`."""
    base = plans.PlanFields(
        funding_rate=D("0.03"),
        gate_curve=plans.DEFAULT_CURVE,
        teams=(plans.TeamFields("sales", D("0.6")), plans.TeamFields("marketing", D("0.4"), "equal")),
        pool_cap=5_000_000,
        cap_multiple=D("2"),
    )
    values = {f: getattr(base, f) for f in base.__dataclass_fields__}
    values.update(changes)
    return plans.PlanFields(**values)


async def period(db: AsyncSession, settings: Settings, quarter: Any = Q3) -> Any:
    found = await plans.period_of(db, settings=settings, quarter=quarter, create=True)
    assert found is not None
    return found


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def token(db: AsyncSession, who: CurrentUser, *scopes: str) -> dict[str, str]:
    _, plaintext = await create_token(db, person_id=who.id, name="plan-sync", scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


async def bonus_kr(db: AsyncSession, settings: Settings, c: Cast, value: str) -> None:
    """A manual KR counting toward the bonus, checked in at `value` of 100: the joint score is value/100."""
    oid = await objective(db, settings, c.sales_lead, "Grow together", (c.sales, c.marketing))
    kr = await goals.create_key_result(
        db,
        settings=settings,
        user=c.sales_lead,
        objective_id=oid,
        fields=goals.KeyResultFields(
            title="Bookings",
            kind="increase_to",
            unit="count",
            start_value=D(0),
            target=D(100),
            counts_toward_bonus=True,
        ),
    )
    await db.commit()
    await check_in(db, settings, c.sales_lead, kr.id, value)


# -- services ----------------------------------------------------------------------------------------------


async def test_versions_are_kept_and_approval_supersedes(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    p = await period(db, settings)
    first = await plans.save_plan(db, period=p, fields=fields(), user=c.sales_lead)
    second = await plans.save_plan(db, period=p, fields=fields(funding_rate=D("0.04")), user=c.marketing_lead)
    await db.commit()
    assert (first.version, second.version) == (1, 2)
    assert (first.status, second.status) == ("draft", "draft")
    assert await plans.approved_plan(db, period_id=p.id) is None
    assert (await plans.latest_plan(db, period_id=p.id)) is second
    # Stored as text, read back exactly.
    assert second.gate_curve == [["0.5", "0"], ["0.5", "0.5"], ["1.0", "1.0"], ["1.5", "2.0"]]
    assert second.teams[1] == {"team": "marketing", "share": "0.4", "rule": "equal"}

    await plans.approve_plan(db, plan_id=first.id, user=c.admin)
    await db.commit()
    assert (await plans.approved_plan(db, period_id=p.id)) is first
    await plans.approve_plan(db, plan_id=second.id, user=c.admin)
    await db.commit()
    versions = await plans.plan_versions(db, p.id)
    assert [(v.plan.version, v.plan.status) for v in versions] == [(2, "approved"), (1, "superseded")]
    assert [v.created_by for v in versions] == ["Vp.Marketing", "Vp.Sales"]
    assert versions[0].approved_by == "Admin" and versions[0].plan.approved_at is not None
    assert (await plans.approved_plan(db, period_id=p.id)) is second

    # A version already approved or superseded cannot be approved again.
    with pytest.raises(Conflict, match="only a draft"):
        await plans.approve_plan(db, plan_id=first.id, user=c.admin)
    await db.rollback()
    p = await period(db, settings)
    # A draft older than the approved version is refused too.
    third = await plans.save_plan(db, period=p, fields=fields(), user=c.sales_lead)
    fourth = await plans.save_plan(db, period=p, fields=fields(), user=c.sales_lead)
    await plans.approve_plan(db, plan_id=fourth.id, user=c.admin)
    await db.commit()
    assert (third.version, fourth.version) == (3, 4)
    with pytest.raises(Conflict, match="newer than this draft"):
        await plans.approve_plan(db, plan_id=third.id, user=c.admin)
    actions = (await db.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert actions.count("bonus_plan.save") == 4 and actions.count("bonus_plan.approve") == 3


async def test_to_core_carries_every_field(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    p = await period(db, settings)
    plan = await plans.save_plan(
        db, period=p, fields=fields(pipeline_rate=D("0.01"), clawback_days=30), user=c.admin
    )
    got = plans.to_core(plan)
    assert got.funding_rate == D("0.03") and got.pipeline_rate == D("0.01")
    assert got.gate_curve == plans.DEFAULT_CURVE
    assert got.teams == (core.TeamPlan("sales", D("0.6")), core.TeamPlan("marketing", D("0.4"), "equal"))
    assert got.person_cap == core.Cap(multiple=D("2")) and got.pool_cap == 5_000_000
    assert (got.clawback_days, got.leftover_policy, got.kr_cap) == (30, "carry_forward", D("1.5"))
    assert core.plan_problems(got) == {}
    absolute = await plans.save_plan(
        db, period=p, fields=fields(cap_multiple=None, cap_amount=2_000_00), user=c.admin
    )
    assert plans.to_core(absolute).person_cap == core.Cap(amount=2_000_00)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"teams": (plans.TeamFields("sales", D("0.6")), plans.TeamFields("marketing", D("0.3")))}, "teams",
         "add up to exactly 1"),
        ({"gate_curve": ((D("0.5"), D("1")), (D("1"), D("0.5")))}, "gate_curve", "cannot go down"),
        ({"funding_rate": D("-0.01")}, "funding_rate", "cannot be negative"),
        ({"pipeline_rate": D("-1")}, "pipeline_rate", "cannot be negative"),
        ({"cap_amount": 100, "cap_multiple": D(2)}, "person_cap", "either"),
        ({"model": "astrology"}, "model", "attribution model"),
        ({"funding_rate": D("0.00000000001")}, "funding_rate", "10 decimal places"),
    ],
)  # fmt: skip
async def test_invalid_plans_are_refused_with_the_fields_reason(
    db: AsyncSession, settings: Settings, changes: dict[str, Any], field: str, reason: str
) -> None:
    c = await cast(db)
    p = await period(db, settings)
    with pytest.raises(ValidationFailed) as refused:
        await plans.save_plan(db, period=p, fields=fields(**changes), user=c.sales_lead)
    errors = {e["field"]: e["message"] for e in refused.value.errors}
    assert field in errors and reason in errors[field], errors
    assert await plans.latest_plan(db, period_id=p.id) is None


async def test_roles_and_closed_periods(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    p = await period(db, settings)
    for who in (c.rep, c.finance):
        with pytest.raises(plans.PlanNotAllowed):
            await plans.save_plan(db, period=p, fields=fields(), user=who)
    draft = await plans.save_plan(db, period=p, fields=fields(), user=c.sales_lead)
    with pytest.raises(plans.PlanNotAllowed, match="admin"):
        await plans.approve_plan(db, plan_id=draft.id, user=c.sales_lead)
    with pytest.raises(NotFound):
        await plans.approve_plan(db, plan_id=draft.id + 999, user=c.admin)
    closed = await period(db, settings, Q2)
    assert closed.state == "closed"
    with pytest.raises(plans.PlanPeriodClosed) as refused:
        await plans.save_plan(db, period=closed, fields=fields(), user=c.admin)
    assert refused.value.status_code == 409 and "2026-Q2 is closed" in refused.value.detail
    old = BonusPlan(
        period_id=closed.id, version=1, status="draft", funding_rate=D("0.03"), kr_cap=D("1.5"),
        gate_curve=[["1", "1"]], teams=[{"team": "sales", "share": "1", "rule": "by_credit"}],
        model="linear", scope="revenue", leftover_policy="return", created_at=NOW,
    )  # fmt: skip
    db.add(old)
    await db.flush()
    with pytest.raises(plans.PlanPeriodClosed):
        await plans.approve_plan(db, plan_id=old.id, user=c.admin)


async def test_defaults_copy_the_previous_approved_plan(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    # No plan anywhere: the defaults, with sales 0.6 / marketing 0.4.
    q3 = await period(db, settings)
    d = await plans.default_fields(db, period=q3, settings=settings)
    assert (d.funding_rate, d.pipeline_rate, d.pool_cap, d.kr_cap) == (D("0.03"), D(0), None, D("1.5"))
    assert d.gate_curve == plans.DEFAULT_CURVE
    assert d.teams == (plans.TeamFields("sales", D("0.6")), plans.TeamFields("marketing", D("0.4")))
    assert (d.model, d.scope, d.leftover_policy, d.clawback_days, d.prorate) == (
        "w_shaped", "revenue", "carry_forward", 90, True,
    )  # fmt: skip
    assert plans.plan_problems(d) == {}
    # Q3 approved: Q4 starts from it (a draft of Q3 alone would not count).
    approved = await plans.save_plan(db, period=q3, fields=fields(funding_rate=D("0.05")), user=c.admin)
    await plans.approve_plan(db, plan_id=approved.id, user=c.admin)
    await plans.save_plan(db, period=q3, fields=fields(funding_rate=D("0.07")), user=c.admin)
    q4 = await period(db, settings, Q4)
    assert (await plans.default_fields(db, period=q4, settings=settings)).funding_rate == D("0.05")


def test_equal_shares_sum_to_exactly_one() -> None:
    for n in (1, 2, 3, 7, 101):
        shares = plans._equal_shares(n)
        assert len(shares) == n and sum(shares) == 1 and all(s > 0 for s in shares)


def test_the_gate_chart_draws_steps_and_the_marker() -> None:
    chart = plans.gate_chart(plans.DEFAULT_CURVE, D("0.75"))
    # From the origin flat to the first score, the step up as a vertical jump, flat after the last point.
    xs = [p.split(",") for p in chart.line.split()]
    assert xs[0][1] == xs[1][1] == f"{chart.bottom}.0"  # multiplier 0 below the first point
    assert xs[1][0] == xs[2][0] == xs[3][0]  # 0.5: 0 -> 0 -> 0.5 at one x
    assert xs[-1][1] == xs[-2][1] and xs[-1][0] == f"{chart.right}.0"  # flat to the right edge
    assert chart.steps == (D("0.5"),)
    assert chart.marker is not None and chart.marker.multiplier == D("0.75")
    assert chart.marker.label == "Joint score 0.75 → ×0.75"
    assert "steps up to ×0.5" in chart.text and "stays ×2" in chart.text
    assert [t.label for t in chart.x_ticks] == ["0", "0.5", "1", "1.5", "2"]
    empty = plans.gate_chart([], D(1))
    assert empty.problem and not empty.line


# -- pages -------------------------------------------------------------------------------------------------


def form_data(token_: str, **changes: Any) -> dict[str, Any]:
    """The editor's fields as a browser posts them."""
    values: dict[str, Any] = {
        "funding_rate": "0.03", "pipeline_rate": "", "pool_cap": "", "kr_cap": "1.5",
        "curve_score": ["0.5", "0.5", "1.0", "1.5"], "curve_multiplier": ["0", "0.5", "1.0", "2.0"],
        "team_name": ["sales", "marketing"], "team_share": ["0.6", "0.4"], "team_rule": ["by_credit", "equal"],
        "model": "w_shaped", "scope": "revenue", "cap_kind": "none", "cap_amount": "", "cap_multiple": "",
        "prorate": "1", "leftover_policy": "carry_forward", "clawback_days": "90", "note": "",
    }  # fmt: skip
    values.update(changes)
    return {"_csrf_token": token_, **values}


async def test_a_member_reads_the_plan_and_cannot_save(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c = await cast(db)
    await bonus_kr(db, settings, c, "80")
    p = await period(db, settings)
    plan = await plans.save_plan(db, period=p, fields=fields(), user=c.sales_lead)
    await plans.approve_plan(db, plan_id=plan.id, user=c.admin)
    await db.commit()
    for email in ("seller@example.com", "finance@example.com"):
        client.cookies.clear()
        await login(client, email)
        page = await client.get("/bonus/plan?period=2026-Q3")
        assert page.status_code == 200
        html = page.text
        assert "In force" in html and "Version 1" in html
        assert 'id="plan-editor"' not in html and "/approve" not in html
        assert "3.00 %" in html and "USD 50,000.00" in html and "2 × target bonus" in html
        # The curve with the joint score marked: 80 of 100 -> 0.8 -> ×0.8 on the default curve.
        assert "<svg" in html and 'class="marker"' in html and 'data-score="0.8"' in html
        assert "Joint score 0.8 → ×0.8" in html
        saved = await client.post("/bonus/plan?period=2026-Q3", data=form_data(await csrf_token(client)))
        assert saved.status_code == 403
        preview = await client.post(
            "/bonus/plan/preview?period=2026-Q3", data=form_data(await csrf_token(client))
        )
        assert preview.status_code == 403
    assert len(await plans.plan_versions(db, p.id)) == 1


async def test_a_leader_saves_and_an_admin_approves(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await cast(db)
    await login(client, "vp.sales@example.com")
    page = await client.get("/bonus/plan?period=2026-Q4")
    assert page.status_code == 200 and 'id="plan-editor"' in page.text and "No plan yet" in page.text
    assert 'value="0.03"' in page.text and 'value="marketing"' in page.text
    # Shares that do not add up to 1 come back beside the field, nothing saved.
    bad = await client.post(
        "/bonus/plan?period=2026-Q4",
        data=form_data(await csrf_token(client), team_share=["0.6", "0.5"], funding_rate="-1"),
    )
    assert bad.status_code == 422
    assert "The team shares must add up to exactly 1 (they add up to 1.1)." in bad.text
    assert "A rate cannot be negative." in bad.text and 'id="err-teams"' in bad.text
    assert 'value="0.5"' in bad.text  # the form comes back as typed
    # A value that is not a number is an error beside its field, never a 500.
    junk = await client.post(
        "/bonus/plan?period=2026-Q4",
        data=form_data(await csrf_token(client), pool_cap="lots", curve_score=["x", "0.5", "1.0", "1.5"]),
    )
    assert (
        junk.status_code == 422
        and "Enter an amount in USD" in junk.text
        and 'id="err-gate_curve-0"' in junk.text
    )
    ok = await client.post(
        "/bonus/plan?period=2026-Q4",
        data=form_data(await csrf_token(client), funding_rate="4 %", pool_cap="250,000", note="Richer"),
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/bonus/plan?period=2026-Q4&saved=1#versions"
    [v] = await plans.plan_versions(db, (await period(db, settings, Q4)).id)
    assert (v.plan.funding_rate, v.plan.pool_cap, v.plan.note, v.plan.status) == (
        D("0.04"),
        25_000_000,
        "Richer",
        "draft",
    )
    page = await client.get(ok.headers["location"])
    assert "Saved as version 1" in page.text and "waiting for approval" in page.text
    assert f"/bonus/plan/versions/{v.plan.id}/approve" not in page.text  # leaders do not approve
    denied = await client.post(
        f"/bonus/plan/versions/{v.plan.id}/approve", data={"_csrf_token": await csrf_token(client)}
    )
    assert denied.status_code == 403

    client.cookies.clear()
    await login(client, "admin@example.com")
    page = await client.get("/bonus/plan?period=2026-Q4")
    assert f"/bonus/plan/versions/{v.plan.id}/approve" in page.text
    approved = await client.post(
        f"/bonus/plan/versions/{v.plan.id}/approve",
        data={"_csrf_token": await csrf_token(client)},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    page = await client.get(approved.headers["location"])
    assert "Version 1 approved" in page.text and "In force" in page.text
    one = await client.get(f"/bonus/plan/versions/{v.plan.id}")
    assert one.status_code == 200 and "version 1" in one.text and "4.00 %" in one.text and "<svg" in one.text
    assert (await client.get("/bonus/plan/versions/999999")).status_code == 404


async def test_row_buttons_and_the_curve_preview(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await cast(db)
    await login(client, "vp.marketing@example.com")
    token_ = await csrf_token(client)
    hx = {"HX-Request": "true"}
    added = await client.post(
        "/bonus/plan/preview?period=2026-Q3", data=form_data(token_, action="add_point"), headers=hx
    )
    assert added.status_code == 200 and added.text.lstrip().startswith('<form id="plan-editor"')
    assert added.text.count('name="curve_score"') == 5
    removed = await client.post(
        "/bonus/plan/preview?period=2026-Q3", data=form_data(token_, action="remove_team:1"), headers=hx
    )
    assert removed.text.count('name="team_name"') == 1
    # A point changed: only the curve comes back, redrawn; a decreasing curve says why it cannot be drawn.
    curve = await client.post(
        "/bonus/plan/preview?period=2026-Q3",
        data=form_data(token_, curve_score=["1", "2"], curve_multiplier=["1", "3"]),
        headers=hx,
    )
    assert curve.text.lstrip().startswith('<figure id="gate-curve"') and "at 2, ×3" in curve.text
    down = await client.post(
        "/bonus/plan/preview?period=2026-Q3",
        data=form_data(token_, curve_score=["1", "2"], curve_multiplier=["3", "1"]),
        headers=hx,
    )
    assert "cannot be drawn" in down.text and "cannot go down" in down.text
    # Without JavaScript the same button posts the whole form: the page comes back changed, unsaved.
    plain = await client.post("/bonus/plan?period=2026-Q3", data=form_data(token_, action="add_team"))
    assert plain.status_code == 200 and plain.text.count('name="team_name"') == 3
    assert len(re.findall(r"Version \d+</a>", plain.text)) == 0


async def test_a_closed_period_is_read_only_on_the_page(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await cast(db)
    await period(db, settings, Q2)
    await db.commit()
    await login(client, "admin@example.com")
    page = await client.get("/bonus/plan?period=2026-Q2")
    assert page.status_code == 200 and "is closed" in page.text and 'id="plan-editor"' not in page.text
    refused = await client.post("/bonus/plan?period=2026-Q2", data=form_data(await csrf_token(client)))
    assert refused.status_code == 409 and "2026-Q2 is closed" in refused.text


# -- API ---------------------------------------------------------------------------------------------------


def body(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "period": "2026-Q3",
        "funding_rate": "0.03",
        "gate_curve": [["0.5", "0"], ["0.5", "0.5"], ["1", "1"], ["1.5", "2"]],
        "teams": [{"team": "sales", "share": "0.6"}, {"team": "marketing", "share": "0.4", "rule": "equal"}],
        "pool_cap": "100000.50",
    }
    values.update(changes)
    return values


async def test_the_api_lists_reads_creates_and_approves(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c = await cast(db)
    lead_write = await token(db, c.sales_lead, "import")
    created = await client.post(API, json=body(), headers=lead_write)
    assert created.status_code == 201, created.text
    plan = created.json()
    assert (plan["version"], plan["status"], plan["period"], plan["currency"]) == (
        1,
        "draft",
        "2026-Q3",
        "USD",
    )
    assert (plan["funding_rate"], plan["pool_cap"], plan["created_by"]) == ("0.03", "100000.50", "Vp.Sales")
    assert plan["gate_curve"][1] == ["0.5", "0.5"] and plan["teams"][1]["rule"] == "equal"
    stored = await db.get(BonusPlan, plan["id"])
    assert stored is not None and stored.pool_cap == 10_000_050

    read = await token(db, c.rep, "read")
    listed = (await client.get(f"{API}?period=2026-Q3", headers=read)).json()
    assert listed["approved_version"] is None and [v["version"] for v in listed["versions"]] == [1]
    assert (await client.get(f"{API}/{plan['id']}", headers=read)).json()["id"] == plan["id"]

    # Only an admin approves; then the version is in force.
    body_ = problem(await client.post(f"{API}/{plan['id']}/approve", headers=lead_write), 403)
    assert "admin" in body_["detail"]
    admin = await token(db, c.admin, "import")
    approved = await client.post(f"{API}/{plan['id']}/approve", headers=admin)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == "Admin"
    second = (await client.post(API, json=body(funding_rate="0.02"), headers=admin)).json()
    await client.post(f"{API}/{second['id']}/approve", headers=admin)
    listed = (await client.get(f"{API}?period=2026-Q3", headers=read)).json()
    assert listed["approved_version"] == 2
    assert [(v["version"], v["status"]) for v in listed["versions"]] == [(2, "approved"), (1, "superseded")]
    problem(await client.post(f"{API}/{plan['id']}/approve", headers=admin), 409)


async def test_the_api_refuses_bad_input_with_problem_bodies(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c = await cast(db)
    problem(await client.get(API), 401)
    read = await token(db, c.sales_lead, "read")
    assert "import" in problem(await client.post(API, json=body(), headers=read), 403)["detail"]
    member = await token(db, c.rep, "import")
    assert "leaders and admins" in problem(await client.post(API, json=body(), headers=member), 403)["detail"]
    write = await token(db, c.sales_lead, "import")
    invalid = problem(
        await client.post(
            API,
            json=body(
                funding_rate="-0.5",
                gate_curve=[["1", "2"], ["1.5", "1"]],
                teams=[{"team": "sales", "share": "0.5"}],
            ),
            headers=write,
        ),
        422,
    )
    errors = {e["field"]: e["message"] for e in invalid["errors"]}
    assert errors["funding_rate"] == "A rate cannot be negative."
    assert "cannot go down" in errors["gate_curve"] and "add up to exactly 1" in errors["teams"]
    cents = problem(await client.post(API, json=body(pool_cap="1.001"), headers=write), 422)
    assert cents["errors"][0]["field"] == "pool_cap"
    problem(await client.post(API, json={"period": "2026-Q3"}, headers=write), 400)
    problem(await client.post(API, json=body(extra=1), headers=write), 400)
    await period(db, settings, Q2)
    await db.commit()
    problem(await client.post(API, json=body(period="2026-Q2"), headers=write), 409)
    problem(await client.post(API, json=body(period="1999-Q1"), headers=write), 404)
    problem(await client.get(f"{API}/424242", headers=read), 404)
    problem(await client.post(f"{API}/424242/approve", headers=await token(db, c.admin, "import")), 404)
    assert (await db.scalars(select(BonusPlan))).all() == []
