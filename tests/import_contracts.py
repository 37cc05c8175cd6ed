"""An import-linter contract type for "importing X loads none of Y": a forbidden contract whose
indirect chains follow only the imports that run when a module is imported.

import-linter's graph holds every import, also those inside function bodies. The engine loads
torch, ONNX Runtime and OpenVINO on first use (inside the functions that need them), so a plain
forbidden contract over the whole graph finds chains that never run at startup and can only be
kept with allow_indirect_imports, which then checks nothing beyond the source's own imports.
This contract checks, without allow_indirect_imports:
- every import the source modules make themselves, wherever it stands (a GUI function that
  imports the engine would run it on the GUI thread), and
- every chain of imports that run at import time (module level, class bodies, module-level
  try/if blocks; not function bodies, not TYPE_CHECKING blocks when the config excludes them).
tests/gui/test_gui_imports.py checks the same at run time, in a fresh interpreter.

Registered in pyproject.toml as `forbidden_at_import` (lint-imports runs from the repository
root, which import-linter puts on sys.path)."""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

from grimp import ImportGraph
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.domain.contract import ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules


@functools.cache
def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def _source_file(module: str) -> Path | None:
    root, *rest = module.split(".")
    base = _package_dir(root)
    if base is None:
        return None
    path = base.joinpath(*rest)
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _function_lines(module: str) -> frozenset[int]:
    """The line numbers inside function bodies (and lambdas) of `module`'s source."""
    path = _source_file(module)
    if path is None:
        return frozenset()
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


def _runs_at_import(graph: ImportGraph, importer: str, imported: str) -> bool:
    details = graph.get_import_details(importer=importer, imported=imported)
    inside = _function_lines(importer)
    return not details or any(d["line_number"] not in inside for d in details)


class ForbiddenAtImportContract(ForbiddenContract):
    """Like `forbidden`, over the imports the source modules make and the imports that run at import time."""

    type_name = "forbidden_at_import"

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = {m.name for m in module_expressions_to_modules(graph, self.source_modules)}  # type: ignore[arg-type]
        own = {
            m for m in graph.modules
            if any(m == s or m.startswith(s + ".") for s in sources)
        } if str(self.as_packages).lower() != "false" else sources
        for importer in list(graph.modules):
            if importer in own or graph.is_module_squashed(importer) or _source_file(importer) is None:
                continue
            for imported in list(graph.find_modules_directly_imported_by(importer)):
                if not _runs_at_import(graph, importer, imported):
                    graph.remove_import(importer=importer, imported=imported)
        return super().check(graph, verbose)
