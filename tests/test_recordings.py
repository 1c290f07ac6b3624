"""Recordings in (neurospike.data): CSV, NWB and ABF files written here, their units, sweeps and one-line refusals;
the Sampled current that feeds a recording's current to the solvers."""

import struct
import subprocess
import sys
from datetime import datetime, timezone

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurospike as ns
from neurospike import currents
from neurospike.data import Recording, load_recording

# --- helpers -------------------------------------------------------------------------------------------------


def write_csv(path, text):
    path.write_text(text)
    return path


def step_samples(noise=0.0, seed=0):
    """The RS preset's input digitised: 0 pA, then 70 pA from 101 ms, sampled every 0.1 ms up to 1000 ms."""
    t = np.arange(10001) / 10  # exact decimal times: t[1010] == 101.0
    values = np.where(t >= 101.0, 70.0, 0.0)
    if noise:
        values = values + np.random.default_rng(seed).normal(0.0, noise, t.size)
    return t, values


def write_nwb(path, sweeps, *, table=True, volts_scale=1e-3, amperes_scale=1e-12, rate=10000.0):
    """An NWB file with one CurrentClampSeries (acquisition) and CurrentClampStimulusSeries (stimulus) per sweep,
    paired by pynwb's intracellular recordings table (``table``) or only by their sweep_number (the Allen layout).
    ``sweeps``: {number: (v data, I data)} stored with conversion ``volts_scale`` / ``amperes_scale``."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwbfile = NWBFile(session_description="test", identifier="neurospike-test",
                      session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    device = nwbfile.create_device(name="amplifier")
    electrode = nwbfile.create_icephys_electrode(name="electrode_0", description="patch", device=device)
    for number, (v, current) in sweeps.items():
        common = dict(electrode=electrode, gain=1.0, rate=rate, starting_time=12.5 * number,
                      sweep_number=np.uint32(number))
        response = CurrentClampSeries(name=f"data_{number:05d}_AD0", data=np.asarray(v), conversion=volts_scale,
                                      stimulus_description="Long Square", **common)
        stimulus = CurrentClampStimulusSeries(name=f"data_{number:05d}_DA0", data=np.asarray(current),
                                              conversion=amperes_scale, **common)
        if table:
            nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stimulus, response=response)
        else:
            nwbfile.add_acquisition(response)
            nwbfile.add_stimulus(stimulus)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def write_abf(path, sweeps, rate_hz=20000, units="mV", command=True):
    """An ABF1 file (pyabf.abfWriter.writeABF1) of ``sweeps`` (rows); with ``command`` its header gets a DAC
    epoch table in pA: 0 for 500 samples, then 50 + 20·sweep pA for 1000 samples (after pyabf's pre-epoch of
    1/64 of the sweep), then 0."""
    from pyabf.abfWriter import writeABF1

    writeABF1(np.asarray(sweeps, dtype=float), str(path), rate_hz, units=units)
    raw = path.read_bytes()
    if not command:
        return path
    data = bytearray(raw[:2048]) + bytearray(16 * 512 - 2048) + bytearray(raw[2048:])  # room for the full header
    struct.pack_into("i", data, 40, 16)  # lDataSectionPtr (blocks)
    struct.pack_into("8s", data, 1346, b"pA      ")  # sDACChannelUnit[0]
    struct.pack_into("2h", data, 2296, 1, 0)  # nWaveformEnable
    struct.pack_into("2h", data, 2300, 1, 0)  # nWaveformSource: the epoch table
    struct.pack_into("20h", data, 2308, *([1, 1] + [0] * 18))  # nEpochType: two steps
    struct.pack_into("20f", data, 2348, *([0.0, 50.0] + [0.0] * 18))  # fEpochInitLevel
    struct.pack_into("20f", data, 2428, *([0.0, 20.0] + [0.0] * 18))  # fEpochLevelInc (per sweep)
    struct.pack_into("20i", data, 2508, *([500, 1000] + [0] * 18))  # lEpochInitDuration (samples)
    path.write_bytes(bytes(data))
    return path


# --- CSV -------------------------------------------------------------------------------------------------------


def test_csv_with_units_in_the_header_converts_time_and_voltage_and_keeps_the_current_unit(tmp_path):
    path = write_csv(tmp_path / "r.csv", "I (A),t (s),v (V)\n0,0,-0.07\n1e-10,0.0001,-0.065\n2e-10,0.0002,-0.06\n")
    recording = load_recording(path)
    assert np.allclose(recording.t, [0.0, 0.1, 0.2], rtol=0, atol=1e-12)
    assert np.allclose(recording.v, [-70.0, -65.0, -60.0], rtol=1e-12)
    assert recording.current_unit == "A" and np.array_equal(recording.current, [0.0, 1e-10, 2e-10])
    assert recording.sweep is None and recording.metadata["units_in_file"] == {"t": "s", "v": "V", "current": "A"}
    assert recording.metadata["sampling_rate_hz"] == pytest.approx(10000.0)
    values = recording.input_for("izhikevich2007")(np.array([0.0, 0.1, 0.2]))
    assert np.allclose(values, [0.0, 100.0, 200.0], rtol=1e-12)  # A -> pA


def test_csv_with_a_units_row_accepts_micro_prefixes(tmp_path):
    path = write_csv(tmp_path / "r.csv", "# a comment line\nt,v,I,extra\nµs,uV,nA,whatever\n0,-70000,0.5,1\n"
                                         "100,-69000,0.5,2\n200,-68000,0.25,3\n")
    recording = load_recording(path)
    assert np.allclose(recording.t, [0.0, 0.1, 0.2]) and np.allclose(recording.v, [-70.0, -69.0, -68.0])
    assert recording.current_unit == "nA" and np.array_equal(recording.current, [0.5, 0.5, 0.25])


def test_trajectory_csv_round_trip(tmp_path):
    trajectory = ns.simulate("lif", method="euler", dt=0.1, t_end=60.0)
    assert len(trajectory.spikes) >= 1
    trajectory.to_csv(tmp_path / "run.csv")
    recording = load_recording(tmp_path / "run.csv")
    first = np.concatenate([[True], np.diff(trajectory.t) != 0])  # at a reset the peak point is kept
    assert np.array_equal(recording.t, trajectory.t[first]) and np.array_equal(recording.v, trajectory["v"][first])
    assert recording.metadata["dropped_reset_points"] == np.count_nonzero(~first)
    assert np.array_equal(recording.metadata["trajectory"]["spikes"], trajectory.spikes)
    assert recording.current_unit == "nA" and not recording.current.any()  # lif's unit; no current in the file
    assert "no input current" in recording.metadata["note"]


@pytest.mark.parametrize("text, words", [
    ("t (ms),v (mV)\n0,-70\n1,-70\n", ["no column 'I'", "columns are 't', 'v'"]),
    ("t (ms),v (mV),I (pA)\n0,-70,0\n0.1,nan,0\n0.2,nan,0\n0.3,-70,0\n", ["v has a NaN run of 2 sample(s)",
                                                                         "t = 0.1 ms"]),
    ("t (ms),v (mV),I (pA)\n0,-70,0\n0.1,-70,inf\n", ["current has a inf run", "t = 0.1 ms"]),
    ("t (ms),v (mV),I (pA)\n0,-70,0\n0.2,-70,0\n0.1,-70,0\n", ["time goes back from 0.2 to 0.1 ms", "sample 2"]),
    ("t (ms),v (mV),I (pA)\n0,-70,0\n0.1,-70,0\n0.1,-70,0\n", ["time 0.1 ms is repeated", "increase strictly"]),
    ("t (ms),v (mV),I (kA)\n0,-70,0\n0.1,-70,0\n", ["unknown current unit 'kA'", "allowed: A, mA, µA", "pA"]),
    ("t (min),v (mV),I (pA)\n0,-70,0\n0.1,-70,0\n", ["unknown time unit 'min'", "allowed: s, ms"]),
    ("t,v,I\n0,-70,0\n0.1,-70,0\n", ["no unit for column 't'", "second row"]),
    ("t (ms),v (mV),I (pA)\n0,-70,0\n", ["too few samples (1)", "at least 2"]),
    ("t (ms),v (mV),I (pA)\n0,-70,0\n0.1,abc,0\n", ["line 3", "'abc' is not a number"]),
])
def test_bad_csv_files_are_refused_in_one_line(tmp_path, text, words):
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(ns.NeurospikeError) as raised:
        load_recording(path)
    message = str(raised.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_unknown_suffix_missing_file_and_csv_sweep_are_refused(tmp_path):
    with pytest.raises(ns.NeurospikeError, match=r"unknown format '\.txt'; use \.csv, \.nwb or \.abf"):
        load_recording(write_csv(tmp_path / "r.txt", "t (ms),v (mV),I (pA)\n0,0,0\n1,0,0\n"))
    assert load_recording(tmp_path / "r.txt", kind="csv").t.size == 2
    with pytest.raises(ns.NeurospikeError, match="does not exist"):
        load_recording(tmp_path / "nothing.nwb")
    with pytest.raises(ns.NeurospikeError, match=r"sweep 2 is out of range; a CSV recording has one sweep"):
        load_recording(tmp_path / "r.txt", 2, kind="csv")
    with pytest.raises(ns.NeurospikeError, match="not a readable NWB file"):
        load_recording(write_csv(tmp_path / "fake.nwb", "not hdf5"))
    with pytest.raises(ns.NeurospikeError, match="not a readable ABF file"):
        load_recording(write_csv(tmp_path / "fake.abf", "not abf"))


# --- NWB -------------------------------------------------------------------------------------------------------


def nwb_sweeps(n=200):
    v = {3: np.linspace(-70.0, -60.0, n), 5: np.linspace(-65.0, -40.0, n)}  # mV (conversion 1e-3 to volts)
    i = {3: np.where(np.arange(n) >= 50, 30.0, 0.0), 5: np.where(np.arange(n) >= 50, 70.0, 0.0)}  # pA
    return {k: (v[k], i[k]) for k in v}


def test_nwb_sweeps_paired_by_the_intracellular_recordings_table(tmp_path):
    sweeps = nwb_sweeps()
    path = write_nwb(tmp_path / "cell.nwb", sweeps)
    recording = load_recording(path, sweep=5)
    assert recording.sweep == 5 and recording.current_unit == "pA"
    assert np.allclose(recording.t, np.arange(200) * 0.1, rtol=0, atol=1e-12)  # 10 kHz, from the sweep's start
    assert np.allclose(recording.v, sweeps[5][0], rtol=1e-12) and np.allclose(recording.current, sweeps[5][1])
    meta = recording.metadata
    assert meta["response"] == "data_00005_AD0" and meta["stimulus"] == "data_00005_DA0"
    assert meta["sweep_pairing"] == "intracellular_recordings table" and meta["start_time_s"] == 62.5
    assert meta["stimulus_description"] == "Long Square" and meta["units_in_file"]["v"] == "volts"
    assert meta["sampling_rate_hz"] == 10000.0
    with pytest.raises(ns.NeurospikeError, match=r"has 2 sweeps \(3, 5\); choose one with sweep=N"):
        load_recording(path)
    with pytest.raises(ns.NeurospikeError, match=r"sweep 4 is out of range; sweeps are 3, 5"):
        load_recording(path, 4)


def test_nwb_allen_layout_pairs_by_sweep_number_and_scales_si_units(tmp_path):
    n = 100
    v_volts = np.linspace(-0.07, -0.05, n)
    i_amperes = np.where(np.arange(n) >= 20, 1e-10, 0.0)
    path = write_nwb(tmp_path / "allen.nwb", {7: (v_volts, i_amperes)}, table=False, volts_scale=1.0,
                     amperes_scale=1.0, rate=50000.0)
    recording = load_recording(path)  # one sweep: no need to choose
    assert recording.sweep == 7 and recording.metadata["sweep_pairing"] == "sweep_number"
    assert np.allclose(recording.v, v_volts * 1e3, rtol=1e-12)  # V -> mV
    assert np.allclose(recording.current, i_amperes * 1e12, rtol=1e-12) and recording.current_unit == "pA"
    assert np.allclose(np.diff(recording.t), 0.02)


# --- ABF -------------------------------------------------------------------------------------------------------


def test_abf_sweep_with_its_command_waveform(tmp_path):
    n = 2000
    sweeps = np.array([np.linspace(-70.0, -60.0, n), np.linspace(-65.0, -50.0, n)])
    path = write_abf(tmp_path / "cell.abf", sweeps)
    recording = load_recording(path, 1)
    assert recording.sweep == 1 and recording.metadata["sampling_rate_hz"] == 20000.0
    assert np.allclose(recording.t, np.arange(n) * 0.05, rtol=0, atol=1e-12)  # s -> ms
    assert np.allclose(recording.v, sweeps[1], atol=0.01)  # 16-bit samples
    assert recording.current_unit == "pA"
    onset = n // 64 + 500
    assert np.all(recording.current[:onset] == 0) and np.all(recording.current[onset:onset + 1000] == 70.0)
    assert load_recording(path, 0).current.max() == 50.0
    with pytest.raises(ns.NeurospikeError, match=r"has 2 sweeps \(0–1\); choose one"):
        load_recording(path)
    with pytest.raises(ns.NeurospikeError, match=r"sweep 2 is out of range; sweeps are 0–1"):
        load_recording(path, 2)


def test_abf_in_volts_is_converted_and_one_without_a_command_is_refused(tmp_path):
    volts = np.linspace(-0.07, -0.06, 2000)[None, :]
    recording = load_recording(write_abf(tmp_path / "volts.abf", volts, units="V"))
    assert np.allclose(recording.v, volts[0] * 1e3, atol=0.05)  # 1/32768 V steps
    with pytest.raises(ns.NeurospikeError, match="has no command waveform"):
        load_recording(write_abf(tmp_path / "bare.abf", volts * 1e3, command=False))


# --- the Sampled current -----------------------------------------------------------------------------------------


def test_sampled_equals_numpy_interpolation_and_jax_agrees():
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.05, 0.5, 300))
    values = np.cumsum(rng.normal(0.0, 1.0, 300))
    current = currents.sampled(times, values, jump_fraction=1.0)  # no change exceeds the whole range: no jumps
    assert current.discontinuities().size == 0
    t = rng.uniform(times[0] - 5, times[-1] + 5, 2000)
    expected = np.interp(t, times, values)
    assert np.allclose(current(t), expected, rtol=1e-12, atol=1e-12)
    evaluate = jax.jit(lambda c, x: c(x, None, jnp))
    assert np.allclose(np.asarray(evaluate(current, jnp.asarray(t))), expected, rtol=1e-12, atol=1e-12)
    assert current(times[-1] + 1.0) == values[-1] and current(times[0] - 1.0) == values[0]


def test_sampled_is_a_pytree_whose_samples_are_traced():
    traces = []

    @jax.jit
    def at_five(current):
        traces.append(1)
        return current(5.0, None, jnp)

    times = np.arange(11.0)
    assert float(at_five(currents.sampled(times, times))) == 5.0
    assert float(at_five(currents.sampled(times, 2 * times))) == 10.0
    assert len(traces) == 1  # new values, same shapes: no recompilation
    assert any(np.shape(leaf) == (11,) for leaf in jax.tree_util.tree_leaves(currents.sampled(times, times)))


def test_a_digitised_step_is_one_jump_held_until_the_later_sample():
    t, values = step_samples()
    current = currents.sampled(t, values)
    assert np.array_equal(current.discontinuities(), [101.0])
    assert current(101.0, 100.95) == 0.0 and current(101.0, 101.05) == 70.0 and current(101.0) == 70.0
    assert current(100.95) == 0.0  # held, not interpolated, inside the jump's interval
    assert float(current(101.0, 100.95, jnp)) == 0.0 and float(current(100.99, 101.05, jnp)) == 70.0
    noisy = currents.sampled(*step_samples(noise=1.0))
    assert np.array_equal(noisy.discontinuities(), [101.0])  # 1 pA noise on it adds no jump
    ou = currents.ornstein_uhlenbeck(0.0, 10.0, 5.0, 1000.0, seed=3)  # correlated noise: continuous
    assert currents.sampled(ou.times, ou.samples).discontinuities().size == 0
    ramp_edge = currents.sampled(np.arange(6.0), [0.0, 0.0, 35.0, 70.0, 70.0, 70.0])
    assert ramp_edge.discontinuities().size == 0 and ramp_edge(2.5) == 52.5  # an edge over 2 samples: a ramp


def test_sampled_step_gives_the_preset_spike_times():
    preset = ns.models.get("izhikevich2007").preset("rs")
    assert preset.current == currents.step(101.0, 70.0)
    reference = ns.simulate("izhikevich2007", preset="rs", method="rk4", dt=0.1)
    sampled = ns.simulate("izhikevich2007", preset="rs", current=currents.sampled(*step_samples()), method="rk4",
                          dt=0.1)
    assert len(reference.spikes) == len(sampled.spikes) >= 5
    assert np.max(np.abs(reference.spikes - sampled.spikes)) <= 1e-9


def test_sampled_population_and_refusals():
    times = np.arange(5.0)
    values = np.stack([[0.0, 0.0, 9.0, 9.0, 9.0], [1.0, 2.0, 3.0, 4.0, 5.0]], axis=1)
    current = currents.sampled(times, values)
    assert current.population_size() == 2 and np.array_equal(current.discontinuities(), [2.0])
    assert np.array_equal(current(1.5), [0.0, 2.5]) and np.array_equal(current(2.0, 1.5), [0.0, 3.0])
    axes = current.population_axes()
    assert axes.values == 0 and axes.times is None
    with pytest.raises(ns.NeurospikeError, match="times must increase strictly"):
        currents.sampled([0.0, 1.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ns.NeurospikeError, match="not finite from sample 1"):
        currents.sampled([0.0, 1.0, 2.0], [0.0, np.nan, 2.0])


# --- Recording ---------------------------------------------------------------------------------------------------


def test_input_for_converts_nA_to_pA_and_needs_an_area_for_a_density():
    t = np.arange(0.0, 10.0, 0.5)
    recording = Recording(t, np.full(t.size, -70.0), np.where(t >= 5.0, 0.1, 0.0), "nA", "x.csv")
    current = recording.input_for("izhikevich2007")
    assert np.array_equal(current.discontinuities(), [5.0])
    assert np.allclose(current(np.array([1.0, 7.0])), [0.0, 100.0])  # nA -> pA
    with pytest.raises(ns.NeurospikeError) as raised:
        recording.input_for("hh")
    assert all(word in str(raised.value) for word in ("nA", "µA/cm²", "area")), raised.value
    density = recording.input_for("hh", area=1e-5)  # 0.1 nA over 1000 µm² = 10 µA/cm²
    assert np.allclose(density(np.array([7.0])), [10.0])
    assert np.allclose(recording.current_in("µA"), recording.current * 1e-3)
    with pytest.raises(ns.NeurospikeError, match="not a unit a recording converts to"):
        recording.input_for("fhn")


def test_segment_and_spike_times():
    t = np.arange(0.0, 20.0, 1.0)
    v = np.full(t.size, -70.0)
    v[5], v[12] = 30.0, 10.0
    recording = Recording(t, v, np.zeros(t.size), "pA", "x.csv")
    assert np.allclose(recording.spike_times(), [4.7, 11 + 70 / 80])
    assert np.allclose(recording.spike_times(threshold=20.0), [4 + 90 / 100])
    part = recording.segment(10.0, 15.0)
    assert np.array_equal(part.t, np.arange(10.0, 16.0)) and part.metadata["segment_ms"] == [10.0, 15.0]
    with pytest.raises(ns.NeurospikeError, match="holds 0 sample"):
        recording.segment(30.0, 40.0)


def test_import_neurospike_loads_no_file_readers():
    code = ("import sys, neurospike, neurospike.data; "
            "print([m for m in ('pynwb', 'pyabf', 'h5py', 'pandas', 'hdmf') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_population_of_sampled_inputs_spikes_as_each_neuron_alone():
    t = np.arange(3001) / 10
    values = np.stack([np.where(t >= 101.0, 70.0, 0.0), np.where(t >= 50.0, 100.0, 0.0)], axis=1)
    run = lambda current: ns.simulate("izhikevich2007", preset="rs", current=current, method="rk4", dt=0.1,  # noqa: E731
                                      t_end=300.0)
    population = run(currents.sampled(t, values))
    for neuron in (0, 1):
        alone = run(currents.sampled(t, values[:, neuron]))
        assert np.array_equal(population.spikes[population.spike_neurons == neuron], alone.spikes)


def test_spike_times_ignore_noise_on_the_falling_edge():
    """HH spikes with 1 mV of noise: the repolarising edge crosses 0 mV upwards again by noise (3.08 ms here); the
    hysteresis (v must first fall 5 mV below the threshold) keeps one crossing per spike, each within 0.01 ms of
    the noise-free spike time."""
    truth = ns.simulate("hh", method="rk4", dt=0.005, t_end=100.0, current=10.0)
    t = np.arange(0.0, 100.0 + 1e-9, 0.05)
    v = truth.at(t)["v"] + np.random.default_rng(0).normal(0.0, 1.0, t.size)
    recording = Recording(t, v, np.full(t.size, 10.0), "µA/cm²")
    assert len(recording.spike_times(0.0, hysteresis=0.0)) == len(truth.spikes) + 1
    np.testing.assert_allclose(recording.spike_times(0.0), truth.spikes, atol=0.01)
