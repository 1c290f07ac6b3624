"""The live app's server (issue 5, work in progress): health and model listing, and the WebSocket protocol with
FastAPI's test client: a session plays and its simulated time and spikes grow, a larger input fires faster, and
every kind of bad message gets an error reply while the session goes on."""

import json
import time

import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from neurospike import __version__  # noqa: E402
from neurospike.app.server import MAX_MESSAGES_PER_SECOND, create_app  # noqa: E402


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def test_health_and_models(client):
    assert client.get("/api/health").json() == {"status": "ok", "version": __version__}
    listing = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(listing) == {"lif", "izhikevich", "izhikevich2007", "hh", "adex", "fhn"}
    for model in listing.values():
        for name, parameter in model["params"].items():
            low, high = parameter["range"]
            assert low <= parameter["default"] <= high, (model["name"], name)


def chunks_until(ws, seconds):
    """Receive messages for ``seconds``; return the chunk messages."""
    end, chunks = time.monotonic() + seconds, []
    while time.monotonic() < end:
        message = json.loads(ws.receive_text())
        if message["type"] == "chunk":
            chunks.append(message)
    return chunks


def test_play_streams_time_and_spikes_and_input_raises_the_rate(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "configure", "model": "izhikevich", "preset": "tonic_spiking",
                                 "method": "rk4", "dt": 0.1, "speed": 2.0}))
        assert json.loads(ws.receive_text())["type"] == "ack"
        ws.send_text(json.dumps({"type": "set", "name": "I", "value": 5.0}))
        ws.send_text(json.dumps({"type": "play"}))
        chunks = chunks_until(ws, 1.5)
        assert len(chunks) > 10 and chunks[-1]["sim_time"] > chunks[0]["sim_time"]
        low = chunks[-1]["firing_rate"]
        ws.send_text(json.dumps({"type": "set", "name": "I", "value": 30.0}))
        chunks = chunks_until(ws, 2.0)
        assert chunks[-1]["spike_count"] > 0 and chunks[-1]["firing_rate"] > low


@pytest.mark.parametrize("message, fragment", [
    ("not json", "invalid message"),
    (json.dumps({"type": "launch"}), "invalid message"),
    (json.dumps({"type": "play", "extra": 1}), "invalid message"),
    (json.dumps({"type": "set", "name": "a", "value": "high"}), "invalid message"),
    (json.dumps({"type": "set", "name": "a", "value": 5.0}), "outside"),
    (json.dumps({"type": "set", "name": "nope", "value": 1.0}), "unknown parameter"),
    (json.dumps({"type": "configure", "dt": 5.0}), "invalid message"),
    (json.dumps({"type": "configure", "method": "magic"}), "invalid message"),
    (json.dumps({"type": "configure", "model": "nope"}), "unknown model"),
    (json.dumps({"type": "set", "name": "I", "value": 1.0, "pad": "x" * 5000}), "bytes"),
])
def test_bad_messages_get_an_error_and_the_session_goes_on(client, message, fragment):
    with client.websocket_connect("/ws") as ws:
        ws.send_text(message)
        reply = json.loads(ws.receive_text())
        assert reply["type"] == "error" and fragment in reply["message"]
        ws.send_text(json.dumps({"type": "reset"}))
        assert json.loads(ws.receive_text())["type"] == "ack"


def test_a_flood_is_throttled_and_a_disconnect_frees_the_session(client):
    with client.websocket_connect("/ws") as ws:
        for _ in range(MAX_MESSAGES_PER_SECOND + 20):
            ws.send_text(json.dumps({"type": "pause"}))
        replies = [json.loads(ws.receive_text()) for _ in range(MAX_MESSAGES_PER_SECOND + 20)]
        assert sum(r["type"] == "error" for r in replies) >= 20
        ws.send_text(json.dumps({"type": "play"}))
    with client.websocket_connect("/ws") as ws:  # the server still serves new sessions
        ws.send_text(json.dumps({"type": "pause"}))
        assert json.loads(ws.receive_text())["type"] == "ack"
