"""The live app's server with FastAPI's test client: the HTTP routes (health, model listing, the page, plotly.js,
no path escapes) and the WebSocket protocol of :mod:`neurospike.app.server`.

Proved: a session starts with the default config; play streams chunks whose simulated time advances by exactly
speed × frame (rounded to the grid), whose spike counts add up and whose firing rate is the count of the
streamed spikes in the last second; a larger input fires faster and the chunks' revision follows the slider;
pause stops the stream, reset restarts time; configure keeps time for a new solver and restarts for a new model,
preset or order; every malformed, out-of-range or unknown message, an oversized one, a binary frame and a flood
get an error reply, change nothing and the session goes on; a disconnect frees its session and the session cap
holds.
"""

import json
import time

import anyio
import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from neurospike import __version__, models  # noqa: E402
from neurospike.app import server  # noqa: E402
from neurospike.live import FRACTIONAL_LIVE_METHODS, LIVE_METHODS  # noqa: E402

MODELS = {"lif", "izhikevich", "izhikevich2007", "hh", "adex", "fhn"}
FRAME_MS = 1000.0 * server.FRAME_S  # simulated ms per frame at speed 1


@pytest.fixture(scope="module")
def client():
    """The test client's Host is `testserver`: named as the app's own, and its WebSockets come from that origin
    (tests/test_app_security.py tests the refusals)."""
    return TestClient(server.create_app(8050, allow_hosts=["testserver"]),
                      headers={"origin": "http://testserver:8050"})


def receive(ws, timeout=20.0):
    """The next server message (decoded), or TimeoutError after ``timeout`` s (the test client's own receive
    waits forever)."""

    async def get():
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    message = ws.portal.call(get)
    if message["type"] == "websocket.close":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", ""))
    return json.loads(message["text"])


def send(ws, **message):
    ws.send_text(json.dumps(message))


def wait_for(ws, kind, chunks=None, **fields):
    """Receive until a message of type ``kind`` (with these fields); chunks on the way go to ``chunks``."""
    for _ in range(1000):
        message = receive(ws)
        if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
            return message
        if message["type"] == "chunk" and chunks is not None:
            chunks.append(message)
        elif message["type"] not in ("chunk", "phase", "config", "ack"):
            raise AssertionError(f"unexpected {message}")
    raise AssertionError(f"no {kind} message")


def request(ws, chunks=None, **message):
    """Send ``message`` and return its ack and, for reset/set/configure, the reply after it (chunks arriving
    meanwhile go to ``chunks``)."""
    send(ws, **message)
    ack = wait_for(ws, "ack", chunks, of=message["type"])
    reply = {"set": "phase", "reset": "config", "configure": "config"}.get(message["type"])
    return ack, (wait_for(ws, reply, chunks) if reply else None)


def pause(ws, chunks=None):
    """Pause: the chunks computed before it arrive before its ack (into ``chunks``), and none after it (nothing
    within 0.5 s; a frame is due every 25 ms)."""
    send(ws, type="pause")
    wait_for(ws, "ack", chunks, of="pause")
    with pytest.raises(TimeoutError):
        late = receive(ws, timeout=0.5)
        raise AssertionError(f"the stream goes on after the ack of pause: {late}")


def chunks_until(ws, done):
    chunks = []
    while not chunks or not done(chunks):
        message = receive(ws)
        assert message["type"] == "chunk", message
        chunks.append(message)
    return chunks


def sessions(client):
    return client.get("/api/health").json()["sessions"]


def wait_for_sessions(client, count, seconds=5.0):
    end = time.monotonic() + seconds
    while sessions(client) != count and time.monotonic() < end:
        time.sleep(0.02)
    return sessions(client)


# HTTP

def test_health_and_model_listing(client):
    assert client.get("/api/health").json() == {"status": "ok", "version": __version__, "sessions": 0}
    listing = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(listing) == MODELS
    for model in listing.values():
        assert model["methods"] == list(LIVE_METHODS) and model["fractional_methods"] == list(FRACTIONAL_LIVE_METHODS)
        assert model["alpha_range"] == [0.3, 0.99] and model["default_preset"] in model["presets"]
        for name, parameter in model["params"].items():
            low, high = parameter["range"]
            assert low <= parameter["default"] <= high, (model["name"], name)
        for name, preset in model["presets"].items():
            low, high = preset["I_range"]
            assert low < 0 < high and low <= preset["I"] <= high, (model["name"], name)
    assert listing["izhikevich"]["presets"]["tonic_spiking"]["I"] == 14.0
    assert listing["lif"]["presets"]["tonic"] == {"description": models.get("lif").presets["tonic"].description,
                                                  "I": 2.5, "I_range": [-10.0, 10.0]}


def test_plotly_is_served_and_nothing_else_escapes_static(client):
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and "javascript" in plotly.headers["content-type"]
    assert len(plotly.content) > 2**20 and b"plotly" in plotly.content[:2000].lower()
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py", "/static/server.py",
                 "/static/anything-else", "/static/index.html.bak", "/vendor/other.js"):
        assert client.get(path).status_code == 404, path


@pytest.mark.xfail(not server.static_file("index.html").exists(), strict=False,
                   reason="static/index.html is being written in parallel")
def test_the_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'data-testid="trace-v"' in page.text


# WebSocket: the stream

def test_connect_sends_the_default_config(client):
    with client.websocket_connect("/ws") as ws:
        config = receive(ws)
        assert config["type"] == "config"
        assert (config["model"], config["preset"], config["method"], config["fractional"]) == \
            ("izhikevich", "tonic_spiking", "rk4", False)
        assert config["methods"] == list(LIVE_METHODS) and config["dt"] == 0.25 and config["speed"] == 1.0
        assert config["sim_time"] == 0.0 and config["spike_count"] == 0 and config["states"] == ["v", "u"]
        controls = config["controls"]
        expected = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 6.0, "I": 14.0}  # Izhikevich 2004 Fig. 1(A)
        for name, value in expected.items():
            low, high = controls[name]["range"]
            assert controls[name]["value"] == value and low <= value <= high, name
        assert controls["I"]["range"] == [-50.0, 50.0] and "alpha" not in controls
        assert config["phase"]["x"] == "v" and len(config["phase"]["curves"]) == 2


def test_play_streams_and_a_larger_input_fires_faster_then_pause_and_reset(client):
    speed, dt = 10.0, 0.25  # 333.3 ms of simulated time per frame (1333.3 steps)
    with client.websocket_connect("/ws") as ws:
        assert receive(ws)["type"] == "config"
        assert request(ws, type="configure", speed=speed)[0]["revision"] == 1
        ack, phase = request(ws, type="set", name="I", value=10.0)
        assert ack["revision"] == 2 and phase["phase"]["x"] == "v"
        send(ws, type="play")
        chunks = []
        wait_for(ws, "ack", chunks, of="play")
        chunks += chunks_until(ws, lambda c: c[-1]["sim_time"] >= 3000.0)
        for k, chunk in enumerate(chunks, start=1):
            # every frame advances speed × frame, rounded to the grid with the remainder carried
            assert chunk["sim_time"] == pytest.approx(dt * round(k * FRAME_MS * speed / dt), abs=1e-6)
            assert chunk["revision"] == 2 and chunk["speed"] == speed
            assert 0 < len(chunk["t"]) <= server.POINTS_PER_FRAME and len(chunk["states"]["v"]) == len(chunk["t"])
            assert chunk["t"][-1] <= chunk["sim_time"] + 1e-3 and len(chunk["phase_y"]) == len(chunk["t"])
        assert_rate_is_the_streamed_count(chunks)
        low = chunks[-1]["firing_rate"]
        assert low > 0

        ack, _ = request(ws, chunks, type="set", name="I", value=40.0)
        assert ack["revision"] == 3
        later = chunks_until(ws, lambda c: c[-1]["revision"] == 3 and c[-1]["sim_time"] >= later_start(c) + 1100)
        revisions = [c["revision"] for c in chunks + later]
        assert revisions == sorted(revisions) and revisions[-1] == 3
        chunks += later
        assert_rate_is_the_streamed_count(chunks)
        assert chunks[-1]["firing_rate"] > 2 * low  # measured 111 Hz against 26 Hz

        pause(ws, chunks)
        assert_rate_is_the_streamed_count(chunks)

        _, config = request(ws, type="reset")
        assert config["sim_time"] == 0.0 and config["spike_count"] == 0
        assert config["controls"]["I"]["value"] == 40.0 and config["speed"] == speed  # the sliders stay


def later_start(chunks):
    return next(c["sim_time"] for c in chunks if c["revision"] == 3)


def assert_rate_is_the_streamed_count(chunks):
    """The last chunk's spike count is every spike streamed so far and its firing rate the number of them in the
    last second of simulated time (spike times are sent with 7 digits: ±0.01 ms at the window's edge)."""
    spikes = [s for c in chunks for s in c["spikes"]]
    last = chunks[-1]
    assert last["spike_count"] == len(spikes) > 0
    counts = [c["spike_count"] for c in chunks]
    assert counts == sorted(counts)
    edge = last["sim_time"] - 1000.0
    assert last["sim_time"] > 1000.0
    assert sum(s > edge + 0.01 for s in spikes) <= last["firing_rate"] <= sum(s > edge - 0.01 for s in spikes)


def test_configure_keeps_time_for_a_new_solver_and_restarts_for_a_new_model(client):
    with client.websocket_connect("/ws") as ws:
        assert receive(ws)["type"] == "config"
        request(ws, type="configure", speed=5.0)
        send(ws, type="play")
        chunks = []
        wait_for(ws, "ack", chunks, of="play")
        chunks += chunks_until(ws, lambda c: len(c) >= 3 and c[-1]["spike_count"] > 0)
        pause(ws, chunks)
        time_reached, spikes = chunks[-1]["sim_time"], chunks[-1]["spike_count"]
        assert time_reached > 0 and spikes > 0

        _, config = request(ws, type="configure", method="euler")
        assert (config["method"], config["model"], config["preset"]) == ("euler", "izhikevich", "tonic_spiking")
        assert config["sim_time"] == pytest.approx(time_reached, abs=1e-6) and config["spike_count"] == spikes
        _, config = request(ws, type="configure", dt=0.1)
        assert config["dt"] == 0.1 and config["sim_time"] == pytest.approx(time_reached, abs=1e-6)

        _, config = request(ws, type="configure", preset="phasic_spiking")
        assert (config["preset"], config["sim_time"], config["spike_count"]) == ("phasic_spiking", 0.0, 0)
        assert config["controls"]["b"]["value"] == 0.25 and config["controls"]["I"]["value"] == 0.5

        _, config = request(ws, type="configure", fractional=True)
        assert config["fractional"] is True and config["sim_time"] == 0.0 and config["preset"] == "phasic_spiking"
        assert config["methods"] == ["fast-l1"] and config["method"] == "fast-l1"
        assert config["controls"]["alpha"]["value"] == 0.8 and config["controls"]["alpha"]["range"] == [0.3, 0.99]
        ack, _ = request(ws, type="set", name="alpha", value=0.6)
        send(ws, type="play")
        wait_for(ws, "ack", of="play")
        chunk = wait_for(ws, "chunk")
        assert chunk["sim_time"] > 0 and chunk["revision"] == ack["revision"]
        pause(ws)

        _, config = request(ws, type="configure", model="lif", fractional=False)
        assert (config["model"], config["preset"], config["fractional"], config["sim_time"]) == \
            ("lif", "tonic", False, 0.0)
        assert (config["method"], config["methods"]) == ("rk4", list(LIVE_METHODS))
        assert set(config["controls"]) == {"C", "g_L", "E_L", "v_th", "v_reset", "t_ref", "I"}
        assert config["phase"]["y"] == "dv/dt"


def test_a_run_that_turns_non_finite_stops_the_stream_with_an_error(client):
    with client.websocket_connect("/ws") as ws:
        receive(ws)
        _, config = request(ws, type="configure", model="hh", method="euler", dt=0.5)  # unstable at 0.5 ms
        assert (config["model"], config["method"], config["dt"]) == ("hh", "euler", 0.5)
        send(ws, type="play")
        chunks = []
        error = wait_for(ws, "error", chunks)
        assert "non-finite" in error["message"] and chunks and chunks[-1]["type"] == "chunk"
        halted_at = chunks[-1]["sim_time"]
        assert 0 < halted_at < 50.0 and all(x is not None for x in chunks[-1]["states"]["v"])
        with pytest.raises(TimeoutError):  # playing stopped
            receive(ws, timeout=0.3)
        send(ws, type="play")  # still halted: one empty chunk at the same time and the error again
        chunk = wait_for(ws, "chunk")
        assert chunk["sim_time"] == halted_at and chunk["t"] == []
        assert "non-finite" in wait_for(ws, "error")["message"]
        _, config = request(ws, type="reset")
        assert config["sim_time"] == 0.0
        request(ws, type="configure", dt=0.01)  # stable: the same compiled solver runs again
        send(ws, type="play")
        chunks = []
        wait_for(ws, "ack", chunks, of="play")
        chunks += chunks_until(ws, lambda c: c[-1]["sim_time"] > 50.0)
        pause(ws)


# WebSocket: bad input

BAD_MESSAGES = [
    ("not json", "Invalid JSON"),
    ("[]", "object"),
    ("{}", "'type'"),
    ('{"type": "launch"}', "'launch'"),
    ('{"type": "play", "extra": 1}', "extra"),
    ('{"type": "set", "value": 1.0}', "set.name"),
    ('{"type": "set", "name": "a", "value": "high"}', "set.value"),
    ('{"type": "set", "name": "a", "value": "1.0"}', "set.value"),  # strict: no numbers in strings
    ('{"type": "set", "name": "a", "value": true}', "set.value"),
    ('{"type": "configure", "fractional": "yes"}', "configure.fractional"),
    ('{"type": "set", "name": "I", "value": NaN}', "finite"),
    ('{"type": "set", "name": "I", "value": Infinity}', "finite"),
    ('{"type": "set", "name": "I", "value": -Infinity}', "finite"),
    ('{"type": "set", "name": "a", "value": 5.0}', "a=5 is outside [-0.1, 1]"),
    ('{"type": "set", "name": "I", "value": 500}', "I=500 is outside [-50, 50]"),
    ('{"type": "set", "name": "nope", "value": 1.0}', "unknown parameter 'nope'"),
    ('{"type": "set", "name": "alpha", "value": 0.5}', "integer-order"),
    ('{"type": "configure", "dt": 5.0}', "configure.dt"),
    ('{"type": "configure", "dt": 0.0005}', "configure.dt"),
    ('{"type": "configure", "speed": 0}', "configure.speed"),
    ('{"type": "configure", "speed": 11}', "configure.speed"),
    ('{"type": "configure", "method": "magic"}', "configure.method"),
    ('{"type": "configure", "method": "fast-l1"}', "'fast-l1'"),
    ('{"type": "configure", "fractional": true, "method": "rk4"}', "'rk4'"),
    ('{"type": "configure", "model": "nope"}', "unknown model 'nope'"),
    ('{"type": "configure", "preset": "nope"}', "unknown preset 'nope'"),
    ('{"type": "configure", "model": "lif", "preset": "tonic_spiking"}', "unknown preset 'tonic_spiking'"),
    (json.dumps({"type": "set", "name": "I", "value": 1.0, "pad": "x" * 5000}), "at most 4096"),
    (b'{"type": "play"}', "binary"),
]


@pytest.mark.parametrize("message, fragment", BAD_MESSAGES)
def test_a_bad_message_gets_an_error_changes_nothing_and_the_session_goes_on(client, message, fragment):
    with client.websocket_connect("/ws") as ws:
        config = receive(ws)
        if isinstance(message, bytes):
            ws.send_bytes(message)
        else:
            ws.send_text(message)
        reply = receive(ws)
        assert reply["type"] == "error" and fragment in reply["message"], reply
        ack, after = request(ws, type="reset")
        assert ack["revision"] == 0  # no change was counted
        for key in ("model", "preset", "method", "dt", "speed", "fractional", "controls"):
            assert after[key] == config[key], key


def test_a_flood_is_throttled_and_the_session_goes_on(client):
    with client.websocket_connect("/ws") as ws:
        assert receive(ws)["type"] == "config"
        request(ws, type="pause")  # after the warm-up compile, so the flood arrives within one second
        for _ in range(70):
            send(ws, type="pause")
        replies = [receive(ws) for _ in range(70)]
        floods = [r for r in replies if r["type"] == "error"]
        assert len(floods) >= 20 and all("messages per second" in r["message"] for r in floods)
        assert len(replies) - len(floods) <= server.MAX_MESSAGES_PER_SECOND
        time.sleep(1.05)
        _, config = request(ws, type="reset")
        assert config["sim_time"] == 0.0


def test_a_disconnect_mid_stream_frees_the_session(client):
    assert wait_for_sessions(client, 0) == 0
    with client.websocket_connect("/ws") as ws:
        receive(ws)
        assert sessions(client) == 1
        request(ws, type="configure", speed=10.0)
        send(ws, type="play")
        wait_for(ws, "chunk")
        wait_for(ws, "chunk")
    assert wait_for_sessions(client, 0) == 0
    with client.websocket_connect("/ws") as ws:  # the server still serves
        receive(ws)
        send(ws, type="play")
        assert wait_for(ws, "chunk")["sim_time"] > 0
    assert wait_for_sessions(client, 0) == 0


def test_sessions_beyond_the_cap_are_refused(client, monkeypatch):
    monkeypatch.setattr(server, "MAX_SESSIONS", 2)  # read when a session opens
    assert wait_for_sessions(client, 0) == 0
    with client.websocket_connect("/ws") as first, client.websocket_connect("/ws") as second:
        assert receive(first)["type"] == receive(second)["type"] == "config"
        with client.websocket_connect("/ws") as third:
            refusal = receive(third)
            assert refusal["type"] == "error" and "2 sessions" in refusal["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                receive(third)
            assert closed.value.code == 1013
        assert sessions(client) == 2
        request(first, type="reset")  # the open sessions go on
    assert wait_for_sessions(client, 0) == 0
    with client.websocket_connect("/ws") as ws:
        assert receive(ws)["type"] == "config"
