"""The networks of every PINN method: a multilayer perceptron of the scaled time τ ∈ [0, 1].

N(τ) = W_L σ(… σ(W_1 φ(x) + b_1) …) + b_L with x = 2τ − 1 ∈ [−1, 1], σ = tanh or sin, and optional Fourier
features φ(x) = (x, sin πkx, cos πkx for k = 1 … F) against the spectral bias towards smooth functions (Tancik et
al., NeurIPS 2020). Weights: Glorot normal, biases 0; a network is a list of (W, b) pairs, a JAX pytree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": jnp.tanh, "sin": jnp.sin}


def init_network(key, n_out: int, widths: tuple[int, ...], fourier: int = 0, dtype=jnp.float64):
    """Random weights for an MLP from τ (with ``fourier`` frequencies) through ``widths`` to ``n_out`` outputs."""
    sizes = [1 + 2 * fourier, *widths, n_out]
    layers = []
    for n_in, n_next in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        weight = jax.random.normal(sub, (n_in, n_next), dtype=dtype) * np.sqrt(2.0 / (n_in + n_next))
        layers.append((weight, jnp.zeros((n_next,), dtype=dtype)))
    return layers


def features(tau, fourier: int):
    x = jnp.atleast_1d(2.0 * tau - 1.0)
    if not fourier:
        return x
    k = jnp.pi * jnp.arange(1, fourier + 1, dtype=x.dtype)
    return jnp.concatenate([x, jnp.sin(k * x[0]), jnp.cos(k * x[0])])


def apply_network(layers, tau, activation: str = "tanh", fourier: int = 0):
    """N(τ) for one scalar τ: a vector of the output size."""
    sigma = ACTIVATIONS[activation]
    h = features(tau, fourier)
    for weight, bias in layers[:-1]:
        h = sigma(h @ weight + bias)
    weight, bias = layers[-1]
    return h @ weight + bias


def parameter_count(layers) -> int:
    return int(sum(np.size(w) + np.size(b) for w, b in layers))
