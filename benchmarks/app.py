"""The live app's performance, measured in headless Chromium, before and after: the code at a git revision (the
"before", default the merge base of HEAD with main; ``--baseline REV``) and the working tree (the "after"), in one
run on one machine (issue 16's targets: HH rk4 at dt 0.01 ms at 1x with <= 20 % of a core, >= 38 updates a second
and slider -> trace <= 120 ms; Izhikevich at dt 0.1 <= 8 %, fractional fast-l1 <= 15 %; the speed control at 10x
sustaining >= 9.5 simulated s per wall s for Izhikevich and >= 4 for HH).

The revision is checked out with ``git worktree add`` into a temporary directory (removed after) and its server run
with PYTHONPATH at that tree's src; the working tree's the same way. For each server `neurospike app` starts as a
user would (``python -m neurospike.cli app``), the page opens in Debian's chromium (playwright, the launch options
of DEVELOPERS.md), and for each case: chooses model, solver, dt and speed, plays for a warm-up, then counts over
``--seconds``: frames drawn by the page (trace updates), chunks received, simulated time per wall second, and the
server process's CPU time (user + system, all threads, from /proc) per wall second. At 1x it then moves the I
slider ``--moves`` times and reports the latency from the input event to the first drawn trace computed with the
new value (the page's own measurement: `window.neurospike.latencies`).

    .venv/bin/python benchmarks/app.py [--seconds 10] [--moves 20] [--baseline REV]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CASES = [  # (label, model option, preset, method, dt, speed, I values for the slider moves)
    ("Izhikevich tonic, rk4", "izhikevich", "tonic_spiking", "rk4", 0.1, 1.0, (10.0, 20.0)),
    ("Izhikevich tonic, euler", "izhikevich", "tonic_spiking", "euler", 0.1, 1.0, (10.0, 20.0)),
    ("Izhikevich fractional α 0.8, fast-l1", "izhikevich:fractional", "tonic_spiking", "fast-l1", 0.1, 1.0,
     (10.0, 20.0)),
    ("Hodgkin-Huxley tonic, rk4", "hh", "tonic", "rk4", 0.01, 1.0, (8.0, 15.0)),
    ("Izhikevich tonic, rk4, 10x", "izhikevich", "tonic_spiking", "rk4", 0.1, 10.0, None),
    ("Hodgkin-Huxley tonic, rk4, 10x", "hh", "tonic", "rk4", 0.01, 10.0, None),
]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(source: Path) -> tuple[subprocess.Popen, str]:
    """`neurospike app` on a free port with the package imported from ``source`` (a tree's src)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = dict(os.environ, PYTHONPATH=str(source))
    process = subprocess.Popen([sys.executable, "-m", "neurospike.cli", "app", "--port", str(port)],
                               stdout=subprocess.DEVNULL, env=environment)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "api/health", timeout=1)
            return process, url
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"neurospike app from {source} exited with {process.returncode}")
            time.sleep(0.1)
    raise SystemExit("neurospike app did not start")


@contextlib.contextmanager
def checkout(revision: str):
    """The tree at ``revision`` in a temporary git worktree, removed after."""
    with tempfile.TemporaryDirectory(prefix="neurospike-baseline-") as parent:
        tree = Path(parent) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision], check=True,
                       capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False,
                           capture_output=True)


def choose(page, testid, value):
    """Select ``value`` and wait for the server's config in reply (select_option always sends a change)."""
    page.evaluate("window.__before = window.neurospike.config")
    page.get_by_test_id(testid).select_option(value)
    page.wait_for_function("() => window.neurospike.config !== window.__before")


def measure(page, pid, case, seconds, moves):
    label, model, preset, method, dt, speed, slider = case
    if page.get_by_test_id("pause").is_enabled():
        page.get_by_test_id("pause").click()
    # each choice waits for the config it causes: a value equal to the current one would pass before the reply
    choose(page, "model-select", model)
    choose(page, "preset-select", preset)
    choose(page, "solver-select", method)
    page.evaluate("window.__before = window.neurospike.config")
    page.get_by_test_id("dt-input").fill(str(dt))
    page.get_by_test_id("dt-input").press("Enter")
    if page.evaluate(f"window.neurospike.config.dt !== {dt}"):
        page.wait_for_function("() => window.neurospike.config !== window.__before")
    page.wait_for_function(f"() => window.neurospike.config.dt === {dt} && "
                           f"window.neurospike.config.method === {method!r}")
    page.get_by_test_id("speed").fill(f"{math.log10(speed):g}")  # the control is log10 of the speed
    page.wait_for_function(f"() => Math.abs(window.neurospike.config.speed - {speed}) < 1e-9")
    chunks = page.evaluate("window.neurospike.chunks")
    page.get_by_test_id("play").click()
    page.wait_for_function(f"() => window.neurospike.chunks > {chunks}", timeout=120_000)  # compiled
    page.wait_for_timeout(3000)  # fill the window
    read = "[window.neurospike.frames, window.neurospike.chunks, parseFloat(document.querySelector(" \
           "'[data-testid=sim-time]').textContent)]"
    frames0, chunks0, sim0 = page.evaluate(read)
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    frames1, chunks1, sim1 = page.evaluate(read)
    cpu1, wall1 = cpu_seconds(pid), time.perf_counter()
    wall = wall1 - wall0
    latencies = []
    if slider is not None and moves:
        low, high = slider
        page.evaluate("window.neurospike.latencies.length = 0")
        for k in range(moves):
            page.get_by_test_id("slider-I").fill(str(high if k % 2 == 0 else low))
            page.wait_for_timeout(300)
        latencies = page.evaluate("window.neurospike.latencies")
    page.get_by_test_id("pause").click()
    return {"case": label, "updates_per_s": (frames1 - frames0) / wall, "chunks_per_s": (chunks1 - chunks0) / wall,
            "sim_s_per_wall_s": (sim1 - sim0) / 1000.0 / wall, "server_cpu": (cpu1 - cpu0) / wall,
            "latencies": latencies, "moves": moves if slider is not None else 0}


def measure_tree(source: Path, seconds: float, moves: int) -> list[dict]:
    """Every case against a server importing the package from ``source``."""
    process, url = start_server(source)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 850})
            page.goto(url)
            page.wait_for_function("() => window.neurospike && window.neurospike.connected && window.neurospike.config")
            rows = [measure(page, process.pid, case, seconds, moves) for case in CASES]
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    return rows


def latency(row) -> str:
    if not row["moves"]:
        return "–"
    values = row["latencies"]
    if not values:
        return f"none seen (0/{row['moves']})"
    return f"{statistics.median(values):.0f} / {max(values):.0f} ({len(values)}/{row['moves']})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--baseline", help="git revision of the 'before' (default: git merge-base HEAD main)")
    args = parser.parse_args()
    baseline = args.baseline or subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], check=True,
                                               capture_output=True, text=True).stdout.strip()
    label = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", baseline], check=True,
                           capture_output=True, text=True).stdout.strip()
    with checkout(baseline) as tree:
        before = measure_tree(tree / "src", args.seconds, args.moves)
    after = measure_tree(ROOT / "src", args.seconds, args.moves)
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end); "
          f"{args.seconds:g} s per case; {args.moves} slider moves at 1x; 1500x850 page; before: {label}, "
          f"after: the working tree\n")
    print("| case | code | updates/s (browser) | chunks/s | simulated s per wall s | server CPU (of a core) | "
          "slider → trace median / max (ms) |")
    print("|---|---|---|---|---|---|---|")
    for old, new in zip(before, after):
        for name, r in (("before", old), ("after", new)):
            print(f"| {r['case']} | {name} | {r['updates_per_s']:.1f} | {r['chunks_per_s']:.1f} | "
                  f"{r['sim_s_per_wall_s']:.3f} | {100 * r['server_cpu']:.1f} % | {latency(r)} |")


if __name__ == "__main__":
    main()
