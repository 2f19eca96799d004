"""The shape the code promises: layers, sizes, no cycles, no dead config, docs that name real code.

These are the rules docs/ARCHITECTURE.md states; each is checked on the
source itself, so a change that breaks one fails here with what and where.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from drivers.config import family
from edged.config.root import EdgedConfig
from edged.config.schema import hints

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("edged", "drivers")
FAMILIES = ("camera", "rfid", "scale")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every product module ``name`` imports, anywhere in it (function-local included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in MODULES else base), node.lineno


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for target, _ in _imports(name, path):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_function_local_imports_included() -> None:
    cycles = _cycles(_graph())
    assert not cycles, (
        "import cycles (every module in each imports the next, round):\n"
        + "\n".join(" -> ".join(c) for c in cycles)
    )


def test_drivers_import_nothing_from_edged() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {target}"
        for name, path in MODULES.items()
        if name.startswith("drivers")
        for target, line in _imports(name, path)
        if target == "edged" or target.startswith("edged.")
    ]
    assert not bad, "drivers are the ground floor:\n" + "\n".join(bad)


def test_the_wiring_module_only_wires() -> None:
    lines = (REPO / "edged" / "app" / "wiring.py").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 300, f"edged/app/wiring.py has {len(lines)} lines"


def test_no_class_is_over_400_lines() -> None:
    big = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > 400:
                    big.append(f"{path.relative_to(REPO)}: {node.name} has {n} lines")
    assert not big, "\n".join(big)


# -- config declared = config read --------------------------------------------------


def _config_classes() -> set[type]:
    seen: set[type] = set()
    todo: list[type] = [EdgedConfig]
    for name in FAMILIES:
        todo += [t.config for t in family(name).values()]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for tp in hints(cls).values():
            for inner in _types_in(tp):
                if dataclasses.is_dataclass(inner):
                    todo.append(inner)
                    if getattr(inner, "family", ""):
                        todo += [t.config for t in family(inner.family).values()]
    return seen


def _types_in(tp: object) -> Iterator[type]:
    from typing import get_args

    if isinstance(tp, type):
        yield tp
    for arg in get_args(tp):
        yield from _types_in(arg)


def _names_read(exclude: set[str]) -> set[str]:
    """Attribute names and string constants used in product code.

    A config class's own field declarations and its ``__post_init__`` (checking a
    value is not using it) do not count; its other methods do.
    """
    names: set[str] = set()
    for path in MODULES.values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in exclude:
                for stmt in node.body:
                    declares = isinstance(stmt, ast.AnnAssign | ast.Assign)
                    checks = isinstance(stmt, ast.FunctionDef) and stmt.name == "__post_init__"
                    if declares or checks:
                        skip |= {id(n) for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
    return names


def test_every_declared_config_key_is_read_by_code() -> None:
    classes = _config_classes()
    read = _names_read({c.__name__ for c in classes})
    unread = sorted(
        f"{cls.__module__}.{cls.__name__}.{f.name}"
        for cls in classes
        for f in dataclasses.fields(cls)
        if f.name not in read and f.name != "type"
    )
    assert not unread, "declared in the schema but read by nothing:\n" + "\n".join(unread)


# -- the architecture document names what exists ----------------------------------------


def test_architecture_doc_names_only_modules_and_classes_that_exist() -> None:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(set(re.findall(r"\b((?:edged|drivers)/[\w/]*(?:\.py)?)", text))):
        if not (REPO / path).exists() and not (REPO / f"{path}.py").exists():
            missing.append(path)
    for dotted in sorted(set(re.findall(r"\b((?:edged|drivers)(?:\.\w+)+)", text))):
        if dotted not in MODULES and dotted.rpartition(".")[0] not in MODULES:
            missing.append(dotted)
    classes = {
        node.name
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    }
    for name in sorted(set(re.findall(r"`([A-Z][A-Za-z0-9]+)(?:\.\w+)?`", text))):
        if name not in classes:
            missing.append(name)
    assert not missing, "docs/ARCHITECTURE.md names what does not exist: " + ", ".join(missing)
