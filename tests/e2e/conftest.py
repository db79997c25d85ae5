"""Browser tests: a live okr server with the demo organisation, driven by Playwright in Chromium.

They run where a Chromium is found (OKR_CHROMIUM, or chromium / chromium-browser / google-chrome
on PATH) and are skipped otherwise, with the reason printed in the summary; OKR_REQUIRE_BROWSER=1
(as CI sets) turns a missing browser into a failure.
"""

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import POSTGRES_URL, make_settings, scratch_postgres_url

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """The Chromium to drive, or None."""
    explicit = os.environ.get("OKR_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e as e2e, run them last, and skip them all at once without a browser."""
    # Playwright's sync API keeps an event loop running in this thread while the browser lives,
    # so async tests must all have run before the first browser test starts.
    items.sort(key=lambda item: "/e2e/" in str(item.path).replace(os.sep, "/"))
    chromium = find_chromium()
    for item in items:
        if "/e2e/" not in str(item.path).replace(os.sep, "/"):
            continue
        item.add_marker(pytest.mark.e2e)
        if chromium is None and not os.environ.get("OKR_REQUIRE_BROWSER"):
            item.add_marker(
                pytest.mark.skip(reason="BROWSER TESTS SKIPPED: no Chromium found (set OKR_CHROMIUM)")
            )


@dataclass
class LiveServer:
    """A uvicorn server on a free local port, running in a thread."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        """Ask the server to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run_in_thread(coro_fn: Any, /, **kwargs: Any) -> Any:
    """Run `await coro_fn(**kwargs)` on a fresh event loop in a worker thread (a test loop may be running here)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn(**kwargs))).result()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(app: Any) -> LiveServer:
    """Serve `app` on 127.0.0.1 in a background thread until it accepts connections."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return LiveServer(url=f"http://127.0.0.1:{port}", server=server, thread=thread)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """okr with the small demo organisation loaded, on SQLite or PostgreSQL."""
    from okr.app import create_app
    from okr.db import migrate
    from okr.demo import services as demo

    if request.param == "postgresql":
        if not POSTGRES_URL:
            if os.environ.get("OKR_REQUIRE_POSTGRES"):
                pytest.fail("OKR_REQUIRE_POSTGRES is set but OKR_TEST_POSTGRES_URL is not")
            pytest.skip("PostgreSQL not configured: set OKR_TEST_POSTGRES_URL")
        url = run_in_thread(scratch_postgres_url, suffix="e2e")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.db'}"
    settings = make_settings(url)
    migrate.upgrade(settings)
    assert run_in_thread(demo.load_demo, settings=settings, seed=7, scale="small", echo=lambda *_: None)
    server = start_server(create_app(settings))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the run."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        pytest.fail("OKR_REQUIRE_BROWSER is set but no Chromium was found")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the live server, laptop-sized."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def phone_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context the size of a small phone."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 375, "height": 740}, is_mobile=True
    )
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


def login(page: Any, email: str, password: str) -> None:
    """Log in through the login form like a person would."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
