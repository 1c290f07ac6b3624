"""Kernel research: 100 000 Izhikevich (2003) neurons, rk4, dt 0.1 ms, spike counts per neuron, in JAX.

    dv/dt = 0.04 v² + 5 v + 140 − u + I,   du/dt = a (b v − u),   if v ≥ 30 mV: v ← c, u ← u + d

Parameters as in Izhikevich's 2003 network example (spnet.m, excitatory cells): a = 0.02, b = 0.2,
c = −65 + 15 r², d = 8 − 6 r², r ~ U(0, 1), plus a constant per-neuron current I ~ U(0, 15) so that most
cells fire. Every variant computes the same numbers (up to float rounding); they differ only in how the
loops are laid out, so their ns per neuron-step (wall / (N · steps), min over repeats, after compile) say
where the time goes.

Usage (flags that change XLA must be given before jax is imported, so each set of flags is one process):

    .venv/bin/python benchmarks/population_kernels.py                     # all single-device variants
    .venv/bin/python benchmarks/population_kernels.py --devices 2         # + shard_map over 2 host devices
    .venv/bin/python benchmarks/population_kernels.py --variants blocked --steps 10000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10_000, help="rk4 steps of dt (10 000 = 1000 ms at 0.1)")
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", type=int, default=1, help="XLA host devices (shard_map variants if > 1)")
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="float64")
    parser.add_argument("--variants", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--xla-flags", default="", help="extra XLA_FLAGS")
    parser.add_argument("--fast-math", action="store_true",
                        help="compiler_options xla_cpu_enable_fast_math (honouring NaN, Inf, division, functions)")
    parser.add_argument("--vector-width", type=int, default=0,
                        help="compile with compiler_options xla_cpu_prefer_vector_width (e.g. 512; 0 = default)")
    return parser.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    flags = [ARGS.xla_flags] if ARGS.xla_flags else []
    if ARGS.devices > 1:
        flags.append(f"--xla_force_host_platform_device_count={ARGS.devices}")
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402
from jax.sharding import Mesh, PartitionSpec  # noqa: E402

jax.config.update("jax_enable_x64", True)

THRESHOLD = 30.0


def network_parameters(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-neuron a, b, c, d, I of Izhikevich's 2003 excitatory population, I ~ U(0, 15) constant."""
    rng = np.random.default_rng(seed)
    r = rng.random(n)
    return {
        "a": np.full(n, 0.02), "b": np.full(n, 0.2), "c": -65.0 + 15.0 * r**2, "d": 8.0 - 6.0 * r**2,
        "I": rng.uniform(0.0, 15.0, n),
    }


def initial_state(p):
    """v = −65 mV, u = b·v (spnet.m)."""
    v = np.full_like(p["a"], -65.0)
    return v, p["b"] * v


# --- one rk4 step for a block of neurons; every variant below is a loop layout around this ---------------

def rk4_step(v, u, a, b, I, dt):
    """Classical rk4 on (v, u) of the Izhikevich 2003 equations (no reset)."""
    def f(v, u):
        return (0.04 * v + 5.0) * v + 140.0 - u + I, a * (b * v - u)
    k1v, k1u = f(v, u)
    k2v, k2u = f(v + 0.5 * dt * k1v, u + 0.5 * dt * k1u)
    k3v, k3u = f(v + 0.5 * dt * k2v, u + 0.5 * dt * k2u)
    k4v, k4u = f(v + dt * k3v, u + dt * k3u)
    sixth = dt / 6.0
    return v + sixth * (k1v + 2.0 * (k2v + k3v) + k4v), u + sixth * (k1u + 2.0 * (k2u + k3u) + k4u)


def step_reset(carry, p, dt):
    """rk4 step, then reset where v ≥ 30 (spike counted at the end of the step)."""
    v, u, count = carry
    v1, u1 = rk4_step(v, u, p["a"], p["b"], p["I"], dt)
    spiked = v1 >= THRESHOLD
    return (jnp.where(spiked, p["c"], v1), jnp.where(spiked, u1 + p["d"], u1), count + spiked.astype(count.dtype))


def step_located(carry, p, dt):
    """rk4 step; where v crossed 30 inside it, the crossing time is located by linear interpolation of v,
    the state is reset there (v ← c, u ← u(t*) + d, u(t*) linear too) and a second rk4 step integrates
    the rest of the step (1 − θ)·dt from the reset state. Computed for all neurons, selected with where."""
    v, u, count = carry
    v1, u1 = rk4_step(v, u, p["a"], p["b"], p["I"], dt)
    spiked = v1 >= THRESHOLD
    theta = jnp.clip((THRESHOLD - v) / jnp.where(spiked, v1 - v, 1.0), 0.0, 1.0)
    u_star = u + theta * (u1 - u)
    v2, u2 = rk4_step(p["c"], u_star + p["d"], p["a"], p["b"], p["I"], (1.0 - theta) * dt)
    return (jnp.where(spiked, v2, v1), jnp.where(spiked, u2, u1), count + spiked.astype(count.dtype))


def step_packed(carry, p, dt, located=False):
    """Same step as ``step_reset`` (or ``step_located`` if ``located``) but the state is ONE complex array
    z = v + i·u, so XLA:CPU (which has no multi-output fusion) computes the rk4 step once per neuron instead
    of once per output array. A neuron reset in this step is marked by storing v as 2·30 − v (> 30, which is
    impossible otherwise since v < 30 after a step); the next step decodes it, and the spike count reads the
    marker from the step's INPUT, so the count fusion never recomputes the rk4 step (the count lags one
    step; ``finish_count`` adds the last one)."""
    z, count = carry
    stored, u = z.real, z.imag
    marked = stored >= THRESHOLD
    # After a reset at the end of the step v is exactly c; after a located reset it is decoded (within 1 ulp).
    v = jnp.where(marked, 2.0 * THRESHOLD - stored if located else p["c"], stored)
    v1, u1 = rk4_step(v, u, p["a"], p["b"], p["I"], dt)
    spiked = v1 >= THRESHOLD
    if located:
        theta = jnp.clip((THRESHOLD - v) / jnp.where(spiked, v1 - v, 1.0), 0.0, 1.0)
        v_after, u_after = rk4_step(p["c"], u + theta * (u1 - u) + p["d"], p["a"], p["b"], p["I"],
                                    (1.0 - theta) * dt)
    else:
        v_after, u_after = p["c"], u1 + p["d"]
    z1 = lax.complex(jnp.where(spiked, 2.0 * THRESHOLD - v_after, v1), jnp.where(spiked, u_after, u1))
    return z1, count + marked.astype(count.dtype)


def finish_count(z, count):
    return count + (z.real >= THRESHOLD).astype(count.dtype)


# --- loop layouts ----------------------------------------------------------------------------------------

def scan_two_arrays(p, v, u, steps, dt, unroll=1, step=step_reset):
    """Obvious layout: lax.scan over steps, the whole population per step (state as separate arrays)."""
    def body(carry, _):
        return step(carry, p, dt), None
    carry, _ = lax.scan(body, (v, u, jnp.zeros(v.shape, jnp.int32)), None, length=steps, unroll=unroll)
    return carry[2]


def scan_stacked(p, v, u, steps, dt, unroll=1):
    """lax.scan over steps with the state as one (2, N) array."""
    def body(y, _):
        v1, u1, spikes = step_reset((y[0], y[1], jnp.zeros(y.shape[1:], jnp.int32)), p, dt)
        return jnp.stack([v1, u1]), spikes
    def outer(carry, _):
        y, count = carry
        y, spikes = body(y, None)
        return (y, count + spikes), None
    (_, count), _ = lax.scan(outer, (jnp.stack([v, u]), jnp.zeros(v.shape, jnp.int32)), None, length=steps,
                             unroll=unroll)
    return count


def blocked(p, v, u, steps, dt, block=4096, unroll=10, step=step_reset):
    """Loop interchange (time blocking): the population is cut into blocks of ``block`` neurons; lax.map runs
    the blocks one after another and each block runs ALL steps in a fori_loop, so its state and parameters
    stay in L1/L2 instead of streaming the whole population through memory every step. ``unroll`` steps are
    fused into one XLA loop fusion, so v, u stay in registers across those steps."""
    n = v.shape[0]
    n_blocks = -(-n // block)
    pad = n_blocks * block - n

    def split(x, fill):
        return jnp.pad(x, (0, pad), constant_values=fill).reshape(n_blocks, block)

    # Padding neurons are quiet (I = 0, at rest-ish) and their counts are cut off at the end.
    names = ("a", "b", "c", "d", "I")
    fills = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "I": 0.0}
    blocks = {k: split(p[k], fills[k]) for k in names}

    def run_block(xs):
        q, vb, ub = xs
        def body(_, carry):
            return step(carry, q, dt)
        _, _, count = lax.fori_loop(0, steps, body, (vb, ub, jnp.zeros(vb.shape, jnp.int32)), unroll=unroll)
        return count

    counts = lax.map(run_block, (blocks, split(v, -65.0), split(u, -13.0)))
    return counts.reshape(-1)[:n]


def packed_scan(p, v, u, steps, dt, unroll=1):
    """lax.scan over steps, whole population, complex-packed state."""
    def body(carry, _):
        return step_packed(carry, p, dt), None
    (z, count), _ = lax.scan(body, (lax.complex(v, u), jnp.zeros(v.shape, jnp.int32)), None, length=steps,
                             unroll=unroll)
    return finish_count(z, count)


def packed_blocked(p, v, u, steps, dt, block=8192, unroll=1, located=False):
    """Loop interchange + complex-packed state: lax.map over blocks of neurons, fori_loop over all steps."""
    n = v.shape[0]
    n_blocks = -(-n // block)
    pad = n_blocks * block - n
    fills = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "I": 0.0}

    def split(x, fill):
        return jnp.pad(x, (0, pad), constant_values=fill).reshape(n_blocks, block)

    def run_block(xs):
        q, z = xs
        z, count = lax.fori_loop(0, steps, lambda _, c: step_packed(c, q, dt, located),
                                 (z, jnp.zeros(z.shape, jnp.int32)), unroll=unroll)
        return finish_count(z, count)

    blocks = {k: split(p[k], f) for k, f in fills.items()}
    counts = lax.map(run_block, (blocks, lax.complex(split(v, -65.0), split(u, -13.0))))
    return counts.reshape(-1)[:n]


def independent_halves(kernel, parts=2):
    """Split the population into ``parts`` slices processed by independent loops inside ONE jit, so that the
    XLA:CPU runtime may run them concurrently on its thread pool without extra host devices."""
    def run(p, v, u, steps, dt):
        n = v.shape[0]
        edges = [round(i * n / parts) for i in range(parts + 1)]
        return jnp.concatenate([
            kernel({k: x[lo:hi] for k, x in p.items()}, v[lo:hi], u[lo:hi], steps, dt)
            for lo, hi in zip(edges[:-1], edges[1:])])
    return run


def sharded(kernel, n_devices):
    """Run ``kernel(p, v, u)`` on each of ``n_devices`` XLA host devices over its slice of the population."""
    mesh = Mesh(np.array(jax.devices()[:n_devices]), ("neurons",))
    spec = PartitionSpec("neurons")
    return jax.shard_map(kernel, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec, check_vma=False)


def variants(n_devices: int):
    """name -> kernel(p, v, u, steps, dt) -> spike counts. Unrolled variants show that unrolling LOSES here."""
    out = {
        "scan_two_arrays": lambda p, v, u, s, dt: scan_two_arrays(p, v, u, s, dt),
        "scan_stacked_2xN": lambda p, v, u, s, dt: scan_stacked(p, v, u, s, dt),
        "scan_unroll10": lambda p, v, u, s, dt: scan_two_arrays(p, v, u, s, dt, unroll=10),
        "blocked_b8192_u1": lambda p, v, u, s, dt: blocked(p, v, u, s, dt, 8192, 1),
        "blocked_b8192_u10": lambda p, v, u, s, dt: blocked(p, v, u, s, dt, 8192, 10),
        "packed_scan": lambda p, v, u, s, dt: packed_scan(p, v, u, s, dt),
        "packed_scan_unroll4": lambda p, v, u, s, dt: packed_scan(p, v, u, s, dt, unroll=4),
    }
    for block in (512, 1024, 2048, 4096, 16384):
        out[f"packed_blocked_b{block}"] = (
            lambda p, v, u, s, dt, block=block: packed_blocked(p, v, u, s, dt, block))
    out["packed_blocked_b1024_unroll4"] = lambda p, v, u, s, dt: packed_blocked(p, v, u, s, dt, 1024, 4)
    out["packed_blocked_b1024_halves2"] = independent_halves(
        lambda p, v, u, s, dt: packed_blocked(p, v, u, s, dt, 1024))
    out["located_scan"] = lambda p, v, u, s, dt: scan_two_arrays(p, v, u, s, dt, step=step_located)
    out["located_packed_b1024"] = lambda p, v, u, s, dt: packed_blocked(p, v, u, s, dt, 1024, 1, True)
    if n_devices > 1:
        for name in ("scan_two_arrays", "packed_scan", "packed_blocked_b1024", "packed_blocked_b4096",
                     "located_packed_b1024"):
            out[f"shard{n_devices}_{name}"] = (
                lambda p, v, u, s, dt, k=out[name]: sharded(lambda p_, v_, u_: k(p_, v_, u_, s, dt),
                                                           n_devices)(p, v, u))
    return out


def measure(kernel, p, v, u, steps, dt, repeats, dtype, options=None):
    """(compile s, min wall s, min CPU s, counts) of jit(kernel) after one compile. CPU time (all threads) is
    shown because the machine is shared: for a one-thread kernel it is the wall time an idle core would give."""
    p = {k: jnp.asarray(x, dtype) for k, x in p.items()}
    v, u = jnp.asarray(v, dtype), jnp.asarray(u, dtype)
    fn = jax.jit(lambda p, v, u: kernel(p, v, u, steps, dt))
    began = time.perf_counter()
    compiled = fn.lower(p, v, u).compile(compiler_options=options)
    compile_s = time.perf_counter() - began
    runs, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        counts = jax.block_until_ready(compiled(p, v, u))
        runs.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return compile_s, min(runs), min(cpu), np.asarray(counts)


def main(args):
    p = network_parameters(args.neurons)
    v, u = initial_state(p)
    table = variants(args.devices)
    chosen = list(table) if args.variants == "all" else [
        name for name in table if any(name == w or name.startswith(w) for w in args.variants.split(","))]
    options = {"xla_cpu_prefer_vector_width": args.vector_width} if args.vector_width else {}
    if args.fast_math:
        options.update({f"xla_cpu_{k}": True for k in (
            "enable_fast_math", "fast_math_honor_nans", "fast_math_honor_infs", "fast_math_honor_division",
            "fast_math_honor_functions")})
    options = options or None
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    print(f"# N={args.neurons} steps={args.steps} dt={args.dt} devices={jax.device_count()} "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} compiler_options={options} load={os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'variant':38s} {'dtype':8s} {'compile s':>9s} {'run s':>8s} {'ns/neuron-step':>15s} {'cpu ns':>7s} {'spikes':>10s}")
    for dtype in dtypes:
        for name in chosen:
            compile_s, run_s, cpu_s, counts = measure(table[name], p, v, u, args.steps, args.dt, args.repeats, dtype,
                                               options)
            ns = run_s / (args.neurons * args.steps) * 1e9
            print(f"{name:38s} {dtype:8s} {compile_s:9.2f} {run_s:8.3f} {ns:15.2f} {cpu_s / (args.neurons * args.steps) * 1e9:7.2f} "
                  f"{int(counts.sum()):10d}",
                  flush=True)


if __name__ == "__main__":
    main(ARGS)
