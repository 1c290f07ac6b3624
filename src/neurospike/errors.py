"""One exception type for every user-facing error: its message is a single line that names the bad value."""

from __future__ import annotations

import difflib
from typing import Iterable


class NeurospikeError(ValueError):
    """Bad input or a run that cannot go on; the CLI prints the message on one line and exits with 2."""


class SimulationError(NeurospikeError):
    """A run that produced a non-finite state or could not continue."""


def closest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
