"""The shipped package data equals the shared reference data, and the Izhikevich 2004 presets are built from it
as the JSON's own conventions say (read here independently of the package's loader)."""

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import neurospike as ns

SHARED = Path("/work/shared/reference")
PACKAGE_DATA = resources.files("neurospike").joinpath("data")
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared reference data {SHARED} is not here")


def shipped_names():
    return sorted(entry.name for entry in PACKAGE_DATA.iterdir() if entry.name.endswith(".json"))


def test_the_same_json_files_are_shipped():
    assert shipped_names() == sorted(p.name for p in SHARED.glob("*.json"))
    assert len(shipped_names()) >= 2


@pytest.mark.parametrize("name", sorted(p.name for p in SHARED.glob("*.json")))
def test_shipped_json_equals_the_shared_reference(name):
    assert json.loads(PACKAGE_DATA.joinpath(name).read_text()) == json.loads((SHARED / name).read_text())


def segment_current(spec, t):
    """I(t) per the JSON's convention: baseline, except inside a segment (start < t < end; end null = forever)
    where value + slope (t − start); where segments overlap the first listed wins."""
    for segment in spec["segments"]:
        end = np.inf if segment["end"] is None else segment["end"]
        if segment["start"] < t < end:
            return segment["value"] + segment.get("slope", 0.0) * (t - segment["start"])
    return spec["baseline"]


FIG1 = json.loads((SHARED / "izhikevich2004_fig1.json").read_text()) if SHARED.is_dir() else {"patterns": []}
VARIANTS = {"standard": {"k2": 0.04, "k1": 5.0, "k0": 140.0, "v_u": 0.0, "u_leak": 1.0},
            "quadratic_4.1_108": {"k2": 0.04, "k1": 4.1, "k0": 108.0, "v_u": 0.0, "u_leak": 1.0},
            "accommodation_u": {"k2": 0.04, "k1": 5.0, "k0": 140.0, "v_u": -65.0, "u_leak": 0.0}}


def test_all_twenty_figure1_patterns_are_presets():
    assert len(FIG1["patterns"]) == 20
    assert {p["name"] for p in FIG1["patterns"]} == set(ns.models.get("izhikevich").presets)


@pytest.mark.parametrize("pattern", FIG1["patterns"], ids=lambda p: p["name"])
def test_figure1_preset_matches_its_json_pattern(pattern):
    model = ns.models.get("izhikevich")
    preset = model.preset(pattern["name"])
    params = {**model.defaults(), **preset.params}
    for name in "abcd":
        assert params[name] == pattern[name], name
    for name, value in VARIANTS[pattern["variant"]].items():
        assert params[name] == value, name
    u0 = pattern["b"] * pattern["v0"] if pattern["u0"] is None else pattern["u0"]
    assert dict(preset.initial) == {"v": pattern["v0"], "u": u0}
    assert (preset.t_end, preset.dt) == (pattern["t_end"], pattern["dt"])
    # the input at every segment edge ± 1e-6, at each edge itself and on a fine grid
    edges = [e for s in pattern["current"]["segments"] for e in (s["start"], s["end"]) if e is not None]
    times = np.unique(np.concatenate([np.linspace(0.0, pattern["t_end"], 2001), edges,
                                      np.add.outer(edges, [-1e-6, 1e-6]).ravel()]))
    expected = [segment_current(pattern["current"], t) for t in times]
    np.testing.assert_allclose(preset.current(times, times, np), expected, rtol=0, atol=1e-12)
    assert set(edges) <= set(preset.current.discontinuities())
