"""The package's shape, as README's "Architecture" states it: every module on a
floor that imports only its own floor or below, no import cycle, no module above
500 lines, no class above 300, and no code that parses node ids."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_psweep"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _floors() -> dict[str, int]:
    """Module -> floor, from the README's architecture block."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Architecture", 1)[1].split("```")[1]
    floors: dict[str, int] = {}
    floor = -1
    for line in block.splitlines():
        found = re.match(r"floor (\d+)", line)
        if found:
            floor = int(found.group(1))
        for name in re.findall(r"\b(\w+)\.py\b", line):
            floors.setdefault(name, floor)
    return floors


def _imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports when it runs (at import time or
    in a function), leaving out imports for type checkers only."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    skipped: set[int] = set()  # id() of the nodes
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom) or node.level != 1:
            continue
        if node.module:
            found.add(node.module.split(".")[0])
        else:
            found.update(alias.name for alias in node.names)
    return found & set(MODULES)


def test_the_readme_names_every_module_and_no_other():
    assert sorted(_floors()) == MODULES


def test_a_module_imports_only_its_floor_or_below():
    floors = _floors()
    upward = [
        f"{module} (floor {floors[module]}) imports {other} (floor {floors[other]})"
        for module in MODULES
        for other in sorted(_imports(module))
        if floors[other] > floors[module]
    ]
    assert upward == []


def test_no_import_cycle():
    graph = {module: _imports(module) for module in MODULES}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for other in graph[module]:
            if other == path[0]:
                cycles.append(" -> ".join([*path, other]))
            elif other not in path and other > path[0]:  # each cycle once
                visit(other, [*path, other])

    for module in MODULES:
        visit(module, [module])
    assert cycles == []


def test_no_module_above_500_lines_and_no_class_above_300():
    too_long = []
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > 500:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > 300:
                    too_long.append(f"{path.name}: class {node.name}: {lines} lines")
    assert too_long == []


def test_no_code_parses_node_ids():
    """Sweep ids and keys travel in the wire record (wire.py), never parsed back."""
    parsing = re.compile(r"""nodeid\.(r?split|partition)|\.split\(\s*["'](::|\[)["']""")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in PACKAGE.glob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if parsing.search(line)
    ]
    assert found == []


def test_the_suites_xdist_groups_each_run_on_one_worker(pytester, monkeypatch):
    # the studies a module shares run once only if its tests stay on one worker; with
    # pytest 9.2 and xdist 3.8, loadgroup alone no longer keeps them together
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest("from tests.conftest import pytest_collection_modifyitems  # noqa\n")
    pytester.makepyfile(
        test_grouped="""
        import pytest

        @pytest.mark.xdist_group("shared")
        @pytest.mark.parametrize("i", range(8))
        def test_grouped(i):
            pass

        @pytest.mark.parametrize("i", range(8))
        def test_free(i):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=16)
    ran = [line.split() for line in result.outlines if " PASSED " in line]
    grouped = {words[0] for words in ran if "test_grouped[" in words[-1]}
    assert len(grouped) == 1, result.outlines
    assert all(words[-1].endswith("@shared") for words in ran if "test_grouped[" in words[-1])
