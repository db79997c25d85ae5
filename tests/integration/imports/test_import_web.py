"""The admin import page: admins only, uploads run as background jobs, progress and errors on cards."""

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login, make_person

from okr.db.jobs import ImportJob
from okr.db.models import metadata
from okr.imports.controllers import RUNNER_KEY
from okr.imports.jobs import STOPPED, ImportRunner
from okr.lib.clock import utcnow
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
GOOD = Path(__file__).resolve().parents[2] / "data" / "imports" / "good"
ACCOUNTS = (GOOD / "accounts.csv").read_bytes()
BAD_ACCOUNTS = b"external_id,name,segment\nA-1,Acme,smb\nA-2,,smb\nA-1,Again,smb\n"


def runner(app: Litestar) -> ImportRunner:
    found: ImportRunner = app.state[RUNNER_KEY]
    return found


async def as_admin(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="admin@example.com", role="admin", team="revops", name="Ada Admin")
    answer = await login(client, "admin@example.com")
    assert answer.status_code == 303


async def htmx(client: Client) -> dict[str, str]:
    return {"HX-Request": "true", "x-csrftoken": await csrf_token(client)}


async def post_file(
    client: Client, content: bytes | None, *, name: str = "accounts.csv", entity: str = "", hx: bool = True
) -> httpx.Response:
    headers = await htmx(client) if hx else {}
    data = {"entity": entity}
    if not hx:
        data["_csrf_token"] = await csrf_token(client)
    files = {"file": (name, content if content is not None else b"")}
    if content is None:
        files = {"file": ("", b"")}
    return await client.post(
        "/admin/imports", data=data, files=files, headers=headers, follow_redirects=False
    )


def job_id_of(html: str) -> int:
    found = re.search(r'id="job-(\d+)"', html)
    assert found, html
    return int(found.group(1))


async def finished_card(client: Client, job_id: int, within: float = 30) -> str:
    """Poll a job's card as the page does until it has finished."""
    deadline = time.monotonic() + within
    while True:
        answer = await client.get(f"/admin/imports/jobs/{job_id}", headers={"HX-Request": "true"})
        assert answer.status_code == 200, answer.text
        if 'data-status="succeeded"' in answer.text or 'data-status="failed"' in answer.text:
            assert "hx-trigger" not in answer.text  # a finished card stops polling
            return answer.text
        assert 'hx-trigger="every 1s"' in answer.text
        assert time.monotonic() < deadline, answer.text
        await asyncio.sleep(0.05)


async def accounts(db: AsyncSession) -> int:
    await db.rollback()
    return int((await db.execute(select(func.count()).select_from(metadata.tables["account"]))).scalar_one())


async def add_job(db: AsyncSession, **values: object) -> ImportJob:
    fields: dict[str, object] = {
        "entity": "accounts",
        "file_name": "accounts.csv",
        "file_size": 1000,
        "status": "running",
        "rows": 0,
        "created": 0,
        "updated": 0,
        "error_count": 0,
        "bytes_read": 0,
        "actor": "admin@example.com",
        "created_at": utcnow(),
        "started_at": utcnow(),
    }
    fields.update(values)
    job = ImportJob(**fields)
    db.add(job)
    await db.commit()
    return job


# -- who may open it ---------------------------------------------------------------------------------


async def test_a_member_gets_a_403_page(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    page = await client.get("/admin/imports")
    assert page.status_code == 403
    assert "Not allowed" in page.text
    assert 'href="/admin/imports"' not in (await client.get("/")).text  # no nav link either
    refused = await post_file(client, ACCOUNTS)
    assert refused.status_code == 403
    assert await accounts(db) == 0


async def test_anonymous_visitors_go_to_the_login_page(client: Client) -> None:
    answer = await client.get("/admin/imports", follow_redirects=False)
    assert answer.status_code in (302, 303, 307)
    assert answer.headers["location"].startswith("/login")


async def test_the_page_for_an_admin(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    page = await client.get("/admin/imports")
    assert page.status_code == 200
    html = page.text
    assert 'href="/admin/imports" aria-current="page">Import</a>' in html
    assert "No imports yet" in html  # the empty state says what to do
    assert '<label for="import-entity">' in html and '<label for="import-file">' in html
    assert 'enctype="multipart/form-data"' in html and 'name="_csrf_token"' in html
    for entity in ("fx_rates", "people", "campaigns", "opportunity_splits"):
        assert f'<option value="{entity}"' in html
    assert "campaigns: external_id, name, channel" in html  # required columns beside each entity


# -- uploads -----------------------------------------------------------------------------------------


async def test_an_admin_upload_becomes_a_job_that_finishes(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    answer = await post_file(client, ACCOUNTS)
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert 'id="upload-form"' in html  # the form comes back, reset
    assert "accounts.csv received" in html
    assert 'hx-swap-oob="afterbegin:#job-list"' in html
    job_id = job_id_of(html)
    card = await finished_card(client, job_id)
    assert 'data-status="succeeded"' in card and "Imported" in card
    assert re.search(r"<dt>Created</dt><dd class=\"num\">4</dd>", card)
    assert 'id="import-announce"' in card  # screen readers hear that it finished
    assert await accounts(db) == 4
    listed = (await client.get("/admin/imports")).text
    assert f'id="job-{job_id}"' in listed and "No imports yet" not in listed
    job = await db.get(ImportJob, job_id)
    assert job is not None and job.actor == "admin@example.com" and job.status == "succeeded"


async def test_the_file_name_picks_the_entity(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    answer = await post_file(client, ACCOUNTS, name="accounts-2026-10.csv")
    job_id = job_id_of(answer.text)
    await finished_card(client, job_id)
    job = await db.get(ImportJob, job_id)
    assert job is not None and job.entity == "accounts" and job.file_name == "accounts-2026-10.csv"


async def test_a_plain_form_post_redirects_to_the_job(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    answer = await post_file(client, ACCOUNTS, entity="accounts", hx=False)
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert re.fullmatch(r"/admin/imports/jobs/\d+", location)
    await finished_card(client, int(location.rsplit("/", 1)[1]))
    page = await client.get(location)
    assert page.status_code == 200 and "Imported" in page.text


async def test_a_failed_job_shows_its_errors_and_writes_nothing(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    answer = await post_file(client, BAD_ACCOUNTS, entity="accounts")
    card = await finished_card(client, job_id_of(answer.text))
    assert 'data-status="failed"' in card and "Not imported" in card
    assert "Nothing from this file was written." in card
    assert "2 errors in 3 rows." in card
    assert '<td class="n" data-label="Row">3</td>' in card
    assert "<code>name</code>" in card and "required, but empty" in card
    assert "duplicate: &#39;A-1&#39; is already in row 2" in card
    assert await accounts(db) == 0


async def test_many_errors_are_capped_on_the_card_and_paged_on_the_job_page(
    client: Client, db: AsyncSession
) -> None:
    await as_admin(client, db)
    bad = b"external_id,name\n" + b"".join(b"X-%d,\n" % i for i in range(120))
    answer = await post_file(client, bad, entity="accounts")
    job_id = job_id_of(answer.text)
    card = await finished_card(client, job_id)
    assert "… and 110 more." in card and "See every error" in card
    page = (await client.get(f"/admin/imports/jobs/{job_id}")).text
    assert "Every error" in page and "page 1 of 3" in page
    second = (await client.get(f"/admin/imports/jobs/{job_id}?page=2")).text
    assert '<td class="n" data-label="Row">52</td>' in second
    assert await accounts(db) == 0


async def test_no_file_chosen_is_said_beside_the_field(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    answer = await post_file(client, None, entity="accounts")
    assert answer.status_code == 200  # htmx swaps only 2xx answers
    assert 'id="import-file-error"' in answer.text and "Choose a file to upload." in answer.text
    assert '<option value="accounts" selected>' in answer.text  # the choice is kept
    plain = await post_file(client, None, entity="accounts", hx=False)
    assert plain.status_code == 422 and "Choose a file to upload." in plain.text
    assert (await db.execute(select(func.count()).select_from(ImportJob))).scalar_one() == 0


async def test_an_unknown_entity_is_said_beside_the_select(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    unknown = await post_file(client, ACCOUNTS, entity="deals")
    assert 'id="import-entity-error"' in unknown.text and "not an import entity" in unknown.text
    unnamed = await post_file(client, ACCOUNTS, name="export.csv")
    assert 'id="import-entity-error"' in unnamed.text and "Choose what export.csv holds" in unnamed.text
    assert not any(p.name.startswith("in-") for p in runner(client.app).folder.iterdir())


async def test_a_too_large_file_is_said_beside_the_field(
    client: Client, db: AsyncSession, app: Litestar
) -> None:
    await as_admin(client, db)
    runner(app).limits.max_upload_bytes = 32
    answer = await post_file(client, ACCOUNTS, entity="accounts")
    assert 'id="import-file-error"' in answer.text and "upload limit" in answer.text


# -- progress and recovery ---------------------------------------------------------------------------


async def test_a_running_job_shows_its_progress_and_polls(
    client: Client, db: AsyncSession, app: Litestar
) -> None:
    await as_admin(client, db)
    job = await add_job(db, rows=12_000, bytes_read=450, runner=runner(app).runner_id)
    card = (await client.get(f"/admin/imports/jobs/{job.id}", headers={"HX-Request": "true"})).text
    assert 'hx-trigger="every 1s"' in card and "Importing" in card
    assert 'Read: <strong class="num">45 %</strong>' in card
    assert "12,000 rows read" in card and "450 bytes of 1 KB" in card
    page = (await client.get("/admin/imports")).text
    assert f'id="job-{job.id}"' in page and 'hx-trigger="every 1s"' in page


async def test_the_page_lists_the_last_20_jobs(client: Client, db: AsyncSession) -> None:
    await as_admin(client, db)
    for n in range(23):
        await add_job(db, status="succeeded", file_name=f"f{n}.csv", runner=None)
    page = (await client.get("/admin/imports")).text
    assert len(re.findall(r'<article class="card import-job"', page)) == 20
    assert "f22.csv" in page and "f2.csv" not in page


async def test_jobs_left_by_a_stopped_process_fail_at_start_up(
    app: Litestar, db: AsyncSession, settings: Settings
) -> None:
    alive = ImportRunner(settings)
    await alive.startup()
    try:
        dead = await add_job(db, runner="ghost-host:4242:dead")
        queued = await add_job(db, status="queued", runner=None, started_at=None)
        living = await add_job(db, runner=alive.runner_id)
        async with AsyncTestClient(app=app):
            pass
        await db.rollback()
        for job in (dead, queued):
            await db.refresh(job)
            assert job.status == "failed" and job.message == STOPPED and job.finished_at is not None
        await db.refresh(living)
        assert living.status == "running"  # its process still runs
    finally:
        await alive.shutdown()


async def test_an_import_stopped_by_shutdown_is_marked_failed(
    app: Litestar, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from okr.imports import jobs

    async def never_ends(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(jobs, "import_csv", never_ends)
    async with AsyncTestClient(app=app) as client:
        await as_admin(client, db)
        answer = await post_file(client, ACCOUNTS, entity="accounts")
        job_id = job_id_of(answer.text)
        deadline = time.monotonic() + 10
        while (await db.get(ImportJob, job_id, populate_existing=True)).status != "running":  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            await db.rollback()
            await asyncio.sleep(0.05)
    await db.rollback()
    job = await db.get(ImportJob, job_id, populate_existing=True)
    assert job is not None and job.status == "failed" and job.message == STOPPED
    assert not runner(app).folder.exists()


async def test_progress_is_stored_per_batch_on_postgresql_only(
    client: Client, db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from okr.imports import jobs
    from okr.imports.services import BATCH_SIZE

    stored: list[tuple[int, int | None]] = []
    record = jobs.record_progress

    async def spy(session: AsyncSession, *, job_id: int, rows: int, bytes_read: int | None) -> None:
        stored.append((rows, bytes_read))
        await record(session, job_id=job_id, rows=rows, bytes_read=bytes_read)

    monkeypatch.setattr(jobs, "record_progress", spy)
    await as_admin(client, db)
    total = BATCH_SIZE * 2 + 100
    data = ("external_id,name\n" + "".join(f"B-{i},Batch {i}\n" for i in range(total))).encode()
    card = await finished_card(client, job_id_of((await post_file(client, data)).text))
    assert "Imported" in card and f"{total:,}" in card
    if settings.is_sqlite:
        # A second writer would wait on the import's own write lock: progress stays in memory.
        assert stored == []
    else:
        assert [rows for rows, _ in stored] == [BATCH_SIZE, BATCH_SIZE * 2, total]
        assert stored[-1][1] == len(data)
