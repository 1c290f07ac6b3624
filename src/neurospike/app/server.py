"""The live app's server: FastAPI, one WebSocket session per browser tab, the page and plotly.js from the wheel.

Protocol (client -> server, JSON, validated by pydantic; unknown fields, wrong types, out-of-range values,
oversized messages and floods get an ``{"type": "error", "message": ...}`` reply and the session goes on):

    {"type": "play"} | {"type": "pause"} | {"type": "reset"}
    {"type": "set", "name": "<parameter, I or alpha>", "value": <number>}
    {"type": "configure", "model": ..., "preset": ..., "fractional": <bool>, "method": ..., "dt": <ms>,
     "speed": <x real time>}            (every field optional; a new model, preset or order restarts the neuron)

Server -> client: ``config`` (the session's model, controls with values and ranges, phase plane; after connecting
and after each configure or reset), ``phase`` (the phase plane again after a slider moved), ``ack``, ``error``,
and while playing, every ``FRAME_S``: ``{"type": "chunk", "t": [...], "states": {...}, "phase_y": [...],
"spikes": [...], "sim_time", "spike_count", "firing_rate", "revision", "speed"}`` with at most
``POINTS_PER_FRAME`` samples (min/max decimated, so spikes survive); ``revision`` counts the slider changes the
chunk was computed with (the page measures slider-to-trace latency with it). Messages are applied in order, each
between two frames; a message's ``ack`` comes after every chunk computed before it was applied and before any
computed after, so no chunk follows the ack of ``pause``.

Access (``AccessGuard``, behind Starlette's ``TrustedHostMiddleware``): a request whose Host is not one of the app's
names gets 400; a WebSocket handshake whose Origin is not ``http://NAME:PORT`` for one of those names or an allowed
origin, or that has no Origin and no token, gets 403 before any session exists; where the token is required (a
host beyond loopback), every request without it (``?token=`` or the cookie the first page load sets) gets 403.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import math
import secrets
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection

from .. import models
from ..errors import NeurospikeError
from ..live import ALPHA_RANGE, DT_RANGE, FRACTIONAL_LIVE_METHODS, LIVE_METHODS, LiveSimulation, input_range, \
    preset_input

FRAME_S = 1.0 / 40.0  # frames a second: above the 30 the page must draw, with room for jitter
# a frame computed faster than this runs on the event loop: a thread hand-off cost Izhikevich at dt 0.1 ms ~4 % of a
# core (benchmarks/app.py); a longer one, or the first after a configure (it may compile), runs in a thread
INLINE_FRAME_S = 0.005
POINTS_PER_FRAME = 200
MAX_MESSAGE_BYTES = 4096
MAX_MESSAGES_PER_SECOND = 50
MAX_SPEED = 10.0
MAX_STEPS_PER_SECOND = 500_000  # per session: caps its CPU (HH at dt 0.01: 5x, ~40 % of a core); a faster request
# runs slower than asked (see "speed")
MAX_SESSIONS = 16

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",  # the page's own files and /vendor/plotly.min.js: no inline script, no eval, no CDN
    # plotly.js injects its own <style> elements at run time (blocked without 'unsafe-inline'; their hashes change
    # with every plotly release); styles cannot run script, and the page inserts no text it did not write
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",  # the empty favicon and the PNG export's images
    "connect-src 'self'",  # the page's own WebSocket
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
))
SECURITY_HEADERS = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Play(Strict):
    type: Literal["play"]


class Pause(Strict):
    type: Literal["pause"]


class Reset(Strict):
    type: Literal["reset"]


class SetValue(Strict):
    type: Literal["set"]
    name: Annotated[str, Field(min_length=1, max_length=32)]
    value: Annotated[float, Field(allow_inf_nan=False)]


class Configure(Strict):
    type: Literal["configure"]
    model: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    preset: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    fractional: bool | None = None
    method: Literal[LIVE_METHODS + FRACTIONAL_LIVE_METHODS] | None = None  # type: ignore[valid-type]
    dt: Annotated[float, Field(ge=DT_RANGE[0], le=DT_RANGE[1])] | None = None
    speed: Annotated[float, Field(gt=0, le=MAX_SPEED)] | None = None


Message = TypeAdapter(Annotated[Union[Play, Pause, Reset, SetValue, Configure], Field(discriminator="type")])


@functools.cache  # the models are fixed: build the listing once, on the first request
def model_listing():
    """Every model with its presets (and their inputs), parameters (default, unit, range) and live solvers."""
    return [{
        "name": m.name, "title": m.title, "states": list(m.states), "state_units": list(m.state_units),
        "current_unit": m.current_unit, "default_preset": m.default_preset,
        "presets": {name: {"description": p.description, "I": preset_input(m, p), "I_range": input_range(m, p)}
                    for name, p in m.presets.items()},
        "params": {n: {"default": p.default, "unit": p.unit, "range": list(p.range) if p.range else None,
                       "description": p.description} for n, p in m.params.items()},
        "methods": list(LIVE_METHODS), "fractional_methods": list(FRACTIONAL_LIVE_METHODS),
        "alpha_range": list(ALPHA_RANGE),
    } for m in models.REGISTRY.values()]


def session_config(simulation: LiveSimulation, speed: float) -> dict:
    """What the page needs to draw its controls for this session: values, ranges, units, solvers."""
    model = simulation.model
    controls = {name: {"value": simulation.params[name], "range": list(p.range) if p.range else None,
                       "unit": p.unit, "description": p.description} for name, p in model.params.items()}
    controls["I"] = {"value": simulation.amplitude, "range": list(simulation.input_range),
                     "unit": model.current_unit, "description": "input current amplitude"}
    if simulation.fractional:
        controls["alpha"] = {"value": simulation.alpha, "range": list(ALPHA_RANGE), "unit": "",
                             "description": "order of the Caputo derivative (every state)"}
    return {"type": "config", "model": model.name, "title": model.title, "preset": simulation.preset.name,
            "fractional": simulation.fractional, "method": simulation.method, "methods": list(simulation.methods),
            "dt": simulation.dt, "speed": speed, "states": list(model.states),
            "state_units": list(model.state_units), "controls": controls, "phase": simulation.phase_plane(),
            "sim_time": simulation.t, "spike_count": simulation.spike_count}


def _numbers(values) -> str:
    """A JSON array of floats with 7 significant digits (half the bytes of json.dumps's full precision)."""
    values = np.asarray(values, dtype=float)
    if np.all(np.isfinite(values)):  # one formatting call for the whole array: half the time of one per number
        return ("[" + ",".join(["%.7g"] * len(values)) + "]") % tuple(values.tolist())
    return "[" + ",".join("null" if not math.isfinite(x) else f"{x:.7g}" for x in values.tolist()) + "]"


def chunk_message(simulation: LiveSimulation, out: dict, revision: int, speed: float) -> str:
    """One frame's ``chunk`` message (module docstring) as JSON text from ``advance``'s output thinned to
    ``POINTS_PER_FRAME`` rows, its numbers to 7 significant digits."""
    y = out["y"]
    states = ",".join(f'"{name}":{_numbers(y[:, i])}' for i, name in enumerate(simulation.model.states))
    return (f'{{"type":"chunk","t":{_numbers(out["t"])},"states":{{{states}}},'
            f'"phase_y":{_numbers(simulation.phase_y(y))},"spikes":{_numbers(out["spikes"])},'
            f'"sim_time":{simulation.t:.6f},"spike_count":{simulation.spike_count},'
            f'"firing_rate":{simulation.firing_rate():.4f},"revision":{revision},"speed":{speed:.6g}}}')


def frame_speed(simulation: LiveSimulation, speed: float) -> float:
    """The speed a session runs at: the one asked for, capped at ``MAX_STEPS_PER_SECOND`` steps a second."""
    return min(speed, MAX_STEPS_PER_SECOND * simulation.dt / 1000.0)


def static_file(name: str) -> Path:
    return Path(str(resources.files("neurospike.app").joinpath("static", name)))


def plotly_js() -> Path:
    """plotly.min.js from the installed plotly wheel (no CDN, no copy in the repository)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(name: str) -> str:
    """A host name as a URL or a Host header writes it: an IPv6 address in brackets."""
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def token_cookie(port: int) -> str:
    """The token cookie's name; it carries the port because cookies do not (two apps on one host keep theirs)."""
    return f"neurospike-token-{port}"


class AccessGuard:
    """ASGI middleware: refuses a WebSocket handshake from a foreign or missing Origin and, where the token is
    required, any request without it (403, one line, before the app sees it); sets the token cookie when a
    request brings the token in its query; adds ``SECURITY_HEADERS`` to every HTTP response. An accepted
    WebSocket passes through untouched: nothing here runs per message or per frame."""

    def __init__(self, app, origins: set[str], token: str | None, token_required: bool, cookie: str):
        self.app, self.origins, self.token, self.token_required, self.cookie = \
            app, origins, token, token_required, cookie

    def has_token(self, given) -> bool:
        """True if one of ``given`` (strings or None) is the token; compared in constant time."""
        return self.token is not None and any(
            value is not None and secrets.compare_digest(value.encode(), self.token.encode()) for value in given)

    def refusal(self, connection: HTTPConnection, query_token: str | None) -> str | None:
        """Why this request is refused, in one line; None to let it through."""
        token = self.has_token((query_token, connection.cookies.get(self.cookie)))
        if connection.scope["type"] == "websocket":
            origin = connection.headers.get("origin")
            if origin is None and not token:
                return "a WebSocket without an Origin header needs the app's token (?token=... from its URL)"
            if origin is not None and origin.lower() not in self.origins:
                return f"WebSocket from origin {origin[:200]!r} refused; start the app with --allow-origin to allow it"
        if self.token_required and not token:
            return ("this app needs its token: open the URL it printed (with ?token=...)" if query_token is None
                    else "wrong token: open the URL the app printed")
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        connection = HTTPConnection(scope)
        query_token = connection.query_params.get("token")
        refusal = self.refusal(connection, query_token)
        if refusal is not None:
            return await PlainTextResponse(refusal + "\n", status_code=403)(scope, receive, send)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        headers = list(SECURITY_HEADERS)
        if self.has_token((query_token,)):
            headers.append((b"set-cookie", f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(port: int = 8050, host: str = "127.0.0.1", allow_hosts=(), allow_origins=(),
               token: str | None = None) -> FastAPI:
    """The app for a server on ``host``:``port``. It answers the Host names 127.0.0.1, localhost, ::1, ``host``
    and ``allow_hosts``; takes WebSockets from ``http://NAME:PORT`` for those names and from ``allow_origins``;
    ``token`` (None: none) is required beyond loopback and accepted everywhere (module docstring)."""
    from .. import __version__

    app = FastAPI(title="neurospike live", docs_url=None, redoc_url=None, openapi_url=None)
    names = {name.lower() for name in (*LOOPBACK_NAMES, host, *allow_hosts)}
    origins = {f"http://{url_host(name)}:{port}" for name in names} | {o.lower().rstrip("/") for o in allow_origins}
    if port == 80:  # a browser leaves the default port out of the Origin
        origins |= {f"http://{url_host(name)}" for name in names}
    app.add_middleware(AccessGuard, origins=origins, token=token, token_required=token is not None
                       and not is_loopback(host), cookie=token_cookie(port))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=sorted(url_host(name) for name in names),
                       www_redirect=False)  # added last: the outermost, so a foreign Host is refused first
    sessions: set[int] = set()

    @app.get("/")
    def page():
        return HTMLResponse(static_file("index.html").read_text(encoding="utf-8"))

    assets = {p.name for p in static_file("").iterdir() if p.suffix in (".js", ".css")}

    @app.get("/static/{name}")
    def asset(name: str):
        if name not in assets:  # only the page's own files, never a path
            return JSONResponse({"error": f"no static file {name!r}"}, status_code=404)
        return FileResponse(static_file(name))

    @app.get("/vendor/plotly.min.js")
    def plotly():
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/api/health")
    def health():
        return JSONResponse({"status": "ok", "version": __version__, "sessions": len(sessions)})

    @app.get("/api/models")
    def listing():
        return JSONResponse(model_listing())

    @app.websocket("/ws")
    async def session(websocket: WebSocket):
        await websocket.accept()
        if len(sessions) >= MAX_SESSIONS:
            await websocket.send_text(json.dumps({"type": "error", "message": f"the server already runs "
                                                  f"{MAX_SESSIONS} sessions; close a tab and reload"}))
            await websocket.close(code=1013)
            return
        key = id(websocket)
        sessions.add(key)
        live = {"simulation": LiveSimulation(), "playing": False, "speed": 1.0, "revision": 0, "configured": 0,
                "frame_s": math.inf}  # how long the last frame took; inf: not measured since the last configure
        lock = asyncio.Lock()  # a message never changes the neuron while a frame is being computed
        arrivals: list[float] = []

        async def send(payload):
            await websocket.send_text(payload if isinstance(payload, str) else json.dumps(payload))

        async def handle(text: str | None):
            now = time.monotonic()
            arrivals[:] = [a for a in arrivals if a > now - 1.0] + [now]
            if len(arrivals) > MAX_MESSAGES_PER_SECOND:
                return await send({"type": "error", "message": f"more than {MAX_MESSAGES_PER_SECOND} messages "
                                                               f"per second; message dropped"})
            if text is None:
                return await send({"type": "error", "message": "binary message refused; send JSON text"})
            if len(text.encode()) > MAX_MESSAGE_BYTES:
                return await send({"type": "error", "message": f"message of {len(text.encode())} bytes; at most "
                                                               f"{MAX_MESSAGE_BYTES}"})
            try:
                message = Message.validate_json(text)
            except ValidationError as invalid:
                first = invalid.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                return await send({"type": "error", "message": f"invalid message: {where}: {first.get('msg')}"})
            async with lock:  # the ack goes out before any chunk computed after the message was applied
                try:
                    reply = apply(message)
                except NeurospikeError as bad:
                    return await send({"type": "error", "message": str(bad)})
                await send({"type": "ack", "of": message.type, "revision": live["revision"]})
                if reply is not None:
                    await send(reply)
            if isinstance(message, Configure):
                live["configured"] += 1
                warming[:] = [task for task in warming if not task.done()] + [
                    asyncio.create_task(warm_up(live["configured"]))]

        async def warm_up(configured):  # compile the frame of the new solver, dt and speed before play is pressed
            async with lock:
                if configured != live["configured"]:
                    return  # a later configure came first: its own warm-up compiles what is needed
                simulation = live["simulation"]
                await asyncio.to_thread(simulation.warm_up, 1000.0 * FRAME_S * frame_speed(simulation, live["speed"]),
                                        POINTS_PER_FRAME)

        def apply(message):
            simulation = live["simulation"]
            if isinstance(message, Play):
                live["playing"] = True
            elif isinstance(message, Pause):
                live["playing"] = False
            elif isinstance(message, Reset):
                simulation.reset()
                return session_config(simulation, live["speed"])
            elif isinstance(message, SetValue):
                simulation.set_value(message.name, message.value)
                live["revision"] += 1
                return {"type": "phase", "phase": simulation.phase_plane()}
            else:
                if message.model is not None or message.preset is not None or message.fractional is not None:
                    model = message.model or simulation.model.name
                    same = model == simulation.model.name
                    simulation = LiveSimulation(
                        model, preset=message.preset or (simulation.preset.name if same else None),
                        fractional=simulation.fractional if message.fractional is None else message.fractional,
                        method=message.method, dt=message.dt)
                    live["simulation"] = simulation
                else:
                    simulation.configure(method=message.method, dt=message.dt)
                if message.speed is not None:
                    live["speed"] = message.speed
                live["revision"] += 1
                live["frame_s"] = math.inf  # the next frame may compile: off the event loop
                return session_config(simulation, live["speed"])
            return None

        async def frame():
            async with lock:  # sent inside: every chunk computed before a message is applied precedes its ack
                if not live["playing"]:
                    return  # a pause applied while this frame waited for the lock: no chunk after its ack
                simulation = live["simulation"]
                speed = frame_speed(simulation, live["speed"])
                revision = live["revision"]
                began = time.perf_counter()
                if live["frame_s"] < INLINE_FRAME_S:  # handing a short frame to a thread costs more than it
                    out = simulation.advance(1000.0 * FRAME_S * speed, POINTS_PER_FRAME)
                else:  # one that may compile or take long: the event loop goes on (other tabs, arriving messages)
                    out = await asyncio.to_thread(simulation.advance, 1000.0 * FRAME_S * speed, POINTS_PER_FRAME)
                live["frame_s"] = time.perf_counter() - began
                await send(chunk_message(simulation, out, revision, speed))
                if out["halted"]:
                    live["playing"] = False
                    await send({"type": "error", "message": out["halted"]})

        async def stream():
            due = time.monotonic()
            while True:
                due = max(due + FRAME_S, time.monotonic() - FRAME_S)  # a steady rate; no burst after a stall
                if live["playing"]:
                    try:
                        await frame()
                    except (WebSocketDisconnect, RuntimeError):
                        return  # the tab closed mid-frame (RuntimeError: a send raced the close)
                    except Exception as failure:  # noqa: BLE001 - a bug must not end the session silently
                        live["playing"] = False
                        await send({"type": "error", "message": f"simulation stopped: {failure}"})
                await asyncio.sleep(max(0.0, due - time.monotonic()))

        streamer, warming = None, []
        try:
            await send(session_config(live["simulation"], live["speed"]))
            warming.append(asyncio.create_task(warm_up(0)))
            streamer = asyncio.create_task(stream())
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                await handle(received.get("text"))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the tab closed (RuntimeError: a send raced the close)
        finally:
            for task in (streamer, *warming):
                if task is not None:
                    task.cancel()
            sessions.discard(key)

    return app
