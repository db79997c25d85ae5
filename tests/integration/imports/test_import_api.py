"""POST /api/v1/imports/{entity}: tokens and roles, small files at once, big ones as jobs, every error listed."""

import asyncio
import fcntl
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import login, make_person

from okr.auth.services import create_token
from okr.db.audit import AuditEvent
from okr.db.models import metadata
from okr.imports.controllers import RUNNER_KEY
from okr.imports.jobs import ImportRunner
from okr.imports.services import BATCH_SIZE, import_csv
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
GOOD = Path(__file__).resolve().parents[2] / "data" / "imports" / "good"
ACCOUNTS = (GOOD / "accounts.csv").read_bytes()
BAD_ACCOUNTS = b"external_id,name,segment\nA-1,Acme,smb\nA-2,,smb\nA-1,Again,smb\n,Nameless,\n"


async def token(
    db: AsyncSession,
    *scopes: str,
    role: str = "admin",
    email: str = "ops@example.com",
    name: str = "crm sync",
) -> dict[str, str]:
    """A bearer header for a new token of a new person with `role`."""
    person = await make_person(db, email=email, role=role, team="revops")
    _, plaintext = await create_token(db, person_id=person.id, name=name, scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


def runner(app: Litestar) -> ImportRunner:
    found: ImportRunner = app.state[RUNNER_KEY]
    return found


async def count(db: AsyncSession, table: str) -> int:
    await db.rollback()  # see what the app committed since
    return int((await db.execute(select(func.count()).select_from(metadata.tables[table]))).scalar_one())


async def imports_audited(db: AsyncSession) -> int:
    await db.rollback()
    stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "import")
    return int((await db.execute(stmt)).scalar_one())


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def upload(
    client: Client, entity: str, content: bytes, headers: dict[str, str], name: str = "accounts.csv"
) -> httpx.Response:
    return await client.post(f"/api/v1/imports/{entity}", files={"file": (name, content)}, headers=headers)


async def finished(
    client: Client, location: str, headers: dict[str, str], within: float = 30
) -> dict[str, Any]:
    """Poll a job until it has succeeded or failed."""
    deadline = time.monotonic() + within
    while True:
        answer = await client.get(location, headers=headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, f"the job did not finish: {body}"
        await asyncio.sleep(0.05)


# -- who may import ----------------------------------------------------------------------------------


async def test_no_token_is_401(client: Client) -> None:
    assert_problem(await client.post("/api/v1/imports/accounts", content=ACCOUNTS), 401)


async def test_token_without_the_import_scope_is_403(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "read", "export")
    body = assert_problem(await upload(client, "accounts", ACCOUNTS, headers), 403)
    assert "'import' scope" in body["detail"]
    assert await count(db, "account") == 0


async def test_a_token_of_someone_not_admin_is_403(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "import", role="leader")
    assert_problem(await upload(client, "accounts", ACCOUNTS, headers), 403)
    assert await count(db, "account") == 0


async def test_the_web_session_may_not_import_through_the_api(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="admin@example.com", role="admin")
    await login(client, "admin@example.com")
    assert_problem(await upload(client, "accounts", ACCOUNTS, {}), 403)


# -- small files at once -----------------------------------------------------------------------------


async def test_a_good_csv_is_imported_within_the_request(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "import", name="nightly")
    answer = await upload(client, "accounts", ACCOUNTS, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"entity": "accounts", "rows": 4, "created": 4, "updated": 0}
    assert await count(db, "account") == 4
    event = (await db.execute(select(AuditEvent).where(AuditEvent.action == "import"))).scalar_one()
    assert event.actor == "ops@example.com (token nightly)"
    assert event.after is not None and event.after["source"] == "accounts.csv"
    again = await upload(client, "accounts", ACCOUNTS, headers)
    assert again.json() == {"entity": "accounts", "rows": 4, "created": 0, "updated": 4}
    assert await count(db, "account") == 4


async def test_a_raw_csv_body(client: Client, db: AsyncSession) -> None:
    headers = {**await token(db, "import"), "Content-Type": "text/csv"}
    answer = await client.post("/api/v1/imports/accounts", content=ACCOUNTS, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 4


async def test_a_json_array_is_accepted(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "import")
    records = [
        {"external_id": "J-1", "name": "Json One", "segment": "smb"},
        {"external_id": "J-2", "name": "Json Two"},
    ]
    answer = await client.post("/api/v1/imports/accounts", json=records, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"entity": "accounts", "rows": 2, "created": 2, "updated": 0}
    assert await count(db, "account") == 2


async def test_a_bad_csv_is_422_with_every_error_and_nothing_written(
    client: Client, db: AsyncSession
) -> None:
    headers = await token(db, "import")
    body = assert_problem(await upload(client, "accounts", BAD_ACCOUNTS, headers), 422)
    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (3, "name"),
        (4, "external_id"),
        (5, "external_id"),
    ]
    assert all(e["reason"] for e in body["errors"])
    assert "nothing was written" in body["detail"]
    assert await count(db, "account") == 0
    assert await imports_audited(db) == 0


async def test_a_bad_json_array_is_422(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "import")
    answer = await client.post(
        "/api/v1/imports/accounts", json=[{"external_id": "J-1", "colour": "red"}], headers=headers
    )
    body = assert_problem(answer, 422)
    assert {(e["row"], e["column"]) for e in body["errors"]} == {(1, "colour"), (1, "name")}
    assert await count(db, "account") == 0


# -- refusals ----------------------------------------------------------------------------------------


async def test_an_unknown_entity_is_a_404_problem(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "import")
    body = assert_problem(await upload(client, "deals", ACCOUNTS, headers), 404)
    assert "opportunities" in body["detail"]


async def test_a_file_over_the_limit_is_413(client: Client, db: AsyncSession, app: Litestar) -> None:
    headers = await token(db, "import")
    runner(app).limits.max_upload_bytes = 64
    body = assert_problem(await upload(client, "accounts", ACCOUNTS, headers), 413)
    assert "upload limit" in body["detail"]
    assert await count(db, "account") == 0
    assert not any(p.name.startswith("in-") for p in runner(app).folder.iterdir())


async def test_a_body_over_the_route_limit_is_413_before_reading(client: Client, db: AsyncSession) -> None:
    headers = {
        **await token(db, "import"),
        "Content-Type": "text/csv",
        "Content-Length": str(300 * 1024 * 1024),
    }
    answer = await client.post("/api/v1/imports/accounts", content=ACCOUNTS, headers=headers)
    assert answer.status_code == 413, answer.text


async def test_an_unsupported_body_is_415(client: Client, db: AsyncSession) -> None:
    headers = {**await token(db, "import"), "Content-Type": "application/xml"}
    assert_problem(await client.post("/api/v1/imports/accounts", content=b"<a/>", headers=headers), 415)


async def test_a_form_without_a_file_is_422(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "import")
    answer = await client.post(
        "/api/v1/imports/accounts", data={"note": "x"}, files={"other": ("a.txt", b"x")}, headers=headers
    )
    body = assert_problem(answer, 422)
    assert body["errors"] == [{"field": "file", "reason": "Choose a file to upload."}]


# -- big files as jobs -------------------------------------------------------------------------------


async def test_a_big_upload_becomes_a_job_that_succeeds(
    client: Client, db: AsyncSession, app: Litestar
) -> None:
    headers = await token(db, "import", name="bulk")
    runner(app).limits.inline_max_bytes = 10  # every upload is "big"
    answer = await upload(client, "accounts", ACCOUNTS, headers)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    location = answer.headers["location"]
    assert location == f"/api/v1/imports/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "succeeded")
    assert job["file_name"] == "accounts.csv" and job["file_size"] == len(ACCOUNTS)
    done = await finished(client, location, headers)
    assert done["status"] == "succeeded", done
    assert (done["rows"], done["created"], done["updated"], done["error_count"]) == (4, 4, 0, 0)
    assert done["percent"] == 100 and done["bytes_read"] == len(ACCOUNTS)
    assert done["actor"] == "ops@example.com (token bulk)"
    assert done["started_at"] and done["finished_at"]
    assert await count(db, "account") == 4
    # The uploaded file is gone once its job has ended.
    assert not any(p.name.startswith("in-") for p in runner(app).folder.iterdir())


async def test_too_many_rows_for_the_request_becomes_a_job(
    client: Client, db: AsyncSession, app: Litestar
) -> None:
    headers = await token(db, "import")
    runner(app).limits.inline_max_rows = 2
    answer = await upload(client, "accounts", ACCOUNTS, headers)
    assert answer.status_code == 202, answer.text
    assert (await finished(client, answer.headers["location"], headers))["status"] == "succeeded"


async def test_a_rejected_job_lists_its_errors_and_writes_nothing(
    client: Client, db: AsyncSession, app: Litestar
) -> None:
    headers = await token(db, "import")
    runner(app).limits.inline_max_bytes = 10
    answer = await upload(client, "accounts", BAD_ACCOUNTS, headers)
    assert answer.status_code == 202, answer.text
    done = await finished(client, answer.headers["location"], headers)
    assert done["status"] == "failed"
    assert done["error_count"] == 3 and done["rows"] == 4
    assert [(e["row"], e["column"]) for e in done["errors"]] == [
        (3, "name"),
        (4, "external_id"),
        (5, "external_id"),
    ]
    assert "nothing was written" in done["message"]
    assert (done["created"], done["updated"]) == (0, 0)
    assert await count(db, "account") == 0


async def test_an_upload_while_another_import_runs(
    client: Client, db: AsyncSession, app: Litestar, settings: Settings
) -> None:
    headers = await token(db, "import")
    # Another process importing into the same database holds this lock.
    fd = os.open(runner(app).import_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        answer = await upload(client, "accounts", ACCOUNTS, headers)
        if settings.is_sqlite:  # one writer at a time: nothing queues behind a running import
            body = assert_problem(answer, 503)
            assert "upload this file again" in body["detail"]
            assert await count(db, "import_job") == 0
            return
        assert answer.status_code == 202, answer.text  # too busy to import within the request
        assert answer.json()["status"] == "queued"
        await asyncio.sleep(0.5)
        assert (await client.get(answer.headers["location"], headers=headers)).json()["status"] == "queued"
    finally:
        os.close(fd)
    done = await finished(client, answer.headers["location"], headers)
    assert done["status"] == "succeeded" and done["created"] == 4


async def test_an_unknown_job_is_404(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "import")
    assert_problem(await client.get("/api/v1/imports/jobs/999999", headers=headers), 404)


async def test_jobs_need_the_import_scope_too(client: Client, db: AsyncSession) -> None:
    headers = await token(db, "read")
    assert_problem(await client.get("/api/v1/imports/jobs/1", headers=headers), 403)


# -- progress and the schema -------------------------------------------------------------------------


async def test_progress_is_reported_once_per_batch(db: AsyncSession, settings: Settings) -> None:
    total = BATCH_SIZE * 2 + 500
    text = "external_id,name\n" + "".join(f"P-{i},Account {i}\n" for i in range(total))
    data = text.encode()
    calls: list[tuple[int, int | None]] = []

    async def on_progress(rows: int, bytes_read: int | None) -> None:
        calls.append((rows, bytes_read))

    result = await import_csv(
        db,
        entity="accounts",
        path_or_stream=io.BytesIO(data),
        settings=settings,
        actor="t",
        on_progress=on_progress,
    )
    assert result.created == total
    assert [rows for rows, _ in calls] == [BATCH_SIZE, BATCH_SIZE * 2, total]
    positions = [b for _, b in calls]
    assert all(b is not None for b in positions)
    assert positions == sorted(positions) and positions[-1] == len(data)


async def test_the_openapi_schema_documents_the_import_routes(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    post_op = schema["paths"]["/api/v1/imports/{entity}"]["post"]
    assert post_op["summary"] == "Import one file"
    assert {"200", "202", "404", "413", "415", "422"} <= set(post_op["responses"])
    assert set(post_op["requestBody"]["content"]) == {"multipart/form-data", "text/csv", "application/json"}
    entity = next(p for p in post_op["parameters"] if p["name"] == "entity")
    assert "opportunity_splits" in entity["schema"]["enum"]
    job_op = schema["paths"]["/api/v1/imports/jobs/{job_id}"]["get"]
    assert job_op["summary"] and "200" in job_op["responses"]
    assert "/admin/imports" not in schema["paths"]
    body = json.dumps(post_op["responses"]["422"])
    assert "errors" in body or "$ref" in body


async def test_imports_are_followed_by_one_attribution_recompute(
    client: Client, db: AsyncSession, monkeypatch: Any
) -> None:
    monkeypatch.setattr("okr.imports.jobs.RECOMPUTE_DELAY_SECONDS", 1.0)
    headers = await token(db, "import", name="nightly")
    for entity in ("people", "accounts", "campaigns", "leads", "touchpoints", "opportunities"):
        name = f"{entity}.csv"
        answer = await upload(client, entity, (GOOD / name).read_bytes(), headers, name=name)
        if answer.status_code == 202:  # the recompute of an earlier file held the import lock: queued
            assert (await finished(client, answer.headers["location"], headers))["status"] == "succeeded"
        else:
            assert answer.status_code == 200, answer.text
    for _ in range(150):
        if await count(db, "attribution_run") == 2:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    # One run per scope (the burst of files made one recompute, or a later one replaced the first).
    assert await count(db, "attribution_run") == 2
    opportunities = await count(db, "opportunity")
    assert opportunities > 0
    credited = select(func.count(func.distinct(metadata.tables["attribution_credit"].c.opportunity_id)))
    assert (await db.execute(credited)).scalar_one() == opportunities
