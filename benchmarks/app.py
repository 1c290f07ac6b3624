"""The live app's performance, measured in headless Chromium (issue 5's targets: >= 30 updates a second in the
browser, a slider change visible in the trace within 150 ms, the server keeping up with >= 1 s of simulated time
per wall second for Izhikevich at dt 0.1 ms while using < 25 % of one core).

Starts `neurospike app` as a user would, opens the page in Debian's chromium (playwright, the launch options of
DEVELOPERS.md), and for each case: chooses model, solver and dt, plays for a warm-up, then counts over
``--seconds``: frames drawn by the page (trace updates), chunks received, simulated time per wall second, and the
server process's CPU time (user + system, all threads, from /proc) per wall second. Then moves the I slider
``--moves`` times and reports the latency from the input event to the first drawn trace computed with the new
value (the page's own measurement: `window.neurospike.latencies`).

    .venv/bin/python benchmarks/app.py [--seconds 10] [--moves 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CASES = [  # (label, model option, preset, method, dt, I values for the slider moves)
    ("Izhikevich tonic, rk4", "izhikevich", "tonic_spiking", "rk4", 0.1, (10.0, 20.0)),
    ("Izhikevich tonic, euler", "izhikevich", "tonic_spiking", "euler", 0.1, (10.0, 20.0)),
    ("Izhikevich fractional α 0.8, fast-l1", "izhikevich:fractional", "tonic_spiking", "fast-l1", 0.1, (10.0, 20.0)),
    ("Hodgkin-Huxley tonic, rk4", "hh", "tonic", "rk4", 0.01, (8.0, 15.0)),
]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = shutil.which("neurospike", path=str(Path(sys.executable).parent)) or "neurospike"
    process = subprocess.Popen([script, "app", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "api/health", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("neurospike app did not start")


def choose(page, testid, value):
    """Select ``value`` and wait for the server's config in reply (select_option always sends a change)."""
    page.evaluate("window.__before = window.neurospike.config")
    page.get_by_test_id(testid).select_option(value)
    page.wait_for_function("() => window.neurospike.config !== window.__before")


def measure(page, pid, case, seconds, moves):
    label, model, preset, method, dt, (low, high) = case
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
    page.get_by_test_id("play").click()
    page.wait_for_timeout(3000)  # compile (warm-up) and fill the window
    read = "[window.neurospike.frames, window.neurospike.chunks, parseFloat(document.querySelector(" \
           "'[data-testid=sim-time]').textContent)]"
    frames0, chunks0, sim0 = page.evaluate(read)
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    frames1, chunks1, sim1 = page.evaluate(read)
    cpu1, wall1 = cpu_seconds(pid), time.perf_counter()
    wall = wall1 - wall0
    page.evaluate("window.neurospike.latencies.length = 0")
    for k in range(moves):
        page.get_by_test_id("slider-I").fill(str(high if k % 2 == 0 else low))
        page.wait_for_timeout(300)
    latencies = page.evaluate("window.neurospike.latencies")
    page.get_by_test_id("pause").click()
    return {"case": label, "updates_per_s": (frames1 - frames0) / wall, "chunks_per_s": (chunks1 - chunks0) / wall,
            "sim_s_per_wall_s": (sim1 - sim0) / 1000.0 / wall, "server_cpu": (cpu1 - cpu0) / wall,
            "latency_median_ms": statistics.median(latencies) if latencies else float("nan"),
            "latency_max_ms": max(latencies) if latencies else float("nan"), "moves_seen": len(latencies)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    process, url = start_server()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 850})
            page.goto(url)
            page.wait_for_function("() => window.neurospike && window.neurospike.connected && window.neurospike.config")
            rows = [measure(page, process.pid, case, args.seconds, args.moves) for case in CASES]
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"{os.cpu_count()} CPUs; {args.seconds:g} s per case; {args.moves} slider moves; 1500x850 page\n")
    print("| case | updates/s (browser) | chunks/s | simulated s per wall s | server CPU (cores) | "
          "slider → trace median / max (ms) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['updates_per_s']:.1f} | {r['chunks_per_s']:.1f} | {r['sim_s_per_wall_s']:.3f} | "
              f"{100 * r['server_cpu']:.0f} % | {r['latency_median_ms']:.0f} / {r['latency_max_ms']:.0f} "
              f"({r['moves_seen']}/{args.moves}) |")


if __name__ == "__main__":
    main()
