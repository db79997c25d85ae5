"""Benchmark: recompute every attribution model for one scope from a loaded database (issue 3).

    .venv/bin/python bench/attribution_recompute.py --url sqlite+aiosqlite:////path/to/enterprise.db
    .venv/bin/python bench/attribution_recompute.py \
        --url postgresql+asyncpg://postgres@127.0.0.1:5432/okr_bench --workers 2 --repeat 3

The database must hold the enterprise demo (`okr demo --scale enterprise --out DIR`, then
`okr db upgrade` and `okr import DIR`; bench/import_enterprise.py leaves one loaded). Each run is
`okr attribution recompute --scope S` in its own process: the wall time includes starting Python and
the worker processes, reading every opportunity and touchpoint, the removal effects, every model's
credit and writing the rows, until the switch to the new run (the run's own log line gives that time:
"to the switch", what a leader waits for) and then the deletion of the scope's older runs (in the whole
command's time). Peak memory is the largest sum of the proportional set size (resident
memory, pages shared between processes counted once) of the command and all its descendants (the
fork server and the worker processes), sampled every 100 ms. Prints a Markdown table and the
run's own phase times as it logs them.
"""

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

OKR = str(Path(sys.executable).with_name("okr"))


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _pss_kib(pid: int) -> int:
    """Proportional set size: resident memory, pages shared between processes counted once in all."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_pss_kib(root: int) -> int:
    tree, total, stack = _children(), 0, [root]
    while stack:
        pid = stack.pop()
        total += _pss_kib(pid)
        stack.extend(tree.get(pid, []))
    return total


def run(url: str, scope: str, workers: int | None) -> tuple[float, int, str]:
    """Wall seconds, peak MiB of the process tree, and the run's logged lines (phases, cleanup)."""
    env = {**os.environ, "OKR_DATABASE_URL": url}
    if workers is not None:
        env["OKR_ATTRIBUTION_WORKERS"] = str(workers)
    start = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603
        [OKR, "attribution", "recompute", "--scope", scope],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss_kib(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # The command's own exit, as a shell sees it; its output pipe closes later, when the workers' fork
    # server (which shares it) notices and shuts itself down.
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read() if proc.stdout else ""))
    reader.start()
    proc.wait()
    seconds = time.perf_counter() - start
    reader.join()
    output = "".join(chunks)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"recompute failed:\n{output}")
    phases = " | ".join(line.strip() for line in output.splitlines() if f"attribution {scope}:" in line)
    return seconds, peak // 1024, phases


def _switch_seconds(phases: str) -> float:
    """The run's own time from its start to the switch, as its log line gives it."""
    match = re.search(r"rows in ([0-9.]+) s", phases)
    return float(match.group(1)) if match else float("nan")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="database loaded with the enterprise demo")
    parser.add_argument("--scope", action="append", choices=["pipeline", "revenue"], help="default: both")
    parser.add_argument(
        "--workers", type=int, default=None, help="OKR_ATTRIBUTION_WORKERS (default: settings)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    rows = []
    for scope in opts.scope or ["pipeline", "revenue"]:
        for i in range(opts.repeat):
            seconds, mib, phases = run(opts.url, scope, opts.workers)
            print(f"{scope} #{i + 1}: {seconds:.2f} s, peak {mib} MiB  [{phases}]", flush=True)
            rows.append((scope, seconds, _switch_seconds(phases), mib))
    print(
        "\n| scope | runs | to the switch, best / median s | whole command, best / median s | peak MiB |"
        "\n| --- | ---: | ---: | ---: | ---: |"
    )
    for scope in opts.scope or ["pipeline", "revenue"]:
        walls = sorted(w for sc, w, _, _ in rows if sc == scope)
        runs = sorted(r for sc, _, r, _ in rows if sc == scope)
        peak = max(m for sc, _, _, m in rows if sc == scope)
        mid = len(walls) // 2
        print(
            f"| {scope} | {len(walls)} | {runs[0]:.2f} / {runs[mid]:.2f} | {walls[0]:.2f} / {walls[mid]:.2f} "
            f"| {peak} |"
        )


if __name__ == "__main__":
    main()
