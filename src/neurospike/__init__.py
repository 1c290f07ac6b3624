"""neurospike: dynamics of spiking neurons — models, solvers with exact spike events, honest comparisons.

>>> import neurospike as ns
>>> trajectory = ns.simulate("izhikevich2007", method="rk4", dt=0.01, t_end=1000)
"""

__version__ = "0.1.0"

from . import analysis, currents, models
from .comparison import Comparison, Convergence, compare, convergence
from .errors import NeurospikeError, SimulationError
from .simulate import METHOD_NAMES, simulate
from .trajectory import Trajectory

__all__ = ["analysis", "currents", "models", "simulate", "compare", "convergence", "Comparison", "Convergence",
           "Trajectory", "NeurospikeError", "SimulationError", "METHOD_NAMES",
           "__version__"]
