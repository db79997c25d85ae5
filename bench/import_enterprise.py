"""Benchmark: generate the enterprise demo and import it, twice, on SQLite or PostgreSQL.

    .venv/bin/python bench/import_enterprise.py --database sqlite
    .venv/bin/python bench/import_enterprise.py --database postgresql \
        --url postgresql+asyncpg://postgres@127.0.0.1:5432/okr_bench

Each step runs as its own `okr` process, so its wall time and peak memory (max RSS) are its own.
The PostgreSQL database named in --url is dropped and created again (and left loaded); --keep
keeps the SQLite one. Prints a Markdown table.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from okr.db.engine import create_engine
from okr.db.models import metadata
from okr.settings import load_settings

OKR = str(Path(sys.executable).with_name("okr"))


def run(step: str, args: list[str], env: dict[str, str]) -> tuple[str, float, int]:
    """Run one okr command; its wall seconds and peak RSS in MiB."""
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([OKR, *args], env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            sys.exit(f"{step} failed:\n{log.read()}")
    return step, seconds, usage.ru_maxrss // 1024


async def counts(url: str) -> dict[str, int]:
    """Rows per table."""
    engine = create_engine(load_settings(database_url=url))
    try:
        async with engine.connect() as conn:
            return {
                t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
                for t in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


async def fresh_postgres(url: str) -> None:
    """Drop and create the database named in `url`."""
    target = make_url(url)
    admin = create_engine(
        load_settings(database_url=target.set(database="postgres").render_as_string(False)),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        await admin.dispose()


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", default="", help="PostgreSQL URL (its database is recreated)")
    parser.add_argument("--scale", default="enterprise", choices=["small", "enterprise"])
    parser.add_argument("--seed", default="7")
    parser.add_argument(
        "--keep", type=Path, default=None, help="SQLite: keep the loaded database at this path"
    )
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="okr-bench-") as tmp:
        if opts.database == "sqlite":
            path = opts.keep.resolve() if opts.keep else Path(tmp) / "bench.db"
            for stale in path.parent.glob(path.name + "*"):
                stale.unlink()
            url = f"sqlite+aiosqlite:///{path}"
        else:
            url = opts.url or "postgresql+asyncpg://postgres@127.0.0.1:5432/okr_bench"
            asyncio.run(fresh_postgres(url))
        env = {**os.environ, "OKR_DATABASE_URL": url, "OKR_MODE": "development"}
        data = Path(tmp) / "data"
        steps = [
            run(
                "okr demo --out (generate CSV files)",
                ["demo", "--scale", opts.scale, "--seed", opts.seed, "--out", str(data)],
                env,
            ),
            run("okr db upgrade", ["db", "upgrade"], env),
            run("okr import (first load)", ["import", str(data)], env),
        ]
        first = asyncio.run(counts(url))
        steps.append(run("okr import (same files again)", ["import", str(data)], env))
        second = asyncio.run(counts(url))
        size = sum(p.stat().st_size for p in data.iterdir()) / 2**20

    audit = "audit_event"
    same = {k: v for k, v in first.items() if k != audit} == {k: v for k, v in second.items() if k != audit}
    print(f"\n{opts.database}, scale {opts.scale} ({size:,.0f} MiB of CSV), seed {opts.seed}\n")
    print("| step | wall time | peak memory |\n| --- | ---: | ---: |")
    for step, seconds, mib in steps:
        print(f"| {step} | {seconds:,.1f} s | {mib:,} MiB |")
    print("\nrows: " + ", ".join(f"{k} {v:,}" for k, v in first.items() if v))
    print(f"second load left every table's row count unchanged: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
