"""Package data (the reference JSON files) and recordings in: :func:`load_recording` reads a current-clamp sweep
from CSV, NWB or ABF into a :class:`Recording` (pynwb and pyabf are imported only when such a file is read)."""

from .recordings import Recording, load_recording

__all__ = ["Recording", "load_recording"]
