"""Regenerate the README's computed numbers from the runs that give them, instead of typing them.

A generated block in README.md sits between ``<!-- readme_numbers: NAME -->`` and ``<!-- /readme_numbers -->``;
``python docs/readme_numbers.py`` rewrites every block, ``--check`` only reports the blocks that differ (exit 1).
Blocks whose text depends on the machine (run times) are listed in ``TIMED`` and are not compared by the test
(tests/test_readme.py); the others must equal what the code computes, digit for digit.

Blocks: ``seed-reference`` (the reference's spike times of the seed case, ``make demo``'s Izhikevich 2007 RS) and
``seed-summary`` (its per-method spike-time errors, relative L2 errors and run times).
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- readme_numbers: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /readme_numbers -->)", re.S)
TIMED = ("seed-summary",)
SEED_METHODS = ("euler", "backward-euler", "rk2", "exp-euler", "rk4")  # as `make demo`


def _short(x: float) -> str:
    """0.872, 9.7e-3: three digits from 0.1 up, two below."""
    if x >= 0.1:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _milliseconds(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"


def seed_blocks() -> dict[str, str]:
    """The seed case as `make demo` runs it: every method at dt 0.1 ms, located and reset-after-step events."""
    import neurospike as ns

    comparison = ns.compare("izhikevich2007", SEED_METHODS, dt=0.1, times=[0, 250, 500, 750, 1000])
    reference = comparison.reference
    spikes = ", ".join(f"{t:.7f}" for t in reference.spikes)
    text = textwrap.fill(f"The reference (DOP853, rtol = atol = 1e-12) fires {len(reference.spikes)} spikes at "
                         f"{spikes} ms.", width=116) + "\n"
    summary = {(item["method"], item["events"]): item for item in comparison.summary}
    rows = ["| method | worst spike-time error, located / step (ms) | relative L2 of v, located / step | run time "
            "after compile, located / step (ms) |", "|---|---|---|---|"]
    for method in SEED_METHODS:
        located, step = summary[(method, "located")], summary[(method, "step")]
        rows.append(f"| {method} | {_short(located['worst_spike_error_ms'])} / {_short(step['worst_spike_error_ms'])}"
                    f" | {_short(located['relative_l2_v'])} / {_short(step['relative_l2_v'])}"
                    f" | {_milliseconds(located['run_time_s'])} / {_milliseconds(step['run_time_s'])} |")
    return {"seed-reference": text, "seed-summary": "\n".join(rows) + "\n"}


def replace_blocks(readme: str, blocks: dict[str, str]) -> tuple[str, list[str]]:
    """README text with each named block's body replaced; with the names of the blocks whose body changed."""
    changed = []

    def body(match):
        name = match["name"]
        if name not in blocks:
            return match[0]
        if match["body"] != blocks[name]:
            changed.append(name)
        return match[1] + blocks[name] + match[4]

    return BLOCK.sub(body, readme), changed


def readme_blocks(readme: str) -> dict[str, str]:
    """The generated blocks of a README text, by name."""
    return {match["name"]: match["body"] for match in BLOCK.finditer(readme)}


def main(argv: list[str]) -> int:
    readme = README.read_text()
    text, changed = replace_blocks(readme, seed_blocks())
    if "--check" in argv:
        print("differ: " + ", ".join(changed) if changed else "README numbers are up to date")
        return 1 if changed else 0
    README.write_text(text)
    print(f"rewrote {', '.join(changed) or 'nothing (up to date)'} in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
