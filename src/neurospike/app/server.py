"""The live app's server (issue 5, work in progress): FastAPI with a WebSocket per browser tab.

Protocol (client -> server, JSON, validated by pydantic; unknown fields, wrong types, out-of-range values,
oversized messages and floods get an ``{"type": "error", "message": ...}`` reply and the session goes on):

    {"type": "play"} | {"type": "pause"} | {"type": "reset"}
    {"type": "set", "name": "<parameter or I>", "value": <number>}
    {"type": "configure", "model": "...", "preset": "...", "method": "...", "dt": <ms>, "speed": <x real time>}

Server -> client while playing, about every ``FRAME_S``: ``{"type": "chunk", "t": [...], "states": {...},
"spikes": [...], "sim_time": ..., "spike_count": ..., "firing_rate": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Literal, Union

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .. import models
from ..errors import NeurospikeError
from ..live import LIVE_METHODS, LiveSimulation

FRAME_S = 1.0 / 30.0
MAX_MESSAGE_BYTES = 4096
MAX_MESSAGES_PER_SECOND = 50
MAX_DT_MS, MIN_DT_MS = 0.5, 0.001
MAX_SPEED = 10.0


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
    model: Annotated[str, Field(max_length=32)] | None = None
    preset: Annotated[str, Field(max_length=64)] | None = None
    method: Literal[LIVE_METHODS] | None = None  # type: ignore[valid-type]
    dt: Annotated[float, Field(ge=MIN_DT_MS, le=MAX_DT_MS)] | None = None
    speed: Annotated[float, Field(gt=0, le=MAX_SPEED)] | None = None


Message = TypeAdapter(Annotated[Union[Play, Pause, Reset, SetValue, Configure], Field(discriminator="type")])


def parameter_listing():
    """Every model with its presets and parameters (default, unit, range) for the page's controls."""
    return [{
        "name": m.name, "title": m.title, "states": list(m.states), "current_unit": m.current_unit,
        "presets": list(m.presets), "default_preset": m.default_preset,
        "params": {n: {"default": p.default, "unit": p.unit, "range": list(p.range) if p.range else None,
                       "description": p.description} for n, p in m.params.items()},
    } for m in models.REGISTRY.values()]


def create_app() -> FastAPI:
    from .. import __version__

    app = FastAPI(title="neurospike live", docs_url=None, redoc_url=None)

    @app.get("/api/health")
    def health():
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/api/models")
    def listing():
        return JSONResponse(parameter_listing())

    @app.websocket("/ws")
    async def session(websocket: WebSocket):
        await websocket.accept()
        simulation = LiveSimulation()
        state = {"playing": False, "speed": 1.0}
        arrivals: list[float] = []

        async def error(message: str):
            await websocket.send_text(json.dumps({"type": "error", "message": message}))

        async def handle(text: str):
            now = time.monotonic()
            arrivals[:] = [a for a in arrivals if a > now - 1.0] + [now]
            if len(arrivals) > MAX_MESSAGES_PER_SECOND:
                return await error(f"more than {MAX_MESSAGES_PER_SECOND} messages per second; message dropped")
            if len(text.encode()) > MAX_MESSAGE_BYTES:
                return await error(f"message of {len(text.encode())} bytes; at most {MAX_MESSAGE_BYTES}")
            try:
                message = Message.validate_json(text)
            except ValidationError as invalid:
                first = invalid.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                return await error(f"invalid message: {where}: {first.get('msg')}")
            nonlocal simulation
            try:
                if isinstance(message, Play):
                    state["playing"] = True
                elif isinstance(message, Pause):
                    state["playing"] = False
                elif isinstance(message, Reset):
                    simulation.reset()
                elif isinstance(message, SetValue):
                    _set(simulation, message.name, message.value)
                else:
                    simulation = _configure(simulation, message)
                    if message.speed is not None:
                        state["speed"] = message.speed
            except NeurospikeError as bad:
                return await error(str(bad))
            await websocket.send_text(json.dumps({"type": "ack", "sim_time": simulation.t}))

        async def stream():
            while True:
                began = time.monotonic()
                if state["playing"]:
                    out = await asyncio.to_thread(simulation.advance, 1000.0 * FRAME_S * state["speed"])
                    await websocket.send_text(json.dumps({
                        "type": "chunk", "t": out["t"].tolist(),
                        "states": {k: v.tolist() for k, v in out["states"].items()},
                        "spikes": out["spikes"].tolist(), "sim_time": out["sim_time"],
                        "spike_count": len(simulation.spike_times), "firing_rate": simulation.firing_rate()}))
                await asyncio.sleep(max(0.0, FRAME_S - (time.monotonic() - began)))

        streamer = asyncio.create_task(stream())
        try:
            while True:
                await handle(await websocket.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            streamer.cancel()

    return app


def _set(simulation: LiveSimulation, name: str, value: float):
    """A slider: the input amplitude ``I`` or a parameter, within its declared range."""
    if name == "I":
        if abs(value) > 1e4:
            raise NeurospikeError(f"I={value:g} is outside [-10000, 10000]")
        simulation.amplitude = value
        return
    parameter = simulation.model.params.get(name)
    if parameter is None:
        raise NeurospikeError(f"unknown parameter {name!r} for model {simulation.model.name!r}")
    if parameter.range and not parameter.range[0] <= value <= parameter.range[1]:
        raise NeurospikeError(f"{name}={value:g} is outside [{parameter.range[0]:g}, {parameter.range[1]:g}]")
    simulation.set_param(name, value)


def _configure(simulation: LiveSimulation, message: Configure) -> LiveSimulation:
    model = message.model or simulation.model_name
    if model not in models.REGISTRY:
        raise NeurospikeError(f"unknown model {model!r}")
    preset = message.preset if message.preset is not None else (simulation.preset if model ==
                                                                   simulation.model_name else None)
    return LiveSimulation(model, preset=preset, method=message.method or simulation.method,
                          dt=message.dt or simulation.dt, amplitude=simulation.amplitude)
