"""Derivatives of a fixed-step or L1 run: states at chosen times and spike times as a traced function of the
parameters, the input amplitude, the initial state and (fractional runs) the orders α.

>>> import jax, jax.numpy as jnp
>>> import neurospike as ns
>>> run = ns.differentiable("lif", method="rk4", dt=0.1, t_end=50.0, save_at=[50.0], max_spikes=4)
>>> states, spikes = run({"g_L": 0.1}, {}, 2.5)              # (1, 1) states, (4,) spike times (NaN-padded)
>>> d_states, d_spikes = jax.jvp(lambda g: run({"g_L": g}, {}, 2.5), (0.1,), (1.0,))[1]
>>> jacobian = jax.jacfwd(lambda p: run(p, {}, 2.5)[1])({"g_L": 0.1, "C": 1.0})   # d spike times / d (g_L, C)
>>> from neurospike.differentiable import jit    # jax.jit with the loop's compiler options: use it for long runs
>>> spike_jacobian = jit(jax.jacfwd(lambda p: run(p, {}, 2.5)[1]))
>>> spike_jacobian({"g_L": 0.1, "C": 1.0})["C"]
>>> fo = ns.differentiable("lif", method="fast-l1", alpha=0.8, dt=0.01, t_end=20.0, save_at=[20.0], max_spikes=2)
>>> jax.jacfwd(lambda a: fo({}, {}, 5.0, a)[1])(0.8)          # d spike times / d alpha (fractional LIF)

The run is :func:`neurospike.solvers.fixed_step.run` (or the L1 loop :func:`neurospike.solvers.fractional.l1_loop`),
the loop :func:`neurospike.simulate` uses (same grid, same events, same results), called directly with traced
parameters. Differentiating it differentiates the numerical solution itself: every step of the method (explicit,
or implicit: Newton's root through the implicit function theorem, ``jax.lax.custom_root``), the located crossing
time θ of each spike through the implicit function theorem on the step's interpolant (``jax.custom_jvp`` on the
location in :mod:`neurospike.solvers.events`, dθ = −(∂g/∂inputs · d inputs)/(∂g/∂θ) with g(θ) =
interpolant_k(θ) − level, not a derivative of the bisection), the reset map and refractory hold after it, and
the rest of the step from the reset state. A spike time is piecewise smooth in the parameters: the derivative
holds while the number of spikes before the saved times (and of steps with a spike) stays the same; at a
parameter value where a spike appears or leaves it jumps.

Fractional runs (``fast-l1``, ``l1``, ``l1-explicit``): the L1 weights are jax functions of α, so the derivative
in α is the scheme's own. fast-l1's sum of exponentials keeps the node counts chosen for the ``alpha`` given to
:func:`differentiable` and builds its Gauss–Jacobi nodes by Golub–Welsch (``jnp.linalg.eigh``,
:func:`~neurospike.solvers.fractional.exponential_sum_terms`); its values equal simulate's to ~1e-14.

Forward mode (``jax.jvp``, ``jax.jacfwd``; ``mode="forward"``, the default) goes through the loop's while loops.
Reverse mode (``jax.grad``, ``jax.vjp``, ``jax.jacrev``) needs ``mode="reverse"``: then every step goes through
the careful step in one ``lax.scan`` (:func:`~neurospike.solvers.fixed_step.run_every_step`) with the events of a
step in a bounded loop (same results, slower run; each step under ``jax.checkpoint``, so only its carry is kept
for the backward pass); every fixed-step method (backward-euler's Newton iteration is not differentiated, its
root is). The fractional loops take forward mode only.

Compile a run's derivatives with :func:`jit` (the loop's compiler options): with plain ``jax.jit`` the trace is
copied at every step of a derivative. Cost: docs/benchmarks.md#derivatives-neurospikedifferentiable
(``benchmarks/derivatives.py``)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import currents as currents_module
from . import methods
from .compiled import COMPILER_OPTIONS
from .errors import NeurospikeError
from .simulate import DEFAULT_MAX_RATE_HZ, resolve
from .solvers import fixed_step, fractional



def _scheme(method):
    """The one-step scheme (``step``, ``interpolation``, ``order``) of a fixed-step method: its registry name, a
    :class:`~neurospike.methods.FixedStep` or a scheme itself."""
    if isinstance(method, str):
        method = methods.get(method)
        if not isinstance(method, methods.FixedStep):
            raise NeurospikeError(f"method {method.name!r} is not a fixed-step method; differentiable runs take one "
                                  f"({', '.join(methods.names(family='fixed-step'))})")
    return getattr(method, "scheme", method)


def jit(function, **options):
    """``jax.jit(function, **options)``, compiled (once per argument structure and shapes) with the compiler
    options of the fixed-step loop (``neurospike.compiled.COMPILER_OPTIONS``). Use it for derivatives of long
    runs: copy insertion by region analysis keeps the loop's trace updated in place, which plain ``jax.jit``
    does for the run but not for its derivative (docs/benchmarks.md#derivatives-neurospikedifferentiable)."""
    jitted = jax.jit(function, **options)
    compiled = {}

    def call(*args):
        leaves, tree = jax.tree_util.tree_flatten(args)
        key = (tree, tuple((np.shape(x), (x.dtype if hasattr(x, 'dtype') else np.result_type(x)).str)
                           for x in leaves))
        if key not in compiled:
            compiled[key] = jitted.lower(*args).compile(compiler_options=COMPILER_OPTIONS)
        return compiled[key](*args)

    return call


def with_amplitude(current, amplitude):
    """``current`` with its amplitude set to ``amplitude``: the value of every segment of a piecewise current (a
    step, pulses), its baseline when it has no segments (a constant), a sine's amplitude."""
    if isinstance(current, currents_module.Piecewise):
        if len(current.values):
            return currents_module.Piecewise(current.baseline, current.starts, current.ends,
                                             tuple(amplitude for _ in current.values), current.slopes)
        return currents_module.Piecewise(amplitude)
    if isinstance(current, currents_module.Sine):
        return currents_module.Sine(current.offset, amplitude, current.frequency, current.phase)
    raise NeurospikeError(f"cannot set the amplitude of {type(current).__name__}; pass current=a function "
                          f"amplitude -> current")


def differentiable(model, *, method: Any = "rk4", dt: float, t_end: float | None = None, save_at,
                   max_spikes: int, t0: float = 0.0, preset: str | None = None, current=None,
                   events: str = "located", max_rate: float = DEFAULT_MAX_RATE_HZ, alpha=None,
                   mode: str = "forward", forced_resets=None, forced_window: float = 4.0) -> Callable:
    """A pure, traceable function ``f(params, initial, amplitude) -> (states, spike_times)`` of the fixed-step
    run of ``model`` (a name or model) with ``method`` (a fixed-step method's name or object, or an L1 method:
    ``fast-l1``, ``l1``, ``l1-explicit``) and step ``dt``.

    ``params``: a mapping of parameter values (the others are the preset's); ``initial``: a mapping of initial
    states (the others the preset's, or computed by the model from ``params``); ``amplitude``: the input's
    amplitude (see :func:`with_amplitude`; ``current`` is the preset's input unless given, as a current object
    or as a function ``amplitude -> current``). Returns the states at ``save_at`` (shape (len(save_at),
    n_states); they are grid nodes, so exact) and the first ``max_spikes`` spike times (NaN-padded). A run
    halted by the guards (faster than ``max_rate``, non-finite) gives NaN after the halt. ``mode`` "forward"
    (jvp/jacfwd) or "reverse" (also grad/vjp; see the module docstring). Compile it, or a derivative of it, with
    :func:`jit` (``jax.jit`` works too, slowly for the derivatives of long runs).

    Fractional runs (``alpha`` as for :func:`neurospike.simulate`, an L1 method): ``f(params, initial,
    amplitude, alpha=None)`` also takes the orders, traced (one number, or one per state; default the ``alpha``
    given here): the derivative in α is that of the scheme with its weights as functions of α (fast-l1: the
    sum of exponentials with the node counts chosen for the given ``alpha``, :func:`~neurospike.solvers.
    fractional.exponential_sum_terms`). States of order 1 stay integer-order. ``save_at`` must be grid nodes
    t0 + k·dt; forward mode only (the loop's while loops).

    ``forced_resets``: times (ms; e.g. a recording's spike times) at which the model's reset map is applied
    unless it spiked itself within ``forced_window`` ms before (:mod:`neurospike.solvers.fixed_step`): the run
    between recorded spikes starts from the reset state, as in fitting with forced resets (Jolivet, Lewis &
    Gerstner 2004). They become grid nodes; fixed-step methods of a model with a reset only.
    """
    if mode not in ("forward", "reverse"):
        raise NeurospikeError(f"mode={mode!r}: use 'forward' or 'reverse'")
    # the preset, parameters, input, times and options resolved and checked as for simulate (one-line errors)
    problem = resolve(model, preset, current=current, t_end=t_end, t0=t0, dt=dt, save_at=save_at, events=events,
                      max_rate=max_rate, alpha=alpha)
    model = problem.model
    chosen_method = methods.get(method) if isinstance(method, str) else method
    forced = np.sort(np.asarray([] if forced_resets is None else forced_resets, dtype=float).ravel())
    if forced.size and (model.spike is None or model.spike.reset is None):
        raise NeurospikeError(f"forced resets need a model with a reset; {model.name!r} has none")
    if isinstance(chosen_method, methods.Fractional) or problem.orders is not None:
        if forced.size:
            raise NeurospikeError("forced resets are not available for fractional runs; use a fixed-step method")
        chosen_method.check(problem)
        return _fractional(problem, chosen_method, int(max_spikes), mode)
    scheme = _scheme(method)
    dt, t0, t_end, save_at = problem.dt, problem.t0, problem.t_end, problem.save_at
    current_of = _amplitude_to_current(problem.current)
    breaks = [] if getattr(scheme, "input_at_step_start", False) else list(current_of(1.0).discontinuities())
    forced = forced[(forced > t0) & (forced <= t_end)]
    nodes = fixed_step.StepGrid(t0, t_end, dt, [*breaks, *save_at, *forced]).nodes()
    record_index = np.searchsorted(nodes, save_at - 1e-9 * dt)
    forced_steps = None
    if forced.size:  # step i ends at node i + 1
        flags = np.zeros(len(nodes) - 1, dtype=bool)
        flags[np.argmin(np.abs(nodes[1:, None] - forced[None, :]), axis=0)] = True
        forced_steps = (jnp.asarray(flags), jnp.asarray(float(forced_window)))
    max_spikes = int(max_spikes)
    if mode == "forward":
        capacity = int(math.ceil(fixed_step.BLOCK * dt * max_rate / 1000.0)) + 2
    else:
        capacity = max_spikes
    config = fixed_step.LoopConfig.for_model(model, scheme, events, capacity if model.spike else 0,
                                             bounded_events=mode == "reverse")

    def run(params: Mapping[str, Any], initial: Mapping[str, Any], amplitude):
        values, y0, input_current = _inputs(problem, current_of, params, initial, amplitude)
        args = (config, values, input_current, y0, jnp.asarray(nodes), jnp.asarray(problem.min_interval))
        if mode == "forward":
            trace, spikes, counts, status = fixed_step.run(*args, forced=forced_steps)
            times = spikes[0]
            taken = jnp.arange(times.shape[1])[None, :] < jnp.minimum(counts, times.shape[1])[:, None]
        else:
            trace, spikes, count, status = fixed_step.run_every_step(*args, forced=forced_steps)
            times = spikes[0]
            taken = jnp.arange(times.shape[0]) < count
        halted = status["halted"] & (status["halt_code"] != fixed_step.OK)
        states = jnp.concatenate([y0[None], trace])[record_index]
        return _outputs(states, nodes[record_index], times.reshape(-1), taken.reshape(-1), halted,
                        status["halt_time"], max_spikes)

    run.save_at, run.nodes, run.model = save_at, nodes, model
    return run


def _amplitude_to_current(base):
    """``amplitude -> current``: ``base`` itself when it is such a function, else :func:`with_amplitude`."""
    return base if not hasattr(base, "discontinuities") else (lambda amplitude: with_amplitude(base, amplitude))


def _inputs(problem, current_of, params, initial, amplitude):
    """The parameter values, initial state and input of one traced run."""
    model = problem.model
    unknown = set(params) - set(problem.params)
    if unknown:
        raise NeurospikeError(f"unknown parameter(s) {sorted(unknown)} for model {model.name!r}")
    values = {name: jnp.asarray(value, dtype=jnp.float64) for name, value in {**problem.params, **params}.items()}
    start = dict(zip(model.states, model.initial_state(values, jnp)))
    start.update(problem.preset.initial or {})
    start.update(initial or {})
    y0 = jnp.stack([jnp.asarray(start[s], dtype=jnp.float64) for s in model.states])
    return values, y0, current_of(jnp.asarray(amplitude, dtype=jnp.float64))


def _outputs(states, state_times, times, taken, halted, halt_time, max_spikes):
    """(states at the saved times, the first ``max_spikes`` spike times), NaN after a halt and as padding."""
    taken = taken & ~(halted & (times > halt_time))
    position = jnp.where(taken, jnp.cumsum(taken) - 1, max_spikes)
    spike_times = jnp.full((max_spikes,), jnp.nan).at[position].set(times, mode="drop")
    after_halt = halted & (jnp.asarray(state_times) > halt_time)
    return jnp.where(after_halt[:, None], jnp.nan, states), spike_times


def _fractional(problem, method, max_spikes, mode):
    """The traced run of an L1 method (:func:`neurospike.solvers.fractional.run_l1`'s loop) with the orders an
    argument."""
    if not (isinstance(method, methods.Fractional) and method.history in fractional.HISTORIES):
        l1 = [name for name, m in methods.METHODS.items() if isinstance(m, methods.Fractional)
              and m.history in fractional.HISTORIES]
        raise NeurospikeError(f"method {method.name!r} has no differentiable form; fractional runs take "
                              f"{', '.join(l1)}")
    if mode != "forward":
        raise NeurospikeError(f"mode={mode!r}: the fractional loops take forward mode (jax.jvp, jax.jacfwd)")
    model, dt, t0 = problem.model, problem.dt, problem.t0
    n_steps = int(math.floor((problem.t_end - t0) / dt + 1e-9))
    position = (problem.save_at - t0) / dt
    record_index = np.round(position).astype(int)
    off_grid = np.abs(position - record_index) > 1e-9 * np.maximum(1.0, np.abs(position))
    if np.any(off_grid) or np.any(record_index > n_steps):
        bad = problem.save_at[off_grid | (record_index > n_steps)][0]
        raise NeurospikeError(f"save-at time {bad:g} is not a node t0 + k*dt of the fractional grid (dt={dt:g} "
                              f"ms, last node {t0 + n_steps * dt:g})")
    nominal = np.asarray(problem.orders, dtype=float)
    fractional.check_run(method.name, model, problem.params, problem.y0, nominal, dt, n_steps, problem.events)
    constants_of = fractional.soe_constants if method.history == "soe" else fractional.direct_constants
    current_of = _amplitude_to_current(problem.current)
    n = model.n_states

    def run(params: Mapping[str, Any], initial: Mapping[str, Any], amplitude, alpha=None):
        values, y0, input_current = _inputs(problem, current_of, params, initial, amplitude)
        orders = jnp.broadcast_to(jnp.asarray(nominal if alpha is None else alpha, dtype=jnp.float64), (n,))
        constants = constants_of(nominal, n_steps, fractional.FAST_L1_TOLERANCE, traced_alpha=orders)
        orders = constants[-1]
        scale = dt ** orders * jax.scipy.special.gamma(2.0 - orders)
        resume = None
        if method.history == "soe":
            resume = (fractional.soe_memory(n, constants[1].shape[1]), jnp.asarray(-jnp.inf, dtype=jnp.float64))
        trace, _, _, spike_time, _, _, halt_time, _ = fractional.l1_loop(
            model, n_steps, method.implicit, problem.events == "located", method.history, values, input_current,
            y0, constants, scale, jnp.asarray(t0, dtype=jnp.float64), jnp.asarray(dt, dtype=jnp.float64), resume)
        return _outputs(trace[record_index], t0 + dt * record_index, spike_time, ~jnp.isnan(spike_time),
                        ~jnp.isnan(halt_time), halt_time, max_spikes)

    run.save_at, run.nodes, run.model = problem.save_at, t0 + dt * np.arange(n_steps + 1), model
    return run
