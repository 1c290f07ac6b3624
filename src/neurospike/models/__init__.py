"""The neuron models. ``get(name, **overrides)`` returns a :class:`Model`; ``names()`` lists them."""

from ..errors import NeurospikeError, closest
from . import adex, fhn, hh, izhikevich, izhikevich2007, lif
from .base import Model, Parameter, Preset, SpikeRule

REGISTRY: dict[str, Model] = {m.MODEL.name: m.MODEL for m in (lif, izhikevich, izhikevich2007, hh, adex, fhn)}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: "str | Model", **overrides: float) -> Model:
    """The model called ``name``, with parameter defaults replaced by ``overrides``."""
    if isinstance(name, Model):
        model = name
    elif name in REGISTRY:
        model = REGISTRY[name]
    else:
        raise NeurospikeError(f"unknown model {name!r}{closest(name, REGISTRY)}; models are {', '.join(REGISTRY)}")
    return model.with_defaults(**overrides) if overrides else model


__all__ = ["Model", "Parameter", "Preset", "SpikeRule", "REGISTRY", "get", "names"]
