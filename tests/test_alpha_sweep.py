"""``sweep_alpha`` and ``neurospike sweep-alpha``, checked against closed forms and a published property.

Fractional LIF, C D^α v = −g_L (v − E_L) + I, from v(0) = E_L under a constant I: until the first spike
v(t) = v_∞ − (v_∞ − E_L) E_α(−(g_L/C) t^α), v_∞ = E_L + I/g_L (Mittag-Leffler relaxation), so the first spike
is at the root of E_α(−(g_L/C) t^α) = (v_∞ − v_th)/(v_∞ − E_L) = 0.2 for the tonic preset (I = 2.5 nA,
v_∞ = −45 mV).
At α = 1 it fires periodically with ISI (C/g_L) ln 5 from every reset. For α < 1 the memory of the charging phases
makes the ISIs grow under constant input (spike-frequency adaptation: Teka, Marinov & Santamaria, PLoS Comput.
Biol. 10 (2014) e1003526).
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
from scipy.optimize import brentq

from neurospike import cli
from neurospike.errors import NeurospikeError
from neurospike.mittag_leffler import mittag_leffler
from neurospike.alpha_sweep import check_alphas, firing_summary, sweep_alpha

C, G_L, DT = 1.0, 0.1, 0.05
ALPHAS = (0.7, 0.85, 1.0)


def first_spike(alpha):
    """Root of E_α(−(g_L/C) t^α) = 0.2: the fractional LIF's first threshold crossing from rest."""
    return brentq(lambda t: float(mittag_leffler(-G_L / C * t**alpha, alpha)) - 0.2, 1e-6, 1e3)


@pytest.fixture(scope="module")
def lif_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "report"
    return sweep_alpha("lif", ALPHAS, current=2.5, t_end=600.0, dt=DT, out=out), out


def test_lif_files_and_table(lif_sweep):
    result, out = lif_sweep
    assert sorted(os.listdir(out)) == [".neurospike-report.json", "rate_isi.png", "sweep.csv", "sweep.md",
                                       "voltage.png"]
    for figure in ("voltage.png", "rate_isi.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["alpha"]) for r in rows] == list(ALPHAS)
    for row, run in zip(rows, result.runs):
        assert int(row["spikes"]) == run.spikes.size
        assert float(row["rate_hz"]) == pytest.approx(1000.0 * run.spikes.size / 600.0, rel=1e-9)
        assert float(row["mean_isi_ms"]) == pytest.approx(np.mean(np.diff(run.spikes)), rel=1e-9)
    markdown = (out / "sweep.md").read_text()
    assert markdown == result.markdown() and markdown.count("| success |") == len(ALPHAS)


def test_lif_first_spike_is_the_mittag_leffler_crossing(lif_sweep):
    """L1 is first order near t = 0 here (measured: error 0.8·dt at dt = 0.05 and 0.025 ms)."""
    result, _ = lif_sweep
    for alpha, run in zip(result.alphas, result.runs):
        assert run.spikes[0] == pytest.approx(first_spike(alpha), abs=DT)


def test_lif_integer_order_fires_periodically(lif_sweep):
    result, _ = lif_sweep
    isi = np.diff(result.runs[-1].spikes)
    # every ISI starts from the reset at its located t*, finished to the next node (as the integer-order loops):
    # the grid phase of t* moves an ISI only at O(dt²) (measured spread 5.1e-5 ms at dt = 0.05 ms)
    assert np.ptp(isi) <= DT**2
    assert abs(result.rows[-1]["adaptation_index"]) <= DT**2 / np.mean(isi)
    assert np.mean(isi) == pytest.approx(C / G_L * math.log(5.0), abs=2 * DT)


def test_lif_fractional_order_adapts(lif_sweep):
    """α < 1: every ISI longer than the one before (Teka et al. 2014); measured adaptation index 0.22 (α = 0.7,
    4 spikes) and 0.23 (α = 0.85, 12 spikes)."""
    result, _ = lif_sweep
    for run, row in zip(result.runs[:-1], result.rows[:-1]):
        isi = np.diff(run.spikes)
        assert isi.size >= 2 and np.all(np.diff(isi) > 0)
        assert row["adaptation_index"] > 0.1


def test_lif_rate_rises_with_alpha(lif_sweep):
    """Smaller α: a later first crossing (the Mittag-Leffler relaxation has a t^−α tail) and longer, growing ISIs,
    so the rate rises with α here (measured 6.7, 20, 61.7 Hz)."""
    result, _ = lif_sweep
    assert np.all(np.diff(result.column("rate_hz")) > 0)
    assert np.all(np.diff([first_spike(a) for a in ALPHAS]) < 0)


def test_one_state_fractional_keeps_the_others_integer():
    result = sweep_alpha("izhikevich", [0.8], state="v", t_end=20.0)
    assert result.runs[0].alpha == {"v": 0.8, "u": 1.0}
    assert result.state == "v" and "state v only" in result.markdown()


def test_firing_summary_by_hand():
    summary = firing_summary([5.0, 15.0, 35.0, 65.0], 0.0, 1000.0)
    assert summary == {"spikes": 4, "rate_hz": 4.0, "first_isi_ms": 10.0, "last_isi_ms": 30.0,
                       "mean_isi_ms": 20.0, "adaptation_index": 0.5}
    one_interval = firing_summary([5.0, 15.0], 0.0, 500.0)
    assert one_interval["first_isi_ms"] == 10.0 and math.isnan(one_interval["adaptation_index"])
    assert math.isnan(firing_summary([], 0.0, 500.0)["mean_isi_ms"])


def test_alphas_are_sorted_without_repeats():
    assert check_alphas(["1", 0.5, 0.5, 0.7]).tolist() == [0.5, 0.7, 1.0]


@pytest.mark.parametrize("alphas, bad", [([], "no alphas"), ([0.5, 1.5], "1.5"), ([0.0], "0.0"), (["x"], "x"),
                                         ([float("nan")], "nan")])
def test_bad_alphas_are_refused(alphas, bad, tmp_path):
    with pytest.raises(NeurospikeError, match=bad):
        sweep_alpha("lif", alphas, out=tmp_path / "report")
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("options, bad", [({"state": "u"}, "'u'"), ({"method": "rk4"}, "'rk4'"),
                                          ({"params": {"tau": 1.0}}, "'tau'")])
def test_bad_options_are_refused_before_any_run(options, bad, tmp_path):
    with pytest.raises(NeurospikeError, match=bad):
        sweep_alpha("lif", [0.8], out=tmp_path / "report", **options)
    assert not (tmp_path / "report").exists()


# --- command line ---------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def compilation_cache(tmp_path, monkeypatch):
    """Keep the CLI's persistent JAX cache out of the user's home during tests."""
    monkeypatch.setenv("NEUROSPIKE_CACHE", str(tmp_path / "jax-cache"))


def test_cli_writes_the_report_and_prints_the_table(capsys, tmp_path):
    code = cli.main(["sweep-alpha", "lif", "--alphas", "1.0,0.9", "--current", "constant:amplitude=2.5",
                     "--t-end", "100", "--dt", "0.1", "--out", str(tmp_path / "report")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| 0.9 |" in captured.out and "| 1 | 6 |" in captured.out  # 100 ms / (10 ln 5 ms) -> 6 spikes
    assert sorted(os.listdir(tmp_path / "report")) == [".neurospike-report.json", "rate_isi.png", "sweep.csv",
                                                       "sweep.md", "voltage.png"]


@pytest.mark.parametrize("args, bad", [
    (["--alphas", ""], "--alphas ''"),
    (["--alphas", "0.5,abc"], "abc"),
    (["--alphas", "0.5,1.2"], "1.2"),
    (["--alphas", "-0.3"], "-0.3"),
    (["--alphas", "0.8", "--state", "w"], "'w'"),
    (["--alphas", "0.8", "--method", "euler"], "'euler'"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, args, bad):
    out = tmp_path / "report"
    code = cli.main(["sweep-alpha", "lif", *args, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurospike: error:") and bad in lines[0]
    assert not out.exists()


def test_a_non_finite_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    """Forward-Euler-like l1-explicit on Hodgkin–Huxley at dt = 0.2 ms is past its stability limit (the sodium
    gate's time constant is ~0.1 ms); the row says so and the report is still written."""
    result = sweep_alpha("hh", [0.9], method="l1-explicit", dt=0.2, t_end=20.0, out=tmp_path / "report")
    assert result.runs == [None] and result.rows[0]["status"] == "non-finite"
    assert "non-finite" in result.rows[0]["message"] and math.isnan(result.rows[0]["rate_hz"])
    assert (tmp_path / "report" / "sweep.csv").read_text().splitlines()[1].startswith("0.9,,nan")
