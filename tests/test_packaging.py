"""The package declaration matches the source tree, and resources ship inside the package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_declared_in_pyproject():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT / "app").parts)
        for p in (ROOT / "app" / "paretolab").rglob("__init__.py")
    }
    assert found | {"paretolab.resources"} == declared


def test_resources_are_read_through_the_package():
    sample = resources.files("paretolab.resources") / "sample"
    names = {entry.name for entry in sample.iterdir()}
    assert {"digits_cnn.onnx", "digits_cnn.pt", "digits_cnn_state.pth", "digits_split.npz", "digits_cnn.json"} <= names


def test_the_layering_contracts_hold():
    """design.md's layering, enforced by import-linter (pyproject.toml): core never imports Qt,
    the GUI or the jobs; core's stages import one way; widgets reach core only for data classes
    and pure helpers, and never torch, ONNX or OpenVINO."""
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_core_type_checks(tmp_path):
    """mypy on core with disallow_untyped_defs (pyproject.toml)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]