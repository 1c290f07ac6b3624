"""The command line: ``neurospike models | simulate | compare | convergence | sweep-alpha | paper | app`` (README,
"Command line").

Every bad input ends the same way, before anything runs or is written: one line ``neurospike: error: …`` on
stderr and exit code 2. A run stopped by the runaway-spiking guard writes what it computed, prints the time and
rate on stderr and exits with code 3.
"""

from __future__ import annotations

import json
import os
import sys
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

from . import methods as method_registry
from . import models as registry
from .comparison import compare as run_comparison
from . import maps as _maps
from .compiled import enable_disk_cache
from .comparison import convergence as run_convergence
from .errors import NeurospikeError
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


def _assignments(items: list[str] | None, option: str) -> dict[str, float]:
    """Repeated ``NAME=VALUE`` options -> {NAME: VALUE}."""
    values = {}
    for item in items or []:
        name, equals, text = item.partition("=")
        if not equals or not name.strip():
            raise NeurospikeError(f"{option} {item!r}: use NAME=VALUE, e.g. {option} a=0.02")
        values[name.strip()] = _number(text.strip(), f"{option} {name.strip()}=")
    return values


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
    """A PINN's ``progress(t, loss)`` (simulated time reached, latest loss) on the ``report(done, total, label)``
    bar."""
    def progress(t, loss=float("nan")):
        total = t_end if t_end is not None else max(t, 1e-9)
        report(round(t, 3), round(total, 3), f"{t:.4g} ms, loss {loss:.2e}")
    return progress


def _writable(path: Path, formats: tuple[str, ...], option: str) -> Path:
    """``path`` if its extension is one of ``formats`` and its directory exists (checked before any run)."""
    if path.suffix.lower() not in formats:
        raise NeurospikeError(f"{option} {str(path)!r}: unknown format {path.suffix or '(none)'!r}; use "
                              f"{', '.join(formats)}")
    if not path.parent.is_dir():
        raise NeurospikeError(f"{option} {str(path)!r}: directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise NeurospikeError(f"{option} {str(path)!r} is a directory; give a file name")
    return path


def _report_directory(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise NeurospikeError(f"--out {str(path)!r} is a file; give a directory for the report")
    return path


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
@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print the models as JSON.")) -> None:
    """List the models with their states, parameters and presets."""
    if as_json:
        listing = [{
            "name": m.name, "title": m.title, "states": dict(zip(m.states, m.state_units)),
            "params": {n: {"default": p.default, "unit": p.unit, "description": p.description}
                       for n, p in m.params.items()},
            "presets": list(m.presets), "default_preset": m.default_preset,
        } for m in registry.REGISTRY.values()]
        print(json.dumps(listing, indent=2))
        return
    table = Table(title="neurospike models", show_lines=True)
    table.add_column("model", max_width=28)
    table.add_column("states", max_width=16)
    table.add_column("params", justify="right")
    table.add_column("presets (default first)", overflow="fold")
    for m in registry.REGISTRY.values():
        presets = [m.default_preset, *(p for p in m.presets if p != m.default_preset)]
        table.add_row(f"[bold]{m.name}[/bold]\n{escape(m.title)}",
                      ", ".join(f"{s} ({u})" if u else s for s, u in zip(m.states, m.state_units)),
                      str(len(m.params)), ", ".join(presets))
    Console().print(table)


@app.command()
def simulate(
    model: str = typer.Argument(..., help="Model name (see `neurospike models`)."),
    out: Path = typer.Option(..., "--out", help="Output file: .csv, .npz or .json."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Preset of the model (default: the model's)."),
    method: str = typer.Option("rk4", "--method", help="Integration method: "
                               + ", ".join(method_registry.METHODS) + "."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Step (ms); default: the preset's, else 0.01."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    t0: float = typer.Option(0.0, "--t0", help="Start time (ms)."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Parameter NAME=VALUE (repeatable)."),
    initial: Optional[List[str]] = typer.Option(None, "--initial", help="Initial state NAME=VALUE (repeatable)."),
    current: Optional[str] = typer.Option(None, "--current", help="Input: constant:amplitude=10, "
                                          "step:start=101,amplitude=70[,stop=..], ramp:.., pulses:.., sine:.., "
                                          "ou:.. or a JSON segment file."),
    save_at: Optional[str] = typer.Option(None, "--save-at", help="Comma-separated output times (ms)."),
    events: str = typer.Option("located", "--events", help="located (spike inside the step) or step."),
    max_rate: float = typer.Option(10_000.0, "--max-rate", help="Runaway-spiking guard (Hz)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also plot the trajectory (.png, .pdf or .svg)."),
    alpha: Optional[List[str]] = typer.Option(None, "--alpha", help="Fractional order: A for every state, or "
                                              "STATE=A (repeatable); needs a fractional method ("
                                              + ", ".join(method_registry.names(fractional=True)) + ")."),
    window: Optional[float] = typer.Option(None, "--window", help="PINN window length (ms)."),
    splitting: Optional[str] = typer.Option(None, "--splitting", help="PINN operator splitting: lie or strang "
                                            "(splitting-pinn), lie or none (fpinn)."),
    pinn: Optional[List[str]] = typer.Option(None, "--pinn", help="PINN option NAME=VALUE (repeatable), e.g. "
                                             "widths=32,32 adam_steps=500 seed=1."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Save the trained PINN (.npz)."),
) -> None:
    """Integrate one model (or train a PINN on it) and write its trajectory."""
    _writable(out, OUTPUT_FORMATS, "--out")
    if checkpoint is not None:
        _writable(checkpoint, (".npz",), "--checkpoint")
    options = _pinn_options(pinn, window, splitting)
    if plot is not None:
        _writable(plot, PLOT_FORMATS, "--plot")
    params, start = _assignments(param, "--param"), _assignments(initial, "--initial")
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
        except NeurospikeError as error:  # refused before running: say that the plot is what needs the memory
            if not (plot_full_run and str(error).startswith("this run would need")):
                raise
            raise NeurospikeError(f"--plot draws the full run, which would {str(error).split('; use')[0][15:]}; "
                                  f"drop --plot (the --save-at times alone), or use a larger dt or a shorter t_end"
                                  ) from None
    full = trajectory
    if plot_full_run:
        trajectory = full.at(times[times <= full.t[-1]])
    trajectory.save(out)
    if plot is not None:
        full.plot(plot, marked=trajectory if plot_full_run else None)
    spikes = trajectory.spikes
    first = ", ".join(f"{x:.6g}" for x in spikes[:5]) + (", …" if len(spikes) > 5 else "")
    heading = f"{trajectory.model} [{trajectory.preset}] {trajectory.method}" + (
        f", dt = {trajectory.dt:g} ms" if trajectory.dt else "") + f", events = {trajectory.events}"
    Console().print(f"[bold]{escape(heading)}[/bold]", highlight=False)
    print(f"{len(spikes)} spike(s)" + (f" at {first} ms" if len(spikes) else ""))
    print(f"compile {trajectory.compile_time_s:.3g} s, run {trajectory.run_time_s:.3g} s -> {out}"
          + (f", {plot}" if plot is not None else ""))
    if trajectory.status != "success":
        _stopped_early(trajectory.message)


@app.command()
def compare(
    model: str = typer.Argument(..., help="Model name."),
    methods: str = typer.Option(..., "--methods", help="Comma-separated methods, e.g. euler,rk2,rk4."),
    dt: float = typer.Option(..., "--dt", help="Step (ms) of every method."),
    times: str = typer.Option(..., "--times", help="Comma-separated times (ms) at which states are compared."),
    out: Path = typer.Option(..., "--out", help="Report directory (created if missing)."),
    preset: Optional[str] = typer.Option(None, "--preset"),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Parameter NAME=VALUE (repeatable)."),
    current: Optional[str] = typer.Option(None, "--current", help="Input current spec (see simulate)."),
    events: str = typer.Option("located,step", "--events", help="located, step or both (comma-separated)."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    max_rate: Optional[float] = typer.Option(None, "--max-rate", help="Runaway-spiking guard (Hz)."),
    window: Optional[float] = typer.Option(None, "--window", help="PINN window length (ms)."),
    splitting: Optional[str] = typer.Option(None, "--splitting", help="PINN operator splitting: lie or strang."),
    pinn: Optional[List[str]] = typer.Option(None, "--pinn", help="PINN option NAME=VALUE (repeatable)."),
) -> None:
    """Several methods at one step against the reference: states at chosen times, spike timing, cost."""
    _report_directory(out)
    options = _pinn_options(pinn, window, splitting)
    params = _assignments(param, "--param") or None
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
    model: str = typer.Argument(..., help="Model name."),
    methods: str = typer.Option(..., "--methods", help="Comma-separated methods, e.g. euler,rk2,rk4."),
    dts: str = typer.Option(..., "--dts", help="Comma-separated steps (ms), at least two."),
    out: Path = typer.Option(..., "--out", help="Report directory (created if missing)."),
    preset: Optional[str] = typer.Option(None, "--preset"),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Parameter NAME=VALUE (repeatable)."),
    current: Optional[str] = typer.Option(None, "--current", help="Input current spec (see simulate)."),
    events: str = typer.Option("located", "--events", help="located or step."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    state: str = typer.Option("v", "--state", help="State whose error is measured."),
) -> None:
    """Error against step size for several methods, with the observed orders."""
    _report_directory(out)
    params = _assignments(param, "--param") or None
    method_names, steps = _items(methods, "--methods", "euler,rk4"), _numbers(dts, "--dts")
    enable_disk_cache()
    with _progress(f"convergence {model}") as progress:
        result = run_convergence(model, method_names, steps, preset=preset, t_end=t_end, events=events,
                                 params=params, current=current, state=state, out=out, progress=progress)
    print(result.markdown())
    print(f"report written to {out}/")


@app.command("sweep-alpha")
def sweep_alpha(
    model: str = typer.Argument(..., help="Model name."),
    alphas: str = typer.Option(..., "--alphas", help="Comma-separated fractional orders in (0, 1], e.g. 0.5,0.7,1.0."),
    out: Path = typer.Option(..., "--out", help="Report directory (created if missing)."),
    state: Optional[str] = typer.Option(None, "--state", help="Make only this state fractional (default: every "
                                        "state)."),
    method: str = typer.Option("l1", "--method", help="Fractional method: "
                               + ", ".join(method_registry.names(family="fractional")) + "."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Step (ms); default: the preset's, else 0.01."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    preset: Optional[str] = typer.Option(None, "--preset"),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Parameter NAME=VALUE (repeatable)."),
    current: Optional[str] = typer.Option(None, "--current", help="Input current spec (see simulate)."),
) -> None:
    """Firing rate and interspike intervals against the fractional order α (the memory effect on firing)."""
    _report_directory(out)
    params = _assignments(param, "--param") or None
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
    model: str = typer.Argument(..., help="Model name (see `neurospike models`)."),
    grid: List[str] = typer.Option(..., "--grid", help="Axis NAME=START:STOP:COUNT or NAME=V1,V2 (repeatable): "
                                   "a parameter, I (input amplitude), alpha (every state's fractional order) or "
                                   "alpha_STATE (one state's), dt (ms) or method."),
    out: Path = typer.Option(..., "--out", help="zarr store (a directory, e.g. sweep.zarr); a rerun with the same "
                             "store computes only the blocks not yet done."),
    method: str = typer.Option("rk4", "--method", help="Method (unless a grid axis): "
                               + ", ".join(method_registry.names(trains=False)) + "."),
    metrics: str = typer.Option(",".join(_maps.DEFAULT_METRICS), "--metrics", help="Comma-separated: "
                                + ", ".join(_maps.METRICS) + "."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Preset of the model (default: the model's)."),
    dt: Optional[float] = typer.Option(None, "--dt", help="Step (ms); default: the preset's, else 0.01."),
    t_end: Optional[float] = typer.Option(None, "--t-end", help="End time (ms); default: the preset's."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Fixed parameter NAME=VALUE (repeatable)."),
    current: Optional[str] = typer.Option(None, "--current", help="Input current spec (see simulate); a grid "
                                          "axis I sets its amplitude."),
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
    if not out.parent.is_dir():
        raise NeurospikeError(f"--out {str(out)!r}: directory {str(out.parent)!r} does not exist")
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
            dt=dt, params=_assignments(param, "--param") or None, current=current, alpha=_orders(alpha),
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
    name: str = typer.Argument(..., help="Which study: splitting-pinn."),
    out: Path = typer.Option(..., "--out", help="Report directory (created if missing)."),
    quick: bool = typer.Option(False, "--quick", help="Short runs (a few minutes; CI)."),
    case: Optional[str] = typer.Option(None, "--case", help="Comma-separated cases (default: all)."),
) -> None:
    """Regenerate a study's table and figures (PINN methods against classical solvers and exact solutions)."""
    from .paper import PAPERS, splitting_pinn_report

    if name not in PAPERS:
        raise NeurospikeError(f"unknown study {name!r}; studies are {', '.join(PAPERS)}")
    _report_directory(out)
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
    # ws_max_size: a frame beyond 16x the protocol's limit closes that socket before it is read into memory
    uvicorn.run(app, host=host, port=port, log_level="warning", ws_max_size=16 * MAX_MESSAGE_BYTES)


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
    model: str = typer.Argument(..., help="Model name (see `neurospike models`)."),
    data: Path = typer.Option(..., "--data", help="Recording: .csv (t, v, I with units), .nwb or .abf."),
    params: str = typer.Option("", "--params", help="Comma-separated parameters to fit, e.g. a,b,c,d."),
    out: Path = typer.Option(..., "--out", help="Report directory (fit.json, fit.md, figures)."),
    sweep: Optional[int] = typer.Option(None, "--sweep", help="Sweep number (NWB, ABF)."),
    alpha: Optional[str] = typer.Option(None, "--alpha", help="Fractional order: a number, or 'fit'."),
    method: str = typer.Option("gradient", "--method", help="gradient (Adam then L-BFGS through the "
                               "differentiable run), cma (CMA-ES) or pinn (inverse PINN)."),
    loss: str = typer.Option("trace", "--loss", help="trace (v), spikes (van Rossum), both, or timing (matched "
                                                      "spike times)."),
    train: Optional[str] = typer.Option(None, "--train", help="Train segment START:STOP (ms); default all."),
    test: Optional[str] = typer.Option(None, "--test", help="Held-out segment START:STOP (ms) for Γ."),
    starts: Optional[int] = typer.Option(None, "--starts", help="Starting points (the preset's, then random "
                                         "ones); default 1, or 64 screened to 4 in a forced-reset phase."),
    start: Optional[List[str]] = typer.Option(None, "--start", help="Starting value NAME=VALUE (repeatable)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Preset giving the other parameters."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Fixed parameter NAME=VALUE (repeatable)."),
    solver: Optional[str] = typer.Option(None, "--solver", help="Method of the run (default rk4; fast-l1 with "
                                         "--alpha)."),
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

    _report_directory(out)
    names = [] if not params.strip() else _items(params, "--params", "a,b,c,d")
    alpha_value = None if alpha is None else (alpha if alpha == "fit" else _number(alpha, "--alpha"))
    recording = load_recording(data, sweep=sweep)
    enable_disk_cache()
    command = "neurospike fit " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["fit"] else sys.argv[1:])
    with _progress(f"fit {model} ({method})") as progress:
        result = fitting.fit(model, recording, names, alpha=alpha_value, method=method, loss=loss, solver=solver,
                             dt=dt, preset=preset, train=_segment(train, "--train"), test=_segment(test, "--test"),
                             start=_assignments(start, "--start"), fixed=_assignments(param, "--param"),
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
        message = f"out of memory ({error}); use a larger dt, a shorter t_end or --save-at"
    except KeyboardInterrupt:
        print("neurospike: interrupted", file=sys.stderr)
        return 130
    else:
        return code if isinstance(code, int) else 0
    print(f"neurospike: error: {_one_line(message)}", file=sys.stderr)
    return USAGE_ERROR_CODE


if __name__ == "__main__":
    sys.exit(main())
