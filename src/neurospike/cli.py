"""The command line: ``neurospike models | simulate | compare | convergence | sweep-alpha | paper | app`` (README,
"Command line").

Every bad input ends the same way, before anything runs or is written: one line ``neurospike: error: …`` on
stderr and exit code 2. A run stopped by the runaway-spiking guard writes what it computed, prints the time and
rate on stderr and exits with code 3.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import jax
import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer._click.exceptions import ClickException  # typer >= 0.29 vendors click (pinned < 0.30)

from . import currents
from . import methods as method_registry
from . import reports
from . import models as registry
from .comparison import EVENT_DESCRIPTIONS
from .comparison import compare as run_comparison
from . import maps as _maps
from .compiled import enable_disk_cache
from .comparison import convergence as run_convergence
from .errors import MemoryLimitError, NeurospikeError
from .fitting import FIT_METHODS, LOSSES
from .paper import PAPERS, splitting_pinn_report
from .paper import cases as paper_cases
from .pinn.engine import SPLITTING_CHOICES, PinnOptions
from .simulate import resolve as resolve_problem
from .simulate import simulate as run_simulation
from .alpha_sweep import check_alphas
from .alpha_sweep import sweep_alpha as run_sweep_alpha

OUTPUT_FORMATS = (".csv", ".npz", ".json")
PLOT_FORMATS = (".png", ".pdf", ".svg")
USAGE_ERROR_CODE = 2
_ARGUMENTS: list[str] = []  # the command line, for the reports that quote it
STOPPED_EARLY_CODE = 3

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate spiking neurons with classical solvers and compare them against a reference.")


# --- help texts, made from the registries ----------------------------------------------------------------------
def _choices(names) -> str:
    return ", ".join(names)


def _unit(unit: str) -> str:
    return "dimensionless" if unit in ("", "1") else unit


MODEL_HELP = f"Model: {_choices(registry.REGISTRY)} (`neurospike models MODEL` shows one in full)."
PRESET_HELP = ("Preset of the model, a named experiment (parameters, input current, t_end, dt); default the model's "
               f"own ({_choices(f'{m.name}: {m.default_preset}' for m in registry.REGISTRY.values())}); "
               "`neurospike models MODEL` lists them with their descriptions.")
PARAM_HELP = ("Parameter NAME=VALUE (repeatable), in the parameter's unit, which depends on the model: `neurospike "
              "models MODEL` lists names, units and ranges.")
INITIAL_HELP = ("Initial state NAME=VALUE (repeatable), in the state's unit, which depends on the model (`neurospike "
                "models MODEL`).")
CURRENT_HELP = escape(  # the spec syntax's [optional] parts are no rich markup
    "Input current I(t), in the model's current unit (" + _choices(
        f"{m.name} {_unit(m.current_unit)}" for m in registry.REGISTRY.values()) + "; `neurospike models MODEL`): "
    "a number (a constant current, e.g. --current 10) or " + _choices(
        currents.spec_syntax(kind) for kind in currents.KINDS) + " (times and tau in ms, frequency in Hz, phase in "
    "radians), or a JSON segment file.")
EVENTS_HELP = "; ".join(f"{mode}: {text}" for mode, text in EVENT_DESCRIPTIONS.items())
PINN_HELP = ("PINN option NAME=VALUE (repeatable; window in ms), one of " + _choices(
    f.name for f in dataclasses.fields(PinnOptions)) + "; e.g. --pinn widths=32,32 --pinn adam_steps=500.")
SPLITTING_HELP = (f"PINN operator splitting: {_choices(SPLITTING_CHOICES)} (splitting-pinn: lie, strang; fpinn: lie, "
                  "none).")
WINDOW_HELP = "PINN window length (ms); default the method's."
REPORT_HELP = ("Report folder; created if missing once the run succeeded. A rerun replaces the report there "
               "(its manifest .neurospike-report.json lists the files); a non-empty folder without one is refused.")
# what compare and convergence take: every method but the reference they are measured against and the
# fractional ones (they have no --alpha)
COMPARABLE = [name for name, m in method_registry.METHODS.items() if m.family != "reference" and not m.fractional]


# --- parsing the options ----------------------------------------------------------------------------------------
def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise NeurospikeError(f"{option} {text!r} is not a number") from None


def _items(text: str, option: str, example: str) -> list[str]:
    """``"a, b,c"`` -> ["a", "b", "c"]."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise NeurospikeError(f"{option} {text!r}: give a comma-separated list, e.g. {option} {example}")
    return items


def _numbers(text: str, option: str) -> list[float]:
    """``"10,20,30"`` -> [10.0, 20.0, 30.0]."""
    return [_number(item, option) for item in _items(text, option, "10,20,30")]


def _assignments(items: list[str] | None, option: str, model: str | None = None) -> dict[str, float]:
    """Repeated ``NAME=VALUE`` options -> {NAME: VALUE}; a value that is no number is refused naming the unit that
    NAME has in ``model`` (``--initial``: a state, any other option: a parameter)."""
    values = {}
    for item in items or []:
        name, equals, text = (part.strip() for part in item.partition("="))
        if not equals or not name:
            raise NeurospikeError(f"{option} {item!r}: use NAME=VALUE, e.g. {option} a=0.02")
        try:
            values[name] = float(text)
        except ValueError:
            raise NeurospikeError(f"{option} {name}={text!r} is not a number{_unit_hint(option, name, model)}") \
                from None
    return values


def _unit_hint(option: str, name: str, model_name: str | None) -> str:
    """``"; C is in pF (izhikevich2007); give a number, e.g. --param C=100"`` ("" for an unknown model or name)."""
    model = registry.REGISTRY.get(model_name or "")
    if model is None:
        return ""
    if option == "--initial" and name in model.states:
        unit = model.state_units[model.states.index(name)]
        example = float(model.initial_state(model.defaults(), np)[model.states.index(name)]) + 0.0  # not -0
    elif option != "--initial" and name in model.params:
        unit, example = model.params[name].unit, model.params[name].default
    else:
        return ""
    described = "dimensionless" if unit in ("", "1") else f"in {unit}"
    return f"; {name} is {described} ({model.name}); give a number, e.g. {option} {name}={example:.4g}"


def _orders(items: list[str] | None):
    """``--alpha 0.8`` -> 0.8; ``--alpha v=0.8 [--alpha u=0.9]`` -> {"v": 0.8, "u": 0.9}; none -> None."""
    if not items:
        return None
    if len(items) == 1 and "=" not in items[0]:
        return _number(items[0], "--alpha")
    return _assignments(items, "--alpha")


def _pinn_options(items: list[str] | None, window: float | None, splitting: str | None):
    """``--pinn NAME=VALUE`` (repeatable), ``--window`` and ``--splitting`` -> a PINN options mapping, or None."""
    options = {}
    for item in items or []:
        name, equals, text = item.partition("=")
        if not equals or not name.strip():
            raise NeurospikeError(f"--pinn {item!r}: use NAME=VALUE, e.g. --pinn adam_steps=500")
        from .pinn.engine import parse_option  # the PINN engine (and optax) only when PINN options are given

        options[name.strip()] = parse_option(name.strip(), text.strip())
    if window is not None:
        options["window"] = window
    if splitting is not None:
        options["splitting"] = splitting
    return options or None


def _time_progress(report, t_end):
    """A run's ``progress(t, loss)`` (simulated time reached; a PINN's latest loss, NaN from a streamed save_at
    run) on the ``report(done, total, label)`` bar."""
    def progress(t, loss=float("nan")):
        total = t_end if t_end is not None else max(t, 1e-9)
        report(round(t, 3), round(total, 3), f"{t:.4g} ms" + ("" if math.isnan(loss) else f", loss {loss:.2e}"))
    return progress


def _writable(path: Path, formats: tuple[str, ...], option: str) -> Path:
    """``path`` if its extension is one of ``formats`` and its folder exists or can be made (checked before any run;
    a missing folder is created only when the file is written, after the run succeeded)."""
    if path.suffix.lower() not in formats:
        raise NeurospikeError(f"{option} {str(path)!r}: unknown format {path.suffix or '(none)'!r}; use "
                              f"{', '.join(formats)}")
    if path.is_dir():
        raise NeurospikeError(f"{option} {str(path)!r} is a directory; give a file name")
    _folder_can_be_made(path, option)
    return path


def _folder_can_be_made(path: Path, option: str) -> None:
    """Refuse ``path`` when a file stands where one of its folders would be."""
    existing = next(folder for folder in path.parents if folder.exists())
    if not existing.is_dir():
        raise NeurospikeError(f"{option} {str(path)!r}: {str(existing)!r} is a file, not a folder")


# --- running ----------------------------------------------------------------------------------------------------
@contextmanager
def _progress(description: str) -> Iterator:
    """A transient rich progress bar on stderr (only on a terminal, so a redirected stderr holds nothing but the
    error line); yields the ``progress(done, total, label)`` callback."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{description}: {label}")

        yield report


def _stopped_early(message: str) -> None:
    print(f"neurospike: stopped: {message}", file=sys.stderr)
    raise typer.Exit(STOPPED_EARLY_CODE)


# --- commands ---------------------------------------------------------------------------------------------------
def _with_unit(value: float, unit: str) -> str:
    return f"{value:g}" if unit in ("", "1") else f"{value:g} {unit}"


def _model_listing(m) -> dict:
    """One model as JSON: everything ``neurospike models MODEL`` prints."""
    rule = m.spike
    return {
        "name": m.name, "title": m.title, "reference": m.reference, "equations": m.equations,
        "states": dict(zip(m.states, m.state_units)), "current_unit": m.current_unit, "time_unit": m.time_unit,
        "params": {n: {"default": p.default, "unit": p.unit, "range": None if p.range is None else list(p.range),
                       "description": p.description} for n, p in m.params.items()},
        "spike": None if rule is None else {"state": rule.state, "level": rule.level, "reset": rule.reset is not None,
                                            "refractory": rule.refractory},
        "presets": {name: {"description": p.description, "input": currents.describe(p.current, m.current_unit),
                           "t_end": p.t_end, "dt": p.dt, "params": dict(p.params),
                           "initial": None if p.initial is None else dict(p.initial), "source": p.source}
                    for name, p in m.presets.items()},
        "default_preset": m.default_preset,
    }


def _wrapped(label: str, text: str, indent: int = 13) -> str:
    """``label`` then ``text`` wrapped at 80 columns between words (a name is never cut)."""
    return textwrap.fill(text, width=80, initial_indent=f"  {label}".ljust(indent), subsequent_indent=" " * indent,
                         break_long_words=False, break_on_hyphens=False)


def _model_summary(m) -> str:
    presets = [f"{m.default_preset} (default)", *(p for p in m.presets if p != m.default_preset)]
    return "\n".join([f"{m.name}: {m.title}",
                      _wrapped("states", ", ".join(f"{s} ({_unit(u)})" for s, u in zip(m.states, m.state_units))),
                      _wrapped("input I", _unit(m.current_unit)),
                      _wrapped("params", ", ".join(m.params)),
                      _wrapped("presets", ", ".join(presets))])


def _model_in_full(m) -> str:
    time = "" if m.time_unit in ("", "1") else f" {m.time_unit}"
    lines = [f"{m.name}: {m.title}", *textwrap.wrap(m.reference, 80), "",
             f"Equations (t in {_unit(m.time_unit)}, I in {_unit(m.current_unit)}):"]
    lines += [textwrap.fill(equation, 80, initial_indent="  ", subsequent_indent="      ")
              for equation in m.equations.split("; ")]
    rule = m.spike
    if rule is not None:
        level = m.params[rule.level]
        lines.append(f"Spike: {rule.state} crosses {rule.level} ({_with_unit(level.default, level.unit)}) upward"
                     + ("; then the reset above" if rule.reset is not None else "; no reset (the crossing is recorded)")
                     + (f", {rule.state} held for {rule.refractory}" if rule.refractory else "") + ".")
    lines += ["", textwrap.fill(f"Input current I (--current): {_unit(m.current_unit)}, e.g. --current 10 (constant) "
                                f"or --current {currents.spec_syntax('step')} (times in ms)", 80,
                                subsequent_indent="  ", break_long_words=False)]
    lines += ["", "States (--initial NAME=VALUE):"]
    lines += [f"  {s:<8} {_unit(u)}" for s, u in zip(m.states, m.state_units)]
    rows = [("name", "default", "unit", "range", "meaning")] + [
        (n, f"{p.default:g}", p.unit or "1",
         "" if p.range is None else f"{p.range[0]:g} … {p.range[1]:g}", p.description) for n, p in m.params.items()]
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    lines += ["", "Parameters (--param NAME=VALUE):"]
    for row in rows:
        head = "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  "
        lines.append(textwrap.fill(row[4], 80, initial_indent=head, subsequent_indent=" " * len(head),
                                   break_long_words=False) if row[4] else head.rstrip())
    lines += ["", f"Presets (--preset NAME; default {m.default_preset}):"]
    for name, p in m.presets.items():
        lines.append(textwrap.fill(f"{name}: {p.description}", 80, initial_indent="  ", subsequent_indent="      "))
        details = [f"input: {currents.describe(p.current, m.current_unit)}",
                   f"t_end {p.t_end:g}{time}" + ("" if p.dt is None else f", dt {p.dt:g}{time}")]
        details += [f"params: {', '.join(f'{k}={v:g}' for k, v in p.params.items())}"] if p.params else []
        details += [f"initial: {', '.join(f'{k}={v:g}' for k, v in p.initial.items())}"] if p.initial else []
        lines += [textwrap.fill(text, 80, initial_indent="      ", subsequent_indent="        ") for text in details]
    return "\n".join(lines)


@app.command()
def models(
    name: Optional[str] = typer.Argument(None, help="Show this model in full: " + ", ".join(registry.REGISTRY) + "."),
    as_json: bool = typer.Option(False, "--json", help="Print the model(s) as JSON."),
) -> None:
    """List the models (states, input unit, parameter names, presets), or show one in full: equations, units,
    parameters with defaults and ranges, presets with their input."""
    chosen = list(registry.REGISTRY.values()) if name is None else [registry.get(name)]
    if as_json:
        listing = [_model_listing(m) for m in chosen]
        print(json.dumps(listing if name is None else listing[0], indent=2, ensure_ascii=False))
    elif name is not None:
        print(_model_in_full(chosen[0]))
    else:
        print("\n\n".join(_model_summary(m) for m in chosen))
        print("\n" + textwrap.fill("`neurospike models MODEL` shows one model in full: equations, units, parameter "
                                  "ranges, presets and their inputs.", 80))


def _orders_text(alpha) -> str:
    """``", α = 0.7"``, ``", α v=0.8, u=0.9"`` or "" (not fractional); an order per neuron is shown by its range."""
    if alpha is None:
        return ""
    show = lambda a: f"{float(a):g}" if np.ndim(a) == 0 else f"{np.min(a):g}…{np.max(a):g}"  # noqa: E731
    if isinstance(alpha, dict):
        return ", α " + ", ".join(f"{state}={show(a)}" for state, a in alpha.items())
    return f", α = {show(alpha)}"


@app.command()
def simulate(
    model: str = typer.Argument(..., help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", help="Output file: .csv, .npz or .json (a missing folder is created "
                             "once the run succeeded)."),
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP),
    method: str = typer.Option("rk4", "--method", help="Integration method: "
                               + ", ".join(method_registry.METHODS) + "."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Step (ms); default: the preset's, else 0.01 ms."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    t0: float = typer.Option(0.0, "--t0", help="Start time (ms)."),
    param: Optional[List[str]] = typer.Option(None, "--param", help=PARAM_HELP),
    initial: Optional[List[str]] = typer.Option(None, "--initial", help=INITIAL_HELP),
    current: Optional[str] = typer.Option(None, "--current", help=CURRENT_HELP),
    save_at: Optional[str] = typer.Option(None, "--save-at", help="Comma-separated output times (ms), in any "
                                          "order: they are sorted and repeats dropped."),
    events: str = typer.Option("located", "--events", help=f"How a spike is placed. {EVENTS_HELP}."),
    max_rate: float = typer.Option(10_000.0, "--max-rate", help="Runaway-spiking guard (Hz)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also plot the trajectory (.png, .pdf or .svg)."),
    alpha: Optional[List[str]] = typer.Option(None, "--alpha", help="Fractional order: A for every state, or "
                                              "STATE=A (repeatable); needs a fractional method ("
                                              + ", ".join(method_registry.names(fractional=True)) + ")."),
    window: Optional[float] = typer.Option(None, "--window", help=WINDOW_HELP),
    splitting: Optional[str] = typer.Option(None, "--splitting", help=SPLITTING_HELP),
    pinn: Optional[List[str]] = typer.Option(None, "--pinn", help=PINN_HELP),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Save the trained PINN (.npz)."),
) -> None:
    """Integrate one model (or train a PINN on it) and write its trajectory."""
    _writable(out, OUTPUT_FORMATS, "--out")
    if checkpoint is not None:
        _writable(checkpoint, (".npz",), "--checkpoint")
    options = _pinn_options(pinn, window, splitting)
    if plot is not None:
        _writable(plot, PLOT_FORMATS, "--plot")
    params, start = _assignments(param, "--param", model), _assignments(initial, "--initial", model)
    times = None if save_at is None else _numbers(save_at, "--save-at")
    orders = _orders(alpha)
    plot_full_run = plot is not None and times is not None  # the plot draws the whole run, the file the times
    if plot_full_run:  # checked (and put in order) before the run
        times = resolve_problem(model, preset, params, current, t_end, t0, start, dt=dt, alpha=orders, events=events,
                                max_rate=max_rate, save_at=times).save_at
    enable_disk_cache()
    with _progress(f"{model} / {method}") as progress:
        try:
            trajectory = run_simulation(model, preset=preset, method=method, dt=dt, t_end=t_end, t0=t0,
                                        params=params, current=current, initial=start,
                                        save_at=None if plot_full_run else times, events=events,
                                        max_rate=max_rate, alpha=orders, pinn=options, checkpoint=checkpoint,
                                        progress=_time_progress(progress, t_end))
        except MemoryLimitError as error:  # refused before running: say that the plot is what needs the memory
            if not plot_full_run:
                raise
            raise NeurospikeError(f"--plot draws the full run, which would need {error.need}; drop --plot (the "
                                  f"--save-at times alone), or use a larger dt or a shorter t_end") from None
    full = trajectory
    if plot_full_run:
        trajectory = full.at(times[times <= full.t[-1]])
    trajectory.save(out)  # creates a missing folder
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        full.plot(plot, marked=trajectory if plot_full_run else None)
    spikes = trajectory.spikes
    first = ", ".join(f"{x:.6g}" for x in spikes[:5]) + (", …" if len(spikes) > 5 else "")
    heading = f"{trajectory.model} [{trajectory.preset}] {trajectory.method}" + _orders_text(trajectory.alpha) + (
        f", dt = {trajectory.dt:g} ms" if trajectory.dt else "") + f", events = {trajectory.events}"
    Console().print(f"[bold]{escape(heading)}[/bold]", highlight=False)
    print(f"{len(spikes)} spike(s)" + (f" at {first} ms" if len(spikes) else ""))
    print(f"compile {trajectory.compile_time_s:.3g} s, run {trajectory.run_time_s:.3g} s -> {out}"
          + (f", {plot}" if plot is not None else ""))
    if method_registry.get(trajectory.method).trains:
        print(f"checkpoint -> {checkpoint}" if checkpoint is not None else
              "no checkpoint saved (--checkpoint FILE.npz keeps the trained networks)")
    if trajectory.status != "success":
        _stopped_early(trajectory.message)


@app.command()
def compare(
    model: str = typer.Argument(..., help=MODEL_HELP),
    methods: str = typer.Option(..., "--methods", help=f"Comma-separated methods, e.g. euler,rk2,rk4; any of "
                                f"{_choices(COMPARABLE)}."),
    dt: float = typer.Option(..., "--dt", help="Step (ms) of every method."),
    times: str = typer.Option(..., "--times", help="Comma-separated times (ms) at which states are compared."),
    out: Path = typer.Option(..., "--out", help=REPORT_HELP),
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP),
    param: Optional[List[str]] = typer.Option(None, "--param", help=PARAM_HELP),
    current: Optional[str] = typer.Option(None, "--current", help=CURRENT_HELP),
    events: str = typer.Option("located,step", "--events", help=f"Comma-separated events modes, one or both. "
                               f"{EVENTS_HELP}."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    max_rate: Optional[float] = typer.Option(None, "--max-rate", help="Runaway-spiking guard (Hz)."),
    window: Optional[float] = typer.Option(None, "--window", help=WINDOW_HELP),
    splitting: Optional[str] = typer.Option(None, "--splitting", help=SPLITTING_HELP),
    pinn: Optional[List[str]] = typer.Option(None, "--pinn", help=PINN_HELP),
) -> None:
    """Several methods at one step against the reference: states at chosen times, spike timing, cost."""
    options = _pinn_options(pinn, window, splitting)
    params = _assignments(param, "--param", model) or None
    method_names, modes = _items(methods, "--methods", "euler,rk4"), _items(events, "--events", "located,step")
    at = _numbers(times, "--times")
    enable_disk_cache()
    with _progress(f"compare {model}") as progress:
        comparison = run_comparison(model, method_names, dt=dt, times=at, preset=preset, t_end=t_end,
                                    params=params, current=current, events=tuple(modes), out=out,
                                    max_rate=max_rate, progress=progress, pinn=options)
    print(comparison.markdown())  # plain markdown: no cell is cut to the terminal width
    print(f"report written to {out}/")


@app.command()
def convergence(
    model: str = typer.Argument(..., help=MODEL_HELP),
    methods: str = typer.Option(..., "--methods", help=f"Comma-separated methods, e.g. euler,rk2,rk4; any of "
                                f"{_choices(COMPARABLE)}."),
    dts: str = typer.Option(..., "--dts", help="Comma-separated steps (ms), at least two."),
    out: Path = typer.Option(..., "--out", help=REPORT_HELP),
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP),
    param: Optional[List[str]] = typer.Option(None, "--param", help=PARAM_HELP),
    current: Optional[str] = typer.Option(None, "--current", help=CURRENT_HELP),
    events: str = typer.Option("located", "--events", help=f"Events mode. {EVENTS_HELP}."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    state: str = typer.Option("v", "--state", help="State whose error is measured (in its unit: `neurospike "
                              "models MODEL`)."),
) -> None:
    """Error against step size for several methods, with the observed orders."""
    params = _assignments(param, "--param", model) or None
    method_names, steps = _items(methods, "--methods", "euler,rk4"), _numbers(dts, "--dts")
    enable_disk_cache()
    with _progress(f"convergence {model}") as progress:
        result = run_convergence(model, method_names, steps, preset=preset, t_end=t_end, events=events,
                                 params=params, current=current, state=state, out=out, progress=progress)
    print(result.markdown())
    print(f"report written to {out}/")


@app.command("sweep-alpha")
def sweep_alpha(
    model: str = typer.Argument(..., help=MODEL_HELP),
    alphas: str = typer.Option(..., "--alphas", help="Comma-separated fractional orders in (0, 1] (dimensionless), "
                               "e.g. 0.5,0.7,1.0."),
    out: Path = typer.Option(..., "--out", help=REPORT_HELP),
    state: Optional[str] = typer.Option(None, "--state", help="Make only this state fractional (default: every "
                                        "state)."),
    method: str = typer.Option("l1", "--method", help="Fractional method: "
                               + ", ".join(method_registry.names(family="fractional")) + "."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Step (ms); default: the preset's, else 0.01 ms."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP),
    param: Optional[List[str]] = typer.Option(None, "--param", help=PARAM_HELP),
    current: Optional[str] = typer.Option(None, "--current", help=CURRENT_HELP),
) -> None:
    """Firing rate and interspike intervals against the fractional order α (the memory effect on firing)."""
    params = _assignments(param, "--param", model) or None
    orders = check_alphas(_items(alphas, "--alphas", "0.5,0.7,1.0"))
    enable_disk_cache()
    with _progress(f"sweep-alpha {model}") as progress:
        result = run_sweep_alpha(model, orders, state=state, method=method, dt=dt, t_end=t_end, preset=preset,
                                 params=params, current=current, out=out, progress=progress)
    print(result.markdown())
    print(f"report written to {out}/")


def _grid_axes(items: list[str] | None) -> dict:
    """``--grid I=0:20:201`` (start:stop:count, both ends included) or ``--grid method=euler,rk4`` /
    ``--grid dt=0.1,0.05`` (a list) -> {axis: values}."""
    grid = {}
    for item in items or []:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name or not text.strip():
            raise NeurospikeError(f"--grid {item!r}: use NAME=START:STOP:COUNT or NAME=V1,V2,..., e.g. --grid "
                                  f"I=0:20:201")
        if name in grid:
            raise NeurospikeError(f"--grid {name} is given twice; give each axis once")
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise NeurospikeError(f"--grid {item!r}: a range is START:STOP:COUNT, e.g. {name}=0:20:201")
            start, stop = (_number(p.strip(), f"--grid {name}") for p in parts[:2])
            count = _number(parts[2].strip(), f"--grid {name} count")
            if count != int(count) or count < 1:
                raise NeurospikeError(f"--grid {item!r}: the count {parts[2].strip()} must be a whole number >= 1")
            if count > 1 and start == stop:
                raise NeurospikeError(f"--grid {item!r}: the range {start:g}:{stop:g} is empty")
            grid[name] = np.linspace(start, stop, int(count))
        elif name == "method":
            grid[name] = _items(text, f"--grid {name}=", "euler,rk4")
        else:
            grid[name] = np.asarray(_numbers(text, f"--grid {name}="))
    if not grid:
        raise NeurospikeError("give at least one --grid axis, e.g. --grid I=0:20:201")
    return grid


@app.command()
def sweep(
    model: str = typer.Argument(..., help=MODEL_HELP),
    grid: List[str] = typer.Option(..., "--grid", help="Axis NAME=START:STOP:COUNT or NAME=V1,V2 (repeatable): "
                                   "a parameter, I (input amplitude), alpha (every state's fractional order) or "
                                   "alpha_STATE (one state's), dt (ms) or method."),
    out: Path = typer.Option(..., "--out", help="zarr store (a directory, e.g. sweep.zarr); a rerun with the same "
                             "store computes only the blocks not yet done."),
    method: str = typer.Option("rk4", "--method", help="Method (unless a grid axis): "
                               + ", ".join(method_registry.names(trains=False)) + "."),
    metrics: str = typer.Option(",".join(_maps.DEFAULT_METRICS), "--metrics", help="Comma-separated: "
                                + ", ".join(_maps.METRICS) + "."),
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP),
    dt: Optional[float] = typer.Option(None, "--dt", help="Step (ms); default: the preset's, else 0.01 ms."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Fixed " + PARAM_HELP[0].lower() + PARAM_HELP[1:]),
    current: Optional[str] = typer.Option(None, "--current", help=CURRENT_HELP + " A grid axis I sets its "
                                          "amplitude."),
    alpha: Optional[List[str]] = typer.Option(None, "--alpha", help="Fixed fractional order (unless a grid axis)."),
    onset: Optional[float] = typer.Option(None, "--onset", help="Rates, CV and latency count spikes after this "
                                          "time (ms); default: the input's first change, else t0."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, "
                                            "e.g. tcp://10.0.0.1:8786 (default: a LocalCluster here)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="LocalCluster worker processes (one thread "
                                          "each; default one per core); 0 runs in this process without Dask."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help="Grid points per task (default up to "
                                             f"{_maps.DEFAULT_CHUNK_SIZE}, within --task-memory)."),
    task_memory: float = typer.Option(_maps.DEFAULT_TASK_MEMORY / 2**30, "--task-memory",
                                      help="Memory one task may use (GiB)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh when --out holds another sweep."),
    float32: bool = typer.Option(False, "--float32", help="Single precision (fixed-step methods; default float64)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Heat maps (2-d grid) or lines (1-d): .png, .pdf, "
                                        ".svg."),
) -> None:
    """Map spike counts, rates, CV, latency, pattern class or solver error over a grid of parameters, on Dask;
    results in a zarr store (xarray) and a Markdown summary beside it."""
    if scheduler is not None and workers is not None:
        raise NeurospikeError("give either --scheduler (a running cluster) or --workers (a LocalCluster here)")
    if workers is not None and workers < 0:
        raise NeurospikeError(f"--workers {workers} must be >= 0 (0: run in this process)")
    if out.suffix.lower() != ".zarr":
        raise NeurospikeError(f"--out {str(out)!r}: give a zarr store path ending in .zarr")
    _folder_can_be_made(out, "--out")  # a missing folder is made when the store is created, after the checks
    if plot is not None:
        _writable(plot, PLOT_FORMATS, "--plot")
    if not task_memory > 0:
        raise NeurospikeError(f"--task-memory {task_memory:g} must be a positive number of GiB")
    axes = _grid_axes(grid)
    if plot is not None and len(axes) > 2:
        raise NeurospikeError(f"--plot draws 1-d and 2-d grids; this one has {len(axes)} axes ({', '.join(axes)})")
    client = scheduler if scheduler is not None else ("serial" if workers == 0 else None)
    enable_disk_cache()
    with _progress(f"sweep {model}") as progress:
        dataset = _maps.sweep(
            model, axes, method=method, metrics=_items(metrics, "--metrics", "rate,cv"), preset=preset, t_end=t_end,
            dt=dt, params=_assignments(param, "--param", model) or None, current=current, alpha=_orders(alpha),
            onset=onset, store=str(out), client=client, workers=workers or None, chunk_size=chunk_size,
            task_memory=task_memory * 2**30, overwrite=overwrite, progress=progress,
            precision="float32" if float32 else "float64",
            log=lambda message: print(message, file=sys.stderr))
    written = [str(out)]
    summary = out.with_suffix(".md")
    summary.write_text(_maps.summary_markdown(dataset, "neurospike " + " ".join(_ARGUMENTS)))
    written.append(str(summary))
    if plot is not None:
        _maps.plot_map(dataset, plot)
        written.append(str(plot))
    attrs = dataset.attrs
    points = int(np.prod([n for d, n in dataset.sizes.items() if not d.startswith("chunk_")]))
    print(f"{points} grid points: {attrs['chunks_computed']} block(s) computed, {attrs['chunks_skipped']} already "
          f"done, {attrs['wall_time_s']} s ({attrs['neuron_steps_per_s']} neuron-steps/s) -> {', '.join(written)}")


@app.command()
def paper(
    name: str = typer.Argument(..., help=f"Which study: {_choices(PAPERS)}."),
    out: Path = typer.Option(..., "--out", help=REPORT_HELP),
    quick: bool = typer.Option(False, "--quick", help="Short runs (a few minutes; CI)."),
    case: Optional[str] = typer.Option(None, "--case", help="Comma-separated cases (default: all): "
                                       f"{_choices(c.key for c in paper_cases(quick=True))}."),
) -> None:
    """Regenerate a study's table and figures (PINN methods against classical solvers and exact solutions)."""
    if name not in PAPERS:
        raise NeurospikeError(f"unknown study {name!r}; studies are {', '.join(PAPERS)}")
    only = tuple(_items(case, "--case", "lif,hh_tonic")) if case else None
    enable_disk_cache()
    with _progress(f"paper {name}") as progress:
        _, markdown = splitting_pinn_report(out, quick=quick, progress=progress, only=only)
    print(markdown)
    print(f"report written to {out}/")


@app.command("app")
def live_app(
    port: int = typer.Option(8050, "--port", help="TCP port (1-65535)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on; beyond loopback (0.0.0.0: every "
                                                          "interface) the app asks for its token."),
    allow_host: Optional[List[str]] = typer.Option(None, "--allow-host", help="Another Host name the app answers "
                                                   "to, e.g. the machine's address (repeatable)."),
    allow_origin: Optional[List[str]] = typer.Option(None, "--allow-origin", help="Another origin whose pages may "
                                                     "open the WebSocket, e.g. https://proxy.example (repeatable)."),
    token: Optional[str] = typer.Option(None, "--token", help="The token to ask for (default: a random one)."),
    no_token: bool = typer.Option(False, "--no-token", help="Ask for no token, even beyond loopback (warns)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
) -> None:
    """Start the live browser app: sliders, solver toggle, streaming traces, phase plane and a 3D neuron."""
    import secrets
    import socket

    import uvicorn

    from .app.server import MAX_MESSAGE_BYTES, create_app, is_loopback, url_host

    if not 1 <= port <= 65535:
        raise NeurospikeError(f"--port {port} is outside 1-65535")
    if token is not None and no_token:
        raise NeurospikeError("--token and --no-token contradict each other; give one")
    if token is not None and not (token and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)):
        raise NeurospikeError(f"--token {token!r}: use letters, digits, - and _ only (it goes into a URL)")
    allow_hosts = [_host_name(name) for name in allow_host or []]
    allow_origins = [_origin(origin) for origin in allow_origin or []]
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:  # a clear error now, not a traceback later
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as error:
        raise NeurospikeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    enable_disk_cache()
    # each frame is one compiled call whose result is read at once: run it on the calling thread, not handed to
    # jax's dispatch threads (0.1 ms of CPU less per frame, ~0.5 % of a core at 40 frames a second; README)
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    if host in ("0.0.0.0", "::"):  # every interface: the URL names the machine, which the app then answers to
        name = socket.gethostname()
        allow_hosts.append(name)
    else:
        name = "localhost" if host in ("127.0.0.1", "::1") else host
    token = None if no_token else token or secrets.token_urlsafe(32)
    url = f"http://{url_host(name)}:{port}/" + (f"?token={token}" if token else "")
    if no_token and not is_loopback(host):
        print(f"neurospike: warning: --no-token on {host}: anyone who reaches port {port} can use the app",
              file=sys.stderr, flush=True)
    print(f"neurospike live app on {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    app = create_app(port, host, allow_hosts=allow_hosts, allow_origins=allow_origins, token=token)
    # ws_max_size: a frame beyond 16x the protocol's limit closes that socket before it is read into memory;
    # no per-message deflate: compressing 40 frames a second cost ~2 % of a core, for ~10 kB frames (README)
    uvicorn.run(app, host=host, port=port, log_level="warning", ws_max_size=16 * MAX_MESSAGE_BYTES,
                ws_per_message_deflate=False)


def _host_name(text: str) -> str:
    """--allow-host: a host name or an IP address, without scheme, port or wildcard."""
    import ipaddress

    name = text.strip().strip("[]").lower()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        labels = name.split(".")
        if name and all(label and all(c.isascii() and (c.isalnum() or c in "-_") for c in label) for label in labels):
            return name
    raise NeurospikeError(f"--allow-host {text!r}: give a host name or an address, e.g. mybox.lan or 192.168.1.20 "
                          f"(no scheme, port or wildcard)")


def _origin(text: str) -> str:
    """--allow-origin: SCHEME://HOST[:PORT] as a browser sends it in the Origin header."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        raise NeurospikeError(f"--allow-origin {text!r}: give an origin, SCHEME://HOST[:PORT], e.g. "
                              f"https://proxy.example:8443 (no path)")
    return f"{parts.scheme}://{parts.netloc.lower()}"


# --- entry point ------------------------------------------------------------------------------------------------
def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _segment(text: str | None, option: str):
    """'START:STOP' (ms) -> (start, stop)."""
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 2:
        raise NeurospikeError(f"{option} {text!r}: give START:STOP in ms, e.g. 0:600")
    return _number(parts[0], option), _number(parts[1], option)


def _spike_times(text: Optional[str]):
    """--spikes: comma-separated times (ms) or a file of them (one per line or comma-separated); None if absent."""
    if text is None:
        return None
    if Path(text).is_file():
        text = Path(text).read_text().replace("\n", ",")
    times = [_number(item, "--spikes") for item in text.split(",") if item.strip()]
    if any(b <= a for a, b in zip(times, times[1:])):
        raise NeurospikeError(f"--spikes {text.strip()[:60]!r}: spike times must increase")
    return times


@app.command()
def fit(
    model: str = typer.Argument(..., help=MODEL_HELP),
    data: Path = typer.Option(..., "--data", help="Recording: .csv (t, v, I with units), .nwb or .abf."),
    params: str = typer.Option("", "--params", help="Comma-separated parameters to fit, e.g. a,b,c,d."),
    out: Path = typer.Option(..., "--out", help=REPORT_HELP + " Files: fit.json, fit.md and figures."),
    sweep: Optional[int] = typer.Option(None, "--sweep", help="Sweep number (NWB, ABF)."),
    alpha: Optional[str] = typer.Option(None, "--alpha", help="Fractional order (dimensionless, in (0, 1]): a "
                                        "number, or 'fit'."),
    method: str = typer.Option("gradient", "--method", help=f"Fit method, one of {_choices(FIT_METHODS)}: gradient "
                               "(Adam then L-BFGS through the differentiable run), cma (CMA-ES), pinn (inverse "
                               "PINN)."),
    loss: str = typer.Option("trace", "--loss", help=f"Loss, one of {_choices(LOSSES)}: trace (v), spikes (van "
                             "Rossum), both, timing (matched spike times)."),
    train: Optional[str] = typer.Option(None, "--train", help="Train segment START:STOP (ms); default all."),
    test: Optional[str] = typer.Option(None, "--test", help="Held-out segment START:STOP (ms) for Γ."),
    starts: Optional[int] = typer.Option(None, "--starts", help="Starting points (the preset's, then random "
                                         "ones); default 1, or 64 screened to 4 in a forced-reset phase."),
    start: Optional[List[str]] = typer.Option(None, "--start", help="Starting value NAME=VALUE (repeatable), in the "
                                              "parameter's unit (`neurospike models MODEL`)."),
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP + " It gives the parameters not "
                                         "fitted."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Fixed " + PARAM_HELP[0].lower() + PARAM_HELP[1:]),
    solver: Optional[str] = typer.Option(None, "--solver", help="Method of the run (default rk4; fast-l1 with "
                                         f"--alpha): {_choices(method_registry.names(trains=False))}."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Step of the run (ms); default the sampling interval."),
    spike_mask: Optional[float] = typer.Option(None, "--spike-mask", help="Leave out samples within this many "
                                               "ms of a recorded spike (trace loss)."),
    tau: float = typer.Option(10.0, "--tau", help="van Rossum time constant (ms) of the spike loss."),
    area: Optional[float] = typer.Option(None, "--area", help="Membrane area (cm²) for a current density model."),
    adam_steps: Optional[int] = typer.Option(None, "--adam-steps", help="Adam iterations (gradient); default 200, "
                                             "or 20 in a forced-reset phase."),
    lbfgs_steps: int = typer.Option(100, "--lbfgs-steps", help="L-BFGS iterations (gradient)."),
    generations: int = typer.Option(60, "--generations", help="CMA-ES generations (cma)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random starts and of CMA-ES."),
    fit_initial: bool = typer.Option(False, "--fit-initial", help="Also fit the initial v (default: the first "
                                     "sample)."),
    grow: bool = typer.Option(False, "--grow", help="Fit on growing segments, one more recorded spike each."),
    spike_threshold: Optional[float] = typer.Option(None, "--spike-threshold", help="Level (mV) whose upward "
                                                    "crossings in v are the recorded spikes (default 0 mV, or "
                                                    "the model's level)."),
    spikes: Optional[str] = typer.Option(None, "--spikes", help="The recorded spike times (ms): comma-separated, "
                                         "or a text file with one per line (when v does not show them)."),
    forced_reset: Optional[bool] = typer.Option(None, "--forced-reset/--no-forced-reset", help="First fit runs "
                                                "reset at the recorded spike times (default: on for a model "
                                                "with a reset, trace or both loss)."),
) -> None:
    """Fit parameters (and the fractional order) of a model to a recording; write a report."""
    from . import fitting
    from .data import load_recording

    reports.check_folder(out)
    names = [] if not params.strip() else _items(params, "--params", "a,b,c,d")
    alpha_value = None if alpha is None else (alpha if alpha == "fit" else _number(alpha, "--alpha"))
    recording = load_recording(data, sweep=sweep)
    enable_disk_cache()
    command = "neurospike fit " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["fit"] else sys.argv[1:])
    with _progress(f"fit {model} ({method})") as progress:
        result = fitting.fit(model, recording, names, alpha=alpha_value, method=method, loss=loss, solver=solver,
                             dt=dt, preset=preset, train=_segment(train, "--train"), test=_segment(test, "--test"),
                             start=_assignments(start, "--start", model), fixed=_assignments(param, "--param", model),
                             starts=starts, spike_mask=spike_mask, tau=tau,
                             area=area, adam_steps=adam_steps, lbfgs_steps=lbfgs_steps, cma_generations=generations,
                             seed=seed, command=command, fit_initial=fit_initial, grow=grow,
                             forced_reset=forced_reset, spike_threshold=spike_threshold,
                             spikes=_spike_times(spikes),
                             progress=lambda i, value: progress(i, None, f"iteration {i}, loss {value:.4g}"))
    written = fitting.write_report(result, recording, out)
    table = Table(title=f"{result.model} fitted by {result.method} ({result.loss} loss)")
    for column in ("parameter", "start", "fitted", "standard error"):
        table.add_column(column, justify="right")
    for name, value in result.values.items():
        error = result.errors[name]
        table.add_row(name, f"{result.start[name]:.6g}", f"{value:.6g}", "—" if error != error else f"{error:.3g}")
    Console().print(table)
    gamma = f"Γ train {result.gamma_train:.3f}" + ("" if result.gamma_test is None else
                                                    f", test {result.gamma_test:.3f}")
    print(f"loss {result.loss_value:.6g}; {gamma}; compile {result.compile_time_s:.3g} s, fit "
          f"{result.fit_time_s:.3g} s -> {', '.join(written)}")
    for note in result.notes:
        print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    """The ``neurospike`` script: run the command, turn every bad input into one stderr line and exit code 2."""
    _ARGUMENTS[:] = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=argv, prog_name="neurospike", standalone_mode=False)
    except NeurospikeError as error:  # includes SimulationError (a state turned NaN/inf)
        message = str(error)
    except (ClickException, typer.TyperException) as error:  # unknown option, missing argument, --dt abc, ...
        message = error.format_message()
        if not message:  # no arguments at all: the help was printed
            return USAGE_ERROR_CODE
    except MemoryError as error:
        message = (f"out of memory ({error}); use a larger dt or a shorter t_end (or, for one neuron and a fixed-step "
                   f"method, --save-at, which keeps only the saved states)")
    except KeyboardInterrupt:
        print("neurospike: interrupted", file=sys.stderr)
        return 130
    else:
        return code if isinstance(code, int) else 0
    print(f"neurospike: error: {_one_line(message)}", file=sys.stderr)
    return USAGE_ERROR_CODE


if __name__ == "__main__":
    sys.exit(main())
