import numpy as np
import pytest

from neurospike.analysis import match_spikes, observed_order, relative_l2, state_errors
from neurospike.errors import NeurospikeError
from neurospike.trajectory import Trajectory


def hand_made(t, **states):
    return Trajectory(t=np.asarray(t, dtype=float), states={k: np.asarray(v, dtype=float) for k, v in states.items()},
                      spikes=np.zeros(0), model="hand", method="hand", params={})


# --- match_spikes ---------------------------------------------------------------------------------------------
def test_identical_trains_match_with_zero_error():
    match = match_spikes([10.0, 20.0, 30.0], [10.0, 20.0, 30.0])
    assert match.complete
    assert np.array_equal(match.errors, [0.0, 0.0, 0.0])
    assert match.worst == 0.0


def test_shifted_train_gives_the_shift_per_spike():
    reference = np.array([5.0, 17.0, 29.5, 44.0])
    match = match_spikes(reference, reference + 0.3)
    assert np.allclose(match.errors, 0.3)
    assert np.array_equal(match.pairs, [[0, 0], [1, 1], [2, 2], [3, 3]])
    assert match.worst == pytest.approx(0.3)


def test_missing_spike_is_reported_and_the_rest_paired():
    match = match_spikes([10.0, 20.0, 30.0, 40.0], [10.1, 30.2, 39.9])
    assert np.array_equal(match.missing, [20.0])
    assert match.extra.size == 0
    assert np.array_equal(match.reference_indices, [0, 2, 3])
    assert np.allclose(match.errors, [0.1, 0.2, -0.1])
    assert match.worst_matched == pytest.approx(0.2)
    assert match.worst == np.inf


def test_extra_spike_is_reported_and_the_rest_paired():
    match = match_spikes([10.0, 20.0, 30.0], [10.1, 20.1, 25.0, 30.1, 50.0])
    assert np.array_equal(match.extra, [25.0, 50.0])
    assert match.missing.size == 0
    assert np.allclose(match.errors, [0.1, 0.1, 0.1])


def test_matching_is_optimal_not_greedy_in_order():
    # Pairing the first spikes with each other (10 with 11.9) costs 1.9 ms; the optimum pairs 11.9 with 12.
    match = match_spikes([10.0, 12.0], [11.9])
    assert np.array_equal(match.pairs, [[1, 0]])
    assert np.allclose(match.errors, [-0.1])
    assert np.array_equal(match.missing, [10.0])


def test_tolerance_leaves_far_spikes_unpaired():
    match = match_spikes([10.0, 20.0], [10.2, 27.0], tolerance=1.0)
    assert np.allclose(match.errors, [0.2])
    assert np.array_equal(match.missing, [20.0])
    assert np.array_equal(match.extra, [27.0])
    assert np.array_equal(match_spikes([10.0, 20.0], [10.2, 27.0]).errors.round(9), [0.2, 7.0])


def test_empty_trains():
    nothing = match_spikes([], [])
    assert nothing.complete and np.isnan(nothing.worst) and np.isnan(nothing.worst_matched)
    all_missing = match_spikes([1.0, 2.0], [])
    assert np.array_equal(all_missing.missing, [1.0, 2.0]) and all_missing.worst == np.inf


@pytest.mark.parametrize("bad, message", [([3.0, 1.0], "sorted"), ([1.0, np.nan], "nan")])
def test_bad_spike_trains_raise(bad, message):
    with pytest.raises(NeurospikeError, match=message):
        match_spikes(bad, [1.0])


def test_bad_tolerance_names_the_value():
    with pytest.raises(NeurospikeError, match="-1"):
        match_spikes([1.0], [1.0], tolerance=-1)


# --- observed_order -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [1.0, 2.0, 4.0, 0.5])
def test_observed_order_recovers_the_exponent_of_synthetic_errors(order):
    dts = np.array([0.2, 0.1, 0.05, 0.025])
    assert observed_order(dts, 3.7 * dts**order) == pytest.approx(order, abs=1e-12)


def test_observed_order_is_the_least_squares_slope_of_noisy_errors():
    dts = np.array([0.1, 0.05, 0.025])
    errors = 2.0 * dts**2 * np.array([1.1, 0.9, 1.05])
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert observed_order(dts, errors) == pytest.approx(slope)
    assert 1.8 < slope < 2.2


def test_observed_order_skips_unusable_errors():
    dts = np.array([0.4, 0.2, 0.1, 0.05])
    errors = dts**3
    errors[0], errors[3] = np.nan, 0.0
    assert observed_order(dts, errors) == pytest.approx(3.0)
    assert np.isnan(observed_order([0.1, 0.05], [1e-3, np.inf]))


# --- state_errors and relative_l2 -----------------------------------------------------------------------------
def test_state_errors_of_a_constant_offset():
    t = np.linspace(0.0, 10.0, 101)
    reference = hand_made(t, v=np.sin(t), w=t)
    shifted = hand_made(t, v=np.sin(t) - 0.25, w=t + 2.0)
    errors = state_errors(shifted, reference, [0.0, 5.0, 10.0])
    assert np.allclose(errors["v"], 0.25) and np.allclose(errors["w"], 2.0)


def test_state_errors_refuse_times_outside_the_run():
    reference = hand_made([0.0, 1.0], v=[0.0, 1.0])
    with pytest.raises(NeurospikeError, match="3"):
        state_errors(reference, reference, [0.5, 3.0])


def test_relative_l2_of_a_trajectory_against_itself_is_zero():
    t = np.linspace(0.0, 50.0, 501)
    run = hand_made(t, v=-60 + 5 * np.sin(t))
    assert relative_l2(run, run) == 0.0


def test_relative_l2_of_a_known_perturbation():
    # x_ref = sin(2πt/T), x = x_ref + ε cos(2πt/T) over one period: ‖ε cos‖ / ‖sin‖ = ε exactly.
    period, epsilon = 100.0, 0.03
    t = np.linspace(0.0, period, 20_001)
    reference = hand_made(t, v=np.sin(2 * np.pi * t / period))
    perturbed = hand_made(t, v=np.sin(2 * np.pi * t / period) + epsilon * np.cos(2 * np.pi * t / period))
    assert relative_l2(perturbed, reference) == pytest.approx(epsilon, rel=1e-9)
    # a scaled copy: relative error = |scale − 1| on any grid
    scaled = hand_made(t, v=1.5 * np.sin(2 * np.pi * t / period))
    assert relative_l2(scaled, reference, times=np.linspace(3.0, 61.0, 777)) == pytest.approx(0.5, rel=1e-12)


def test_relative_l2_rejects_an_unknown_state():
    run = hand_made([0.0, 1.0], v=[1.0, 2.0])
    with pytest.raises(NeurospikeError, match="'q'"):
        relative_l2(run, run, state="q")
