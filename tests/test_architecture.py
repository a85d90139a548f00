"""The shape ARCHITECTURE.md describes, checked: no import cycles at import time, and the core
never imports the packages that plug into it.

Only module-level imports count (imports inside functions run later, when everything is
loaded); ``if TYPE_CHECKING:`` blocks are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("instance", "federation", "p2p", "webui", "transcoding")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports at module level."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.parse(path.read_text()).body:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            # ``from . import sub`` needs the submodule; ``from .mod import x`` needs mod.
            targets = subs if subs and len(subs) == len(node.names) else [base, *subs]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_at_import_time() -> None:
    assert _cycles(_graph()) == []


def test_the_core_does_not_import_its_extensions_at_import_time() -> None:
    graph = _graph()
    for name, imported in graph.items():
        if name.startswith("instance"):
            outward = {m for m in imported if m.split(".")[0] in ("federation", "p2p", "webui")}
            assert not outward, (name, outward)
        if name.startswith("transcoding"):
            assert all(m.startswith("transcoding") for m in imported), (name, imported)


def test_p2p_and_webui_reach_federation_only_through_the_surface() -> None:
    """P2P and the pages call federation through the extension surface's ports, never directly
    (federation may read p2p's small URL and job-kind modules for CacheFile)."""
    for name, imported in _graph().items():
        if name.split(".")[0] in ("p2p", "webui"):
            assert not {m for m in imported if m.startswith("federation")}, (name, imported)


def test_extensions_use_the_web_core_not_the_rest_api() -> None:
    """Request keys, JSON answers, media URLs and file sending come from ``instance.web``;
    from the REST API, extensions take only its route table to declare routes of their own
    (and the pages its JSON shapes, which they render)."""
    allowed = {"instance.api", "instance.api.registry"}
    for name, imported in _graph().items():
        top = name.split(".")[0]
        if top in ("federation", "p2p", "webui") or name.startswith(("instance.services", "instance.web")):
            api = {m for m in imported if m.startswith("instance.api")}
            extra = {"instance.api.serializers"} if top == "webui" else set()
            assert api <= allowed | extra, (name, api)


def test_the_checker_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Module-level code that runs at import besides defining names. Each entry fills a table of
# its own module or the REST API's declared routes (instance/api/registry.py), not a table
# another package reads at run time.
IMPORT_TIME_CALLS = {
    ("instance.cli", "COMMANDS.update"),
    ("instance.api.meta", "_vocab_route"),
}


DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
               ast.AnnAssign)  # fmt: skip


def _import_time_code(name: str, source: str) -> list[str]:
    """Module-level statements of ``name`` that do something when imported (a call, a loop, a
    condition other than ``TYPE_CHECKING`` or ``__main__``)."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, DEFINITIONS):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "__name__ == '__main__'"):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            if (name, ast.unparse(node.value.func)) in IMPORT_TIME_CALLS:
                continue
        found.append(f"{name}:{node.lineno}: {ast.unparse(node).splitlines()[0]}")
    return found


def test_importing_a_module_registers_nothing() -> None:
    """Job kinds, inbox routes, hooks and outbox sources are installed per Shoal
    (``install(surface)``, ARCHITECTURE.md "The extension surface"), never by importing a module."""
    found = [line for name, path in _modules().items() for line in _import_time_code(name, path.read_text())]
    assert found == []


def test_the_import_rule_sees_a_registration() -> None:
    source = "from x import register\n\nregister('Follow', on_follow)\nfor k in 'ab':\n    register(k, f)\n"
    assert len(_import_time_code("probe", source)) == 2
