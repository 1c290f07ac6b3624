"""The live app end to end: `neurospike app` started as a user would, driven in Debian's headless chromium by
playwright. Play advances the simulated time and counts spikes, a larger input fires faster, solver, model and
fractional order switch, CSV and PNG export what is shown, two tabs are independent sessions, and a screenshot
is taken. Launch options as in DEVELOPERS.md; `playwright install` is never used. Every
wait_for_function gets a function: the page's Content-Security-Policy forbids eval, and playwright evaluates a
function's text once but a bare expression again on every poll."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

pytestmark = pytest.mark.slow  # chromium against a running app: `make check` leaves it out, `make test` runs it


@pytest.fixture(scope="module")
def server():
    """`neurospike app` on a free port; its URL. Stopped (and checked to have survived) at the end."""
    port = free_port()
    script = shutil.which("neurospike", path=str(Path(sys.executable).parent)) or "neurospike"
    process = subprocess.Popen([script, "app", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # its jax disk cache: the tests' (NEUROSPIKE_CACHE, tests/conftest.py)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120.0
    while True:
        try:
            urllib.request.urlopen(url + "api/health", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"neurospike app exited: {process.stderr.read()}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"neurospike app did not answer within 120 s: {process.communicate()[1]}")
            time.sleep(0.1)
    assert f"localhost:{port}" in process.stdout.readline()  # it prints the URL
    yield url
    assert process.poll() is None, "the server died during the tests"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1500, "height": 850}, accept_downloads=True)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.goto(server)
    opened.wait_for_function("() => window.neurospike && window.neurospike.config && window.neurospike.connected")
    yield opened
    context.close()
    assert not problems, problems


def number(page, testid: str) -> float:
    return float(page.get_by_test_id(testid).inner_text())


def wait_until(page, testid: str, condition: str, timeout: float = 20_000):
    page.wait_for_function(f"() => {{ const x = parseFloat(document.querySelector('[data-testid={testid}]')"
                           f".textContent); return {condition}; }}", timeout=timeout)


def configured(page, **expected):
    checks = " && ".join(f"c.{key} === {value!r}" if isinstance(value, str) else
                         f"c.{key} === {str(value).lower()}" for key, value in expected.items())
    page.wait_for_function(f"() => {{ const c = window.neurospike.config; return {checks}; }}")


def pause(page):
    """Click pause and wait for the server's ack: every chunk sent before it has reached the page, none follows."""
    acked = page.evaluate("window.neurospike.acks.pause || 0")
    page.get_by_test_id("pause").click()
    page.wait_for_function(f"() => (window.neurospike.acks.pause || 0) > {acked}")


def test_play_advances_time_and_spikes_and_a_larger_input_fires_faster(page):
    assert number(page, "sim-time") == 0.0 and number(page, "spike-count") == 0
    page.get_by_test_id("slider-I").fill("5")
    page.get_by_test_id("play").click()
    wait_until(page, "sim-time", "x > 1500")
    wait_until(page, "spike-count", "x > 3")
    slow = number(page, "firing-rate")
    # the 3D neuron: particles travel for the spikes, and the soma's colour follows v
    page.wait_for_function("() => window.neurospike.neuron.particles().length > 0")
    colours = set()
    for _ in range(12):
        colours.add(page.evaluate("window.neurospike.neuron.somaColor()"))
        page.wait_for_timeout(40)
    assert len(colours) > 2, colours
    # the phase plane: Izhikevich's nullclines, the v-nullcline u = 0.04 v^2 + 5 v + 140 + I moving with I
    nullcline = "(() => { const d = document.getElementById('phase-plane').data.find(t => t.name === 'v-nullcline');" \
                " return [d.x[0], d.y[0]]; })()"
    v0, u_before = page.evaluate(nullcline)
    assert u_before == pytest.approx(0.04 * v0 ** 2 + 5 * v0 + 140 + 5, rel=1e-6)
    page.get_by_test_id("slider-I").fill("40")
    page.wait_for_function(f"() => {nullcline}[1] > {u_before + 30}")
    start = number(page, "sim-time")
    wait_until(page, "sim-time", f"x > {start + 1200}")  # the rate is counted over the last 1000 ms
    fast = number(page, "firing-rate")
    assert page.evaluate(nullcline)[1] == pytest.approx(u_before + 35, rel=1e-6)
    assert fast > 2 * slow > 0, (slow, fast)
    latencies = page.evaluate("window.neurospike.latencies")
    assert latencies, "a slider change was never seen in a drawn trace"
    pause(page)
    paused = number(page, "sim-time")
    page.wait_for_timeout(400)  # 16 frames' worth
    assert number(page, "sim-time") == paused
    page.get_by_test_id("reset").click()
    wait_until(page, "sim-time", "x === 0")


def test_solver_model_and_fractional_switches(page):
    page.get_by_test_id("play").click()
    wait_until(page, "sim-time", "x > 300")
    page.get_by_test_id("solver-select").select_option("euler")
    configured(page, method="euler")
    before = number(page, "sim-time")
    assert before > 300  # a solver switch keeps the running neuron
    wait_until(page, "sim-time", f"x > {before + 300}")

    page.get_by_test_id("slider-d").fill("2")
    page.wait_for_function("() => window.neurospike.latencies.length > 0")
    assert page.get_by_test_id("value-d").input_value() == "2"
    page.get_by_test_id("value-c").fill("-55.25")  # a typed value, off the slider's grid, reaches the server
    page.get_by_test_id("value-c").press("Enter")
    page.wait_for_function("() => window.neurospike.latencies.length > 1")
    page.get_by_test_id("value-c").fill("99")  # outside [-80, -30]: refused in the page
    page.get_by_test_id("value-c").press("Enter")
    assert "c=99" in page.get_by_test_id("status").inner_text()
    assert page.get_by_test_id("value-c").input_value() == "-55.25"
    page.get_by_test_id("restore").click()  # the preset's values again, from t = 0
    page.wait_for_function("() => window.neurospike.config.controls.d.value === 6 && "
                           "window.neurospike.config.sim_time === 0")
    assert float(page.get_by_test_id("slider-d").input_value()) == 6.0

    page.get_by_test_id("model-select").select_option("lif")
    configured(page, model="lif", fractional=False)
    assert page.get_by_test_id("slider-v_th").count() == 1 and page.get_by_test_id("slider-a").count() == 0
    wait_until(page, "spike-count", "x > 3")  # tonic LIF, I = 2.5 nA: one spike every 16.1 ms

    page.get_by_test_id("model-select").select_option("izhikevich:fractional")
    configured(page, model="izhikevich", fractional=True, method="fast-l1")
    options = page.get_by_test_id("solver-select").locator("option").all_inner_texts()
    assert options == ["fast-l1"]
    page.get_by_test_id("slider-alpha").fill("0.7")
    page.wait_for_function("() => window.neurospike.latencies.length > 0")
    wait_until(page, "spike-count", "x > 2")
    page.get_by_test_id("pause").click()


def test_csv_and_png_export_what_is_shown(page):
    page.get_by_test_id("solver-select").select_option("rk4")
    page.get_by_test_id("dt-input").fill("0.1")
    page.get_by_test_id("dt-input").press("Enter")
    page.wait_for_function("() => window.neurospike.config.dt === 0.1")
    page.get_by_test_id("play").click()
    wait_until(page, "sim-time", "x > 600")
    pause(page)
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["t (ms)", "v (mV)", "u (mV/ms)"]
    table = [[float(x) for x in row] for row in rows[1:]]
    times = [row[0] for row in table]
    assert len(table) > 500 and all(b >= a for a, b in zip(times, times[1:]))
    spikes = [(a, b) for a, b in zip(table, table[1:]) if a[0] == b[0]]  # a spike: two rows at its time
    assert spikes and all(a[1] == pytest.approx(30.0) and b[1] == pytest.approx(-65.0) and b[2] == pytest.approx(
        a[2] + 6.0, abs=1e-4) for a, b in spikes)  # v_peak, then v <- c, u <- u + d (tonic spiking: c -65, d 6)
    assert times[-1] == pytest.approx(number(page, "sim-time"), abs=0.2)
    assert max(row[1] for row in table) > 0 and min(row[1] for row in table) < -60  # spikes and resets shown
    assert times[0] == pytest.approx(0.1)  # everything since the first step (less than the 2 s window)
    page.get_by_test_id("window-select").select_option("200")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))[1:]
    shown = [float(row[0]) for row in rows]
    assert shown[-1] == times[-1] and 199.0 < shown[-1] - shown[0] <= 200.0  # the visible 0.2 s only
    with page.expect_download() as download:
        page.get_by_test_id("export-png").click()
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_tabs_are_independent_sessions_and_a_screenshot(page, browser, server, tmp_path):
    other = browser.new_page(viewport={"width": 1200, "height": 800})
    other.goto(server)
    other.wait_for_function("() => window.neurospike && window.neurospike.connected && window.neurospike.config")
    page.get_by_test_id("slider-I").fill("30")
    page.get_by_test_id("play").click()
    wait_until(page, "spike-count", "x > 20")
    assert number(other, "sim-time") == 0 and number(other, "spike-count") == 0
    assert float(other.get_by_test_id("slider-I").input_value()) == pytest.approx(14.0)  # the preset's input
    other.close()
    page.get_by_test_id("window-select").select_option("500")  # a window where each spike's shape shows
    wait_until(page, "sim-time", "x > 1000")
    page.screenshot(path=str(tmp_path / "app.png"))  # not into the checkout: report/ is make demo's folder
    assert (tmp_path / "app.png").stat().st_size > 50_000
    deadline = time.monotonic() + 30.0  # the closed tab frees its session once the server sees the socket close
    while json.loads(urllib.request.urlopen(server + "api/health", timeout=5).read())["sessions"] != 1:
        assert time.monotonic() < deadline, "the closed tab's session was never freed"
        time.sleep(0.1)
