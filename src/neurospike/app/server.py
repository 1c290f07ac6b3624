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
chunk was computed with (the page measures slider-to-trace latency with it).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .. import models
from ..errors import NeurospikeError
from ..live import ALPHA_RANGE, DT_RANGE, FRACTIONAL_LIVE_METHODS, LIVE_METHODS, LiveSimulation, decimate, \
    input_range, preset_input

FRAME_S = 1.0 / 40.0  # frames a second: above the 30 the page must draw, with room for jitter
POINTS_PER_FRAME = 200
MAX_MESSAGE_BYTES = 4096
MAX_MESSAGES_PER_SECOND = 50
MAX_SPEED = 10.0
MAX_STEPS_PER_SECOND = 100_000  # per session: caps its CPU; a faster request runs slower than asked (see "speed")
MAX_SESSIONS = 16


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
    return "[" + ",".join("null" if not math.isfinite(x) else f"{x:.7g}" for x in np.asarray(values).tolist()) + "]"


def chunk_message(simulation: LiveSimulation, out: dict, revision: int, speed: float) -> str:
    """One frame's ``chunk`` message (module docstring) as JSON text, its numbers to 7 significant digits."""
    keep = decimate(out["y"], 0, POINTS_PER_FRAME)
    y = out["y"][keep]
    states = ",".join(f'"{name}":{_numbers(y[:, i])}' for i, name in enumerate(simulation.model.states))
    return (f'{{"type":"chunk","t":{_numbers(out["t"][keep])},"states":{{{states}}},'
            f'"phase_y":{_numbers(simulation.phase_y(y))},"spikes":{_numbers(out["spikes"])},'
            f'"sim_time":{simulation.t:.6f},"spike_count":{simulation.spike_count},'
            f'"firing_rate":{simulation.firing_rate():.4f},"revision":{revision},"speed":{speed:.6g}}}')


def static_file(name: str) -> Path:
    return Path(str(resources.files("neurospike.app").joinpath("static", name)))


def plotly_js() -> Path:
    """plotly.min.js from the installed plotly wheel (no CDN, no copy in the repository)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app() -> FastAPI:
    from .. import __version__

    app = FastAPI(title="neurospike live", docs_url=None, redoc_url=None, openapi_url=None)
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
        live = {"simulation": LiveSimulation(), "playing": False, "speed": 1.0, "revision": 0}
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
            async with lock:
                try:
                    reply = apply(message)
                except NeurospikeError as bad:
                    return await send({"type": "error", "message": str(bad)})
            await send({"type": "ack", "of": message.type, "revision": live["revision"]})
            if reply is not None:
                await send(reply)
            if isinstance(message, Configure):
                warming[:] = [task for task in warming if not task.done()] + [asyncio.create_task(warm_up())]

        async def warm_up():  # compile the new solver's chunk before play is pressed
            async with lock:
                await asyncio.to_thread(live["simulation"].warm_up)

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
                return session_config(simulation, live["speed"])
            return None

        async def frame():
            async with lock:
                simulation = live["simulation"]
                speed = min(live["speed"], MAX_STEPS_PER_SECOND * simulation.dt / 1000.0)
                revision = live["revision"]
                out = await asyncio.to_thread(simulation.advance, 1000.0 * FRAME_S * speed)
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
            warming.append(asyncio.create_task(warm_up()))
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
