"""Properties of the input currents and of parameter validation, over generated values (hypothesis).

The truths are the definitions: a step is its baseline before ``start`` and its amplitude until ``stop``; a ramp
is baseline + slope·(t − start) and continuous at ``start``; a pulse train is ``amplitude`` inside each
[start + k·period, start + k·period + width]; the declared discontinuities are exactly the piece edges. Nothing
here compiles JAX: currents are evaluated with numpy (and once per example eagerly with jax.numpy).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from neurospike import currents, models
from neurospike.errors import NeurospikeError
from neurospike.simulate import resolve

SETTINGS = settings()  # the profile's: 40 derandomized examples unless --hypothesis-profile=explore (conftest.py)
finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
# XLA on CPU flushes subnormal floats to zero (jnp.asarray([2e-311]) > 0 is False), so values that jax.numpy
# evaluates are kept normal; a time of 1e-308 ms has no meaning for a neuron anyway.
finite_normal = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)
positive = st.floats(min_value=1e-2, max_value=1e2)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


def spec(kind: str, **values) -> str:
    """A CLI spec with every number written by repr (so it parses back to the same float)."""
    return f"{kind}:" + ",".join(f"{name}={value!r}" for name, value in values.items())


def assert_one_line_naming(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --- parse builds what the factories build -------------------------------------------------------------------
@SETTINGS
@given(start=finite, amplitude=finite, length=positive, baseline=finite)
def test_step_spec_round_trips(start, amplitude, length, baseline):
    stop = start + length
    assume(stop > start)
    parsed = currents.parse(spec("step", start=start, amplitude=amplitude, stop=stop, baseline=baseline))
    assert parsed == currents.step(start, amplitude, stop=stop, baseline=baseline)


@SETTINGS
@given(start=finite, width=positive, gap=st.floats(0, 1e2), amplitude=finite, count=st.integers(1, 20))
def test_pulses_spec_round_trips(start, width, gap, amplitude, count):
    period = width + gap
    parsed = currents.parse(spec("pulses", start=start, width=width, period=period, amplitude=amplitude,
                                 count=float(count)))
    assert parsed == currents.pulses(start, width, period, amplitude, count)


@SETTINGS
@given(amplitude=finite, frequency=finite, offset=finite, phase=finite)
def test_sine_spec_round_trips(amplitude, frequency, offset, phase):
    parsed = currents.parse(spec("sine", amplitude=amplitude, frequency=frequency, offset=offset, phase=phase))
    assert parsed == currents.sine(amplitude, frequency, offset=offset, phase=phase)


# --- values against the definitions ---------------------------------------------------------------------------
@SETTINGS
@given(start=finite, amplitude=finite, baseline=finite, length=positive,
       fractions=st.lists(st.floats(0, 1), min_size=1))
def test_step_is_baseline_before_start_amplitude_until_stop(start, amplitude, baseline, length, fractions):
    stop = start + length
    assume(stop > start)
    current = currents.parse(spec("step", start=start, amplitude=amplitude, stop=stop, baseline=baseline))
    span = stop - start
    before = start - span * (1 + np.asarray(fractions))
    inside = start + span * np.clip(fractions, 1e-6, 1 - 1e-6)
    after = stop + span * (1e-6 + np.asarray(fractions))
    assume(np.all(inside > start) and np.all(inside < stop))
    assert np.all(current(before) == baseline)
    assert np.all(current(inside) == amplitude)
    assert np.all(current(after) == baseline)


@SETTINGS
@given(start=finite, slope=finite, baseline=finite, offsets=st.lists(st.floats(1e-9, 1e2), min_size=1))
def test_ramp_is_continuous_at_start_and_linear_after(start, slope, baseline, offsets):
    current = currents.parse(spec("ramp", start=start, slope=slope, baseline=baseline))
    times = start + np.asarray(offsets)
    assume(np.all(times > start))
    assert current(np.asarray([start - 1.0, start])).tolist() == [baseline, baseline]
    expected = baseline + slope * (times - start)
    assert np.allclose(current(times), expected, rtol=1e-12, atol=1e-9)
    epsilon = 1e-9 * max(1.0, abs(start))
    assert abs(current(start + epsilon) - baseline) <= abs(slope) * 2 * epsilon + 1e-12  # no jump at start


@SETTINGS
@given(start=finite, width=positive, gap=positive, amplitude=finite, count=st.integers(1, 10),
       samples=st.lists(st.floats(-1, 12), min_size=1, max_size=20))
def test_pulses_are_on_exactly_inside_each_pulse(start, width, gap, amplitude, count, samples):
    period = width + gap
    current = currents.pulses(start, width, period, amplitude, count)
    times = start + period * np.asarray(samples)
    phase = (times - start) - period * np.floor((times - start) / period)
    index = np.floor((times - start) / period)
    on = (index >= 0) & (index < count) & (phase > 1e-9 * period) & (phase < width - 1e-9 * period)
    off = (index < 0) | (index >= count) | ((phase > width + 1e-9 * period) & (phase < period - 1e-9 * period))
    values = current(times)
    assert np.all(values[on] == amplitude)
    assert np.all(values[off] == 0.0)


@SETTINGS
@given(baseline=finite, segments=st.lists(st.tuples(finite, positive, finite, finite), min_size=1, max_size=6))
def test_discontinuities_are_the_sorted_finite_piece_edges(baseline, segments):
    current = currents.from_segments({"baseline": baseline, "segments": [
        {"start": s, "end": s + length, "value": v, "slope": k} for s, length, v, k in segments]})
    edges = current.discontinuities()
    assert np.all(np.diff(edges) > 0)  # sorted, no repeats
    declared = {float(x) for x in (*current.starts, *current.ends)}
    assert set(edges.tolist()) == declared
    assert np.all(np.isfinite(edges))


@SETTINGS
@given(baseline=finite_normal,
       segments=st.lists(st.tuples(finite_normal, positive, finite_normal, finite_normal), min_size=1, max_size=6),
       times=st.lists(st.floats(-1.5e3, 1.5e3, allow_subnormal=False), min_size=1, max_size=20))
def test_numpy_and_jax_numpy_evaluations_agree(baseline, segments, times):
    current = currents.from_segments({"baseline": baseline, "segments": [
        {"start": s, "end": s + length, "value": v, "slope": k} for s, length, v, k in segments]})
    t = np.asarray(times)
    with_numpy = current(t, t, np)
    with_jax = np.asarray(current(jnp.asarray(t), jnp.asarray(t), jnp))
    assert with_jax.dtype == np.float64
    np.testing.assert_allclose(with_jax, with_numpy, rtol=1e-14, atol=1e-12)


@SETTINGS
@given(amplitude=finite, frequency=finite, offset=finite, phase=finite, times=st.lists(finite, min_size=1))
def test_sine_matches_its_formula_and_has_no_discontinuities(amplitude, frequency, offset, phase, times):
    current = currents.sine(amplitude, frequency, offset=offset, phase=phase)
    t = np.asarray(times)
    expected = offset + amplitude * np.sin(2 * np.pi * frequency * t / 1000.0 + phase)
    np.testing.assert_allclose(current(t), expected, rtol=1e-12, atol=1e-9)
    assert current.discontinuities().size == 0


# --- invalid specs: one line naming the bad value -------------------------------------------------------------
FINITE_CHECKED = {  # kind -> (valid arguments, names checked for finiteness)
    "constant": ({"amplitude": 1.0}, ("amplitude",)),
    "step": ({"start": 1.0, "amplitude": 2.0, "stop": 5.0, "baseline": 0.5}, ("start", "amplitude", "baseline")),
    "ramp": ({"start": 1.0, "slope": 2.0, "stop": 5.0, "baseline": 0.5}, ("start", "slope", "baseline")),
    "pulses": ({"start": 1.0, "width": 1.0, "period": 3.0, "amplitude": 2.0, "count": 3.0, "baseline": 0.0},
               ("start", "width", "period", "amplitude", "baseline")),
    "sine": ({"amplitude": 1.0, "frequency": 10.0, "offset": 0.0, "phase": 0.0},
             ("amplitude", "frequency", "offset", "phase")),
    "ou": ({"mean": 0.0, "sigma": 1.0, "tau": 5.0, "dt": 0.1}, ("mean", "sigma", "tau", "dt")),
}
CHECKED = [(kind, name) for kind, (_, names) in FINITE_CHECKED.items() for name in names]


@SETTINGS
@given(case=st.sampled_from(CHECKED), bad=non_finite)
def test_non_finite_arguments_are_refused_by_name(case, bad):
    kind, name = case
    arguments = {**FINITE_CHECKED[kind][0], name: bad}
    with pytest.raises(NeurospikeError) as error:
        currents.parse(spec(kind, **arguments), t_end=10.0)
    assert_one_line_naming(error, f"{name}=")


@SETTINGS
@given(width=st.floats(-1e3, 0.0), period=st.floats(-1e3, 1e3))
def test_pulses_with_non_positive_width_or_short_period_are_refused(width, period):
    with pytest.raises(NeurospikeError) as error:
        currents.pulses(0.0, width, period, 1.0, 2)
    assert_one_line_naming(error, "width")


@SETTINGS
@given(width=positive, shortfall=positive)
def test_pulses_with_period_shorter_than_width_are_refused(width, shortfall):
    period = width - shortfall
    assume(period < width)
    with pytest.raises(NeurospikeError) as error:
        currents.parse(spec("pulses", start=0.0, width=width, period=period, amplitude=1.0, count=2.0))
    assert_one_line_naming(error, f"period={period!r}")


@SETTINGS
@given(kind=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_unknown_kinds_are_refused_by_name(kind):
    assume(kind not in FINITE_CHECKED)
    with pytest.raises(NeurospikeError) as error:
        currents.parse(f"{kind}:amplitude=1")
    assert_one_line_naming(error, repr(kind))


@SETTINGS
@given(kind=st.sampled_from(sorted(FINITE_CHECKED)), key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1,
                                                                  max_size=10))
def test_unknown_arguments_are_refused_by_name(kind, key):
    arguments, _ = FINITE_CHECKED[kind]
    assume(key not in arguments and key not in ("seed", "count"))
    with pytest.raises(NeurospikeError) as error:
        currents.parse(spec(kind, **arguments) + f",{key}=1")
    assert_one_line_naming(error, f"{key}=1")


@SETTINGS
@given(text=st.text(alphabet="xyz!?#", min_size=1, max_size=5))
def test_non_numeric_values_are_refused_by_name(text):
    with pytest.raises(NeurospikeError) as error:
        currents.parse(f"step:start=1,amplitude={text}")
    assert_one_line_naming(error, repr(text))


# Found by these properties (and fixed in currents.py).
@pytest.mark.parametrize("kind", ["step", "ramp"])
def test_a_nan_stop_is_refused(kind):
    arguments = {**FINITE_CHECKED[kind][0], "stop": math.nan}
    with pytest.raises(NeurospikeError):
        currents.parse(spec(kind, **arguments))


@pytest.mark.parametrize("text", ["pulses:start=0,width=1,period=2,amplitude=1,count=inf",
                                  "pulses:start=0,width=1,period=2,amplitude=1,count=nan",
                                  "ou:mean=0,sigma=1,tau=5,seed=nan"])
def test_a_non_finite_count_or_seed_is_a_neurospike_error(text):
    with pytest.raises(NeurospikeError):
        currents.parse(text, t_end=10.0)


@pytest.mark.parametrize("end", [math.nan, 2.0])
def test_a_segment_must_end_after_it_starts(end):
    with pytest.raises(NeurospikeError):
        currents.from_segments({"segments": [{"start": 5.0, "end": end, "value": 1.0}]})


# --- parameter validation in simulate.resolve -----------------------------------------------------------------
MODELS = sorted(models.REGISTRY)
parameter = st.sampled_from(MODELS).flatmap(
    lambda m: st.tuples(st.just(m), st.sampled_from(sorted(models.get(m).params))))


@SETTINGS
@given(case=parameter, value=finite)
def test_finite_parameters_are_taken(case, value):
    model, name = case
    assert resolve(model, params={name: value}).params[name] == value


@SETTINGS
@given(case=parameter, bad=non_finite)
def test_non_finite_parameters_are_refused_by_name(case, bad):
    model, name = case
    with pytest.raises(NeurospikeError) as error:
        resolve(model, params={name: bad})
    assert_one_line_naming(error, f"parameter {name}=")


@SETTINGS
@given(case=parameter, extra=st.sampled_from("xqz_0"))
def test_misspelt_parameters_are_refused_with_a_suggestion(case, extra):
    model, name = case
    wrong = name + extra
    assume(wrong not in models.get(model).params)
    with pytest.raises(NeurospikeError) as error:
        resolve(model, params={wrong: 1.0})
    assert_one_line_naming(error, repr(wrong), "did you mean")


@SETTINGS
@given(model=st.sampled_from(MODELS), t_end=st.one_of(st.floats(-1e3, 0.0), non_finite))
def test_an_end_time_not_after_t0_is_refused(model, t_end):
    with pytest.raises(NeurospikeError) as error:
        resolve(model, t_end=t_end)
    assert_one_line_naming(error, "t_end=")
