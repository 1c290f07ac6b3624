"""The README's generated numbers (docs/readme_numbers.py) equal what the runs give now, digit for digit; only the
run times of a timed block may differ."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("readme_numbers", ROOT / "docs" / "readme_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_times(table: str) -> list[list[str]]:
    """The table's cells without its last column (the run times)."""
    return [[cell.strip() for cell in line.strip("|").split("|")[:-1]] for line in table.splitlines()]


@pytest.mark.slow
def test_readme_numbers_are_what_the_runs_give():
    script = _script()
    written = script.readme_blocks((ROOT / "README.md").read_text())
    computed = script.seed_blocks()
    assert set(computed) <= set(written), "a generated block is missing from README.md"
    for name, text in computed.items():
        if name in script.TIMED:
            assert _without_times(written[name]) == _without_times(text), name
        else:
            assert written[name] == text, name


def test_replace_blocks_rewrites_only_named_blocks():
    script = _script()
    readme = ("a\n<!-- readme_numbers: one -->\nold\n<!-- /readme_numbers -->\nb\n"
              "<!-- readme_numbers: two -->\nkept\n<!-- /readme_numbers -->\n")
    text, changed = script.replace_blocks(readme, {"one": "new\n"})
    assert changed == ["one"]
    assert script.readme_blocks(text) == {"one": "new\n", "two": "kept\n"}
    assert script.replace_blocks(text, {"one": "new\n"}) == (text, [])


def _python_blocks(path: Path) -> list[str]:
    text = path.read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_python_blocks(ROOT / "README.md"))))
def test_readme_python_snippet_runs_as_written(index, tmp_path, monkeypatch):
    """Each ```python block of the README runs on its own, as a new user pastes it (in an empty directory)."""
    monkeypatch.chdir(tmp_path)
    code = _python_blocks(ROOT / "README.md")[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})
