"""The bonus run pages and API: who may do what, the lifecycle through the forms, adjustments inline."""

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.bonus.bonus_data import POOL, bonus_org
from tests.integration.conftest import csrf_token, login

from okr.auth.services import create_token
from okr.bonus import services as bonus
from okr.db.bonus import BonusRun, LedgerEntry
from okr.lib.clock import set_clock
from okr.settings import Settings

Client = AsyncTestClient[Litestar]


@pytest.fixture(autouse=True)
def _restore_clock() -> Iterator[None]:
    yield
    set_clock(None)


async def post(client: Client, url: str, data: dict[str, str] | None = None) -> object:
    return await client.post(
        url, data={**(data or {}), "_csrf_token": await csrf_token(client)}, follow_redirects=False
    )


async def run_id(db: AsyncSession) -> int:
    await db.rollback()
    found = await db.scalar(select(BonusRun.id).order_by(BonusRun.id.desc()).limit(1))
    assert found is not None
    return found


async def test_finance_runs_submits_approves_as_another_user_and_locks(
    db: AsyncSession, settings: Settings, app: Litestar
) -> None:
    await bonus_org(db, settings)
    # One client, switching users by logging in: two test clients would run the app on two event loops
    # over one connection pool, which asyncpg does not allow.
    async with AsyncTestClient(app=app) as client:
        await login(client, "fay@example.com")
        index = await client.get("/bonus?period=2026-Q3")
        assert index.status_code == 200 and "Run the 2026-Q3 bonus" in index.text
        started = await post(client, "/bonus/runs", {"period": "2026-Q3"})
        assert started.status_code == 303  # type: ignore[attr-defined]
        rid = await run_id(db)
        page = await client.get(f"/bonus/runs/{rid}")
        assert page.status_code == 200
        assert "USD 4,500.00" in page.text  # the pool
        assert "USD 1,620.00" in page.text and "USD 1,080.00" in page.text  # Sue and Rita
        assert "DRAFT" in page.text
        verified = await post(client, f"/bonus/runs/{rid}/verify")
        assert "byte-identical" in verified.text  # type: ignore[attr-defined]

        assert (await post(client, f"/bonus/runs/{rid}/submit")).status_code == 303  # type: ignore[attr-defined]
        own = await post(client, f"/bonus/runs/{rid}/approve")
        assert own.status_code == 403  # type: ignore[attr-defined]
        assert "another finance user" in own.text  # type: ignore[attr-defined]
        await login(client, "fin@example.com")
        assert (await post(client, f"/bonus/runs/{rid}/approve")).status_code == 303  # type: ignore[attr-defined]
        assert (await post(client, f"/bonus/runs/{rid}/lock")).status_code == 303  # type: ignore[attr-defined]
        await login(client, "fay@example.com")
        locked = await client.get(f"/bonus/runs/{rid}")
        assert "Locked" in locked.text and "DRAFT" not in locked.text
        again = await post(client, f"/bonus/runs/{rid}/compute")
        assert again.status_code == 409  # type: ignore[attr-defined]
    await db.rollback()
    assert sum(e.amount for e in (await db.scalars(select(LedgerEntry))).all()) == POOL


async def test_leaders_see_the_team_pools_but_no_ones_line_and_members_no_run(
    db: AsyncSession, settings: Settings, app: Litestar
) -> None:
    await bonus_org(db, settings)
    async with AsyncTestClient(app=app) as client:
        await login(client, "fay@example.com")
        await post(client, "/bonus/runs", {"period": "2026-Q3"})
        rid = await run_id(db)
        await login(client, "vic@example.com")
        page = await client.get(f"/bonus/runs/{rid}")
        assert page.status_code == 200
        assert "USD 2,700.00" in page.text  # the sales team pool
        assert "USD 1,620.00" not in page.text and "USD 1,080.00" not in page.text
        assert 'id="run-lines"' not in page.text
        assert (await post(client, "/bonus/runs", {"period": "2026-Q3"})).status_code == 403  # type: ignore[attr-defined]
        assert (await post(client, f"/bonus/runs/{rid}/submit")).status_code == 403  # type: ignore[attr-defined]
        await login(client, "rita@example.com")
        assert (await client.get(f"/bonus/runs/{rid}")).status_code == 403
        index = await client.get("/bonus?period=2026-Q3")
        assert index.status_code == 200 and f"/bonus/runs/{rid}" not in index.text


async def test_an_adjustment_form_shows_each_error_beside_its_field(
    db: AsyncSession, settings: Settings, app: Litestar
) -> None:
    await bonus_org(db, settings)
    async with AsyncTestClient(app=app) as fay:
        await login(fay, "fay@example.com")
        bad = await post(
            fay, "/bonus/adjustments", {"person": "nobody@example.com", "amount": "12x", "reason": ""}
        )
        assert bad.status_code == 422  # type: ignore[attr-defined]
        text = bad.text  # type: ignore[attr-defined]
        assert 'id="adjust-person-error"' in text and 'id="adjust-amount-error"' in text
        no_reason = await post(
            fay, "/bonus/adjustments", {"person": "rita@example.com", "amount": "25.50", "reason": " "}
        )
        assert 'id="adjust-reason-error"' in no_reason.text  # type: ignore[attr-defined]
        ok = await post(
            fay,
            "/bonus/adjustments",
            {"person": "rita@example.com", "amount": "-25.50", "reason": "Q2 overpaid"},
        )
        assert ok.status_code == 303  # type: ignore[attr-defined]
    await db.rollback()
    entry = await db.scalar(select(LedgerEntry))
    assert (
        entry is not None and entry.amount == -2550 and entry.reason == "Q2 overpaid" and entry.run_id is None
    )


async def test_the_api_starts_and_moves_runs_with_an_export_token(
    db: AsyncSession, settings: Settings, app: Litestar
) -> None:
    org = await bonus_org(db, settings)
    _, fay_token = await create_token(db, person_id=org.id("fay"), name="payroll", scopes=["read", "export"])
    _, fin_token = await create_token(db, person_id=org.id("fin"), name="payroll", scopes=["export"])
    _, read_only = await create_token(db, person_id=org.id("fay"), name="ro", scopes=["read"])
    await db.commit()
    async with AsyncTestClient(app=app) as client:
        refused = await client.post(
            "/api/v1/bonus/runs", json={"period": "2026-Q3"}, headers={"Authorization": f"Bearer {read_only}"}
        )
        assert refused.status_code == 403 and refused.json()["status"] == 403
        bad = await client.post(
            "/api/v1/bonus/runs", json={"period": "2031-Q9"}, headers={"Authorization": f"Bearer {fay_token}"}
        )
        assert bad.status_code == 404 and "2031-Q9" in bad.json()["detail"]
        made = await client.post(
            "/api/v1/bonus/runs", json={"period": "2026-Q3"}, headers={"Authorization": f"Bearer {fay_token}"}
        )
        assert made.status_code == 201, made.text
        rid = made.json()["id"]
        for _ in range(100):
            got = await client.get(
                f"/api/v1/bonus/runs/{rid}", headers={"Authorization": f"Bearer {fay_token}"}
            )
            if got.json()["status"] != "running":
                break
            import asyncio

            await asyncio.sleep(0.05)
        assert got.json()["status"] == "done" and got.json()["pool"] == POOL
        fay_h, fin_h = {"Authorization": f"Bearer {fay_token}"}, {"Authorization": f"Bearer {fin_token}"}
        assert (await client.post(f"/api/v1/bonus/runs/{rid}/submit", headers=fay_h)).json()[
            "state"
        ] == "submitted"
        assert (await client.post(f"/api/v1/bonus/runs/{rid}/approve", headers=fay_h)).status_code == 403
        assert (await client.post(f"/api/v1/bonus/runs/{rid}/approve", headers=fin_h)).json()[
            "state"
        ] == "approved"
        assert (await client.post(f"/api/v1/bonus/runs/{rid}/lock", headers=fin_h)).json()[
            "state"
        ] == "locked"
        wrong = await client.post(f"/api/v1/bonus/runs/{rid}/explode", headers=fin_h)
        assert wrong.status_code in (400, 422)


async def test_a_run_still_computing_shows_its_progress_and_reloads_when_done(
    db: AsyncSession, settings: Settings, app: Litestar
) -> None:
    org = await bonus_org(db, settings)
    run = await bonus.create_run(db, settings=settings, period_key="2026-Q3", user=org.users["fay"])
    run.progress = "Reading the reps' revenue splits"
    await db.commit()
    async with AsyncTestClient(app=app) as client:
        await login(client, "fay@example.com")
        page = await client.get(f"/bonus/runs/{run.id}")
        assert 'id="run-progress"' in page.text and "Reading the reps&#39; revenue splits" in page.text
        polled = await client.get(f"/bonus/runs/{run.id}/status", headers={"HX-Request": "true"})
        assert polled.status_code == 200 and 'hx-trigger="every 2s"' in polled.text
        await bonus.compute_run(db, settings=settings, run_id=run.id)
        await db.commit()
        done = await client.get(f"/bonus/runs/{run.id}/status", headers={"HX-Request": "true"})
        assert done.headers.get("hx-redirect") == f"/bonus/runs/{run.id}"


async def test_the_runs_api_shows_no_one_a_persons_line_and_members_nothing(
    db: AsyncSession, settings: Settings, app: Litestar
) -> None:
    org = await bonus_org(db, settings)
    run = await bonus.create_run(db, settings=settings, period_key="2026-Q3", user=org.users["fay"])
    await bonus.compute_run(db, settings=settings, run_id=run.id)
    tokens = {}
    for name in ("rita", "vic", "fay"):
        _, tokens[name] = await create_token(db, person_id=org.id(name), name="t", scopes=["read"])
    await db.commit()
    async with AsyncTestClient(app=app) as client:
        for url in ("/api/v1/bonus/runs", f"/api/v1/bonus/runs/{run.id}"):
            member = await client.get(url, headers={"Authorization": f"Bearer {tokens['rita']}"})
            assert member.status_code == 403 and "108000" not in member.text
        for who in ("vic", "fay"):
            got = await client.get(
                f"/api/v1/bonus/runs/{run.id}", headers={"Authorization": f"Bearer {tokens[who]}"}
            )
            assert got.status_code == 200 and got.json()["pool"] == POOL
            # Team pools only: no person's amount (Rita 108,000, Sue 162,000, Mia 120,000) anywhere.
            assert all(str(a) not in got.text for a in (108_000, 162_000, 120_000))
