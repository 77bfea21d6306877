"""The package layout is the architecture: these checks keep it that way.

Data flows one way (YAML → campaign → cascade → workflow → activity → channel → feedback
→ reports); each package may import only the packages listed for it in ALLOWED (README,
*How it is built*, says the same in prose). No import cycles between modules, counting
imports inside functions (a lazy import that dodges a cycle is still a cycle). No module
over 300 lines. The top of the package holds only the modules that belong to everything.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import omnicascade

ROOT = Path(omnicascade.__file__).parent
MAX_LINES = 300
TOP_LEVEL_MODULES = {"__init__", "clock", "config", "errors", "validation", "vocabulary"}
SHARED = {"clock", "config", "errors", "validation", "vocabulary"}  # anyone may import these

ALLOWED: dict[str, set[str]] = {
    "config": {"errors"},
    "errors": set(),
    "validation": set(),
    "clock": set(),
    "vocabulary": set(),
    "db": set(),
    "campaign": set(),
    "customers": {"db"},
    "channels": {"campaign", "db"},
    "workflows": set(),  # pure: temporalio, the stdlib and vocabulary only
    "cascade": {"campaign", "customers", "channels", "db", "workflows"},
    "activities": {"campaign", "customers", "cascade", "channels", "db", "workflows"},
    "reports": {"customers", "db"},
    "api": {"cascade", "channels", "customers", "db", "reports"},
    "runtime": {"activities", "api", "cascade", "channels", "db", "workflows"},
    "cli": {"api", "campaign", "cascade", "customers", "db", "reports", "runtime"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent)
        if "migrations" in rel.parts:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every omnicascade module `name` imports, at any depth of the file (functions too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                prefix = package[: len(package) - (node.level - 1)]
                base = ".".join([*prefix, base] if base else prefix)
            targets = [base]
            # `from package import module` imports the module itself
            targets += [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("omnicascade") and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "omnicascade"


def test_no_module_is_over_300_lines():
    long = {
        name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_top_level_holds_only_packages_and_shared_modules():
    loose = {p.stem for p in ROOT.glob("*.py")} - TOP_LEVEL_MODULES
    assert not loose, f"loose modules at the top of omnicascade/: {sorted(loose)}"
    assert set(ALLOWED) == SHARED | {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}


def test_each_package_imports_only_what_the_layout_allows():
    wrong = []
    for module, targets in GRAPH.items():
        room = _room(module)
        if room == "omnicascade":
            continue
        for target in targets:
            other = _room(target)
            if other in (room, "omnicascade") or other in SHARED and room not in SHARED:
                continue
            if other not in ALLOWED[room]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layout:\n" + "\n".join(sorted(wrong))


def test_workflow_code_imports_nothing_with_side_effects():
    """Workflow code runs in Temporal's sandbox and is replayed: only temporalio, the stdlib
    and the shared vocabulary."""
    allowed_roots = set(sys.stdlib_module_names) | {"temporalio", "omnicascade", "__future__"}
    for name, path in MODULES.items():
        if _room(name) != "workflows":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed_roots, f"{name} imports {roots}"
        others = {_room(t) for t in GRAPH[name]} - {"workflows"}
        assert others <= {"vocabulary"}, f"{name} imports {others}"


def test_there_are_no_import_cycles():
    cycles = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(" → ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
