"""The package declaration matches the source tree, and resources ship inside the package."""

from __future__ import annotations

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


def test_gui_has_no_runtime_calls_of_its_own():
    """Layering (design.md): widgets reach torch, ONNX and OpenVINO only through core, via jobs."""
    forbidden = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "torch_pruning")
    for path in (ROOT / "app" / "paretolab" / "gui").glob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                assert words[1].split(".")[0] not in forbidden, f"{path.name}: {line.strip()}"
