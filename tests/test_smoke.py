import numpy as np

import neurospike as ns


def test_rk4_matches_reference_on_izhikevich2007_rs():
    reference = ns.simulate("izhikevich2007", method="reference")
    rk4 = ns.simulate("izhikevich2007", method="rk4", dt=0.01)
    assert len(reference.spikes) == len(rk4.spikes) == 6
    assert np.max(np.abs(reference.spikes - rk4.spikes)) < 1e-6
    times = [0, 250, 500, 750, 1000]
    assert np.allclose(reference.at(times)["v"], rk4.at(times)["v"], atol=1e-5)
