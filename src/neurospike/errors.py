"""One exception type for every user-facing error: its message is a single line that names the bad value."""

from __future__ import annotations

import difflib
from typing import Iterable


class NeurospikeError(ValueError):
    """Bad input or a run that cannot go on; the CLI prints the message on one line and exits with 2."""


class SimulationError(NeurospikeError):
    """A run that produced a non-finite state or could not continue."""


class MemoryLimitError(NeurospikeError):
    """A run refused before it starts because it would need more than ``memory_limit`` bytes; ``need`` names the
    estimate and what it is for ("about 8.0 GiB (limit 4.0 GiB): 10⁹ steps x 2 states")."""

    def __init__(self, need: str, advice: str):
        super().__init__(f"this run would need {need}; {advice}")
        self.need = need


def closest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
