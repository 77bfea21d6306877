"""The package layout is the architecture: these checks keep it that way.

Data flows one way (YAML → campaign → cascade → workflow → activity → channel → feedback
→ reports); each package may import only the packages listed for it in ALLOWED (README,
*How it is built*, says the same in prose). No import cycles between modules, counting
imports inside functions (a lazy import that dodges a cycle is still a cycle). No module
over 300 lines. The top of the package holds only the modules that belong to everything.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import omnicascade

ROOT = Path(omnicascade.__file__).parent
MAX_LINES = 300
TOP_LEVEL_MODULES = {"__init__", "clock", "config", "errors", "telemetry", "validation",
                     "vocabulary"}
# anyone may import these; telemetry holds the metric definitions, which activities, api,
# cascade and campaign all count into (one module, not one per package)
SHARED = {"clock", "config", "errors", "telemetry", "validation", "vocabulary"}

ALLOWED: dict[str, set[str]] = {
    "config": {"errors"},
    "errors": set(),
    "telemetry": set(),
    "validation": {"clock"},  # "now" is the clock's (clock.now_utc)
    "clock": set(),
    "vocabulary": set(),
    "db": set(),
    "experiments": set(),  # pure statistics: the stdlib, numpy/scipy (lazily), shared modules
    "campaign": set(),
    "customers": {"db"},
    "channels": {"campaign", "db"},
    "workflows": set(),  # pure: temporalio, the stdlib and vocabulary only
    "cascade": {"campaign", "customers", "channels", "db", "experiments", "workflows"},
    "activities": {"campaign", "customers", "cascade", "channels", "db", "workflows"},
    "reports": {"customers", "db", "experiments"},
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


# The console and the CLI render what the read layer (reports/) returns; they do not query.
# Exceptions, each by name: the console's login throttle counts and prunes its own login
# attempts, and its sessions store and end themselves (auth plumbing, not a read of
# campaign data).
QUERY_FREE = ("api.console", "cli")
QUERY_ALLOWED = {"omnicascade.api.console.throttle", "omnicascade.api.console.sessions"}
QUERY_CALLS = re.compile(r"\bselect\(|\bsession\.execute\b|(?<!def )\btext\(")  # not read_text(


def test_the_console_and_the_cli_do_not_query():
    found = []
    for name, path in MODULES.items():
        rest = name.removeprefix("omnicascade.")
        if name in QUERY_ALLOWED or not any(rest == p or rest.startswith(p + ".")
                                            for p in QUERY_FREE):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if QUERY_CALLS.search(line) and not line.lstrip().startswith("#"):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "SQL outside the read layer (reports/):\n" + "\n".join(found)


# Where SQL may live at all (docs/architecture.md §2): db/ itself, the read layer (reports/),
# and the modules that write, each named: the cascade's write paths (every module of
# cascade/ takes a `session` and changes state through the lifecycle), the delivery ledger
# and cap counting, customers and consent, Telegram links (a channel that stores its own
# rows), the API's signature replay store, and the console's auth plumbing. Anything else asks one of these.
SQL_HOMES = ("db", "reports", "cascade")
SQL_WRITERS = {
    "omnicascade.activities.ledger", "omnicascade.activities.caps",
    "omnicascade.customers.model", "omnicascade.customers.consent",
    "omnicascade.channels.telegram_link",
    "omnicascade.api.replay", *QUERY_ALLOWED,
}


def test_sql_lives_in_db_the_read_layer_and_the_named_writers():
    found = []
    for name, path in MODULES.items():
        rest = name.removeprefix("omnicascade.")
        if name in SQL_WRITERS or any(rest == p or rest.startswith(p + ".") for p in SQL_HOMES):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if QUERY_CALLS.search(line) and not line.lstrip().startswith("#"):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "SQL outside db/, reports/ and the named writers:\n" + "\n".join(found)


# Settings (omnicascade/config/) is the one reader of the environment and .env: a second
# reader escapes the production refusal of placeholders, `config check` and the warning
# about misspelt variables. No exceptions are needed today (the embedded stack passes its
# child processes their arguments, not environment variables); name one here if a module
# ever must SET a variable for a child process — a write, not a read.
ENV_READERS_ALLOWED: set[str] = set()
ENV_MODULES = {"dotenv", "pydantic_settings"}


def _env_reads(source: str) -> list[str]:
    """Each read of the environment or .env in `source`: os.environ / os.getenv /
    os.environb, `from os import environ|getenv`, and importing dotenv or pydantic-settings
    (BaseSettings reads the environment by itself)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "os" and node.attr in {"environ", "getenv", "environb"}:
            found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = (node.module or "").split(".")[0]
            names = {a.name for a in node.names}
            if module in ENV_MODULES or module == "os" and names & {"environ", "getenv"}:
                found.append(f"{node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in ENV_MODULES]
    return found


def test_the_checker_sees_every_way_of_reading_the_environment():
    for source in ("import os\nx = os.environ['A']", "import os\nos.getenv('A')",
                   "from os import environ", "from os import getenv as g",
                   "from dotenv import dotenv_values", "import dotenv",
                   "from pydantic_settings import BaseSettings", "import pydantic_settings"):
        assert _env_reads(source), source
    assert not _env_reads("import os\nos.path.join('a')\nfrom pydantic import BaseModel")


def test_only_the_settings_read_the_environment():
    found = [f"{name}:{hit}" for name, path in MODULES.items()
             if not (name == "omnicascade.config" or name.startswith("omnicascade.config."))
             and name not in ENV_READERS_ALLOWED
             for hit in _env_reads(path.read_text())]
    assert not found, "environment read outside omnicascade/config/:\n" + "\n".join(found)


def test_only_the_clock_reads_the_wall_clock():
    """One "now": `clock.now_utc` (issue 24). `datetime.now(…)`, `datetime.utcnow()` or a
    second helper elsewhere would let two parts disagree on naive vs aware UTC."""
    found = []
    for name, path in MODULES.items():
        if name == "omnicascade.clock":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("now", "utcnow") \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "datetime":
                found.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.FunctionDef) and node.name in ("utcnow", "now_utc"):
                found.append(f"{name}:{node.lineno} defines {node.name}")
    assert not found, "the wall clock read outside clock.py:\n" + "\n".join(found)
