"""The built-in sample is a real model with real accuracy, and rebuilds byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from paretolab.core.model import load_model
from paretolab.core.sample import (
    digits_split,
    sample_dir,
    sample_info,
    sample_model_path,
)

ROOT = Path(__file__).resolve().parents[1]


def onnx_logits(images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(sample_model_path("onnx")), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": images})[0]


def test_split_is_fixed_disjoint_and_covers_every_class():
    info = sample_info()
    sizes = {name: len(digits_split(name).labels) for name in ("train", "val", "test")}
    assert sizes == info["split_sizes"] and sum(sizes.values()) == 1797
    with np.load(sample_dir() / "digits_split.npz") as data:
        indices = [set(data[f"{n}_index"].tolist()) for n in ("train", "val", "test")]
    assert not (indices[0] & indices[1] or indices[0] & indices[2] or indices[1] & indices[2])
    for name in sizes:
        assert set(digits_split(name).labels.tolist()) == set(range(10))


def test_onnx_sample_reaches_its_recorded_accuracy_in_onnxruntime():
    test = digits_split("test")
    accuracy = float((onnx_logits(test.images).argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(sample_info()["accuracy"]["test"], abs=1e-4)
    assert accuracy > 0.95


def test_torchscript_and_onnx_samples_agree():
    images = digits_split("val").images
    module = load_model(sample_model_path("torchscript")).native
    with torch.no_grad():
        torch_logits = module(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(torch_logits, onnx_logits(images), rtol=1e-4, atol=1e-4)


def test_both_sample_forms_share_layer_names():
    onnx_graph = load_model(sample_model_path("onnx")).layer_graph()
    torch_graph = load_model(sample_model_path("torchscript")).layer_graph()
    assert [n.name for n in onnx_graph] == [n.name for n in torch_graph]
    assert [n.name for n in onnx_graph if n.op == "Conv"] == ["features.0", "features.2", "features.5"]


@pytest.mark.slow
def test_build_script_regenerates_the_sample_exactly(tmp_path):
    pytest.importorskip("sklearn")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_sample.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "digits_split.npz") as new, np.load(sample_dir() / "digits_split.npz") as old:
        assert sorted(new.files) == sorted(old.files)
        for key in new.files:
            np.testing.assert_array_equal(new[key], old[key])
    new_weights = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "digits_cnn.onnx")).graph.initializer}
    old_weights = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(sample_model_path())).graph.initializer}
    assert new_weights.keys() == old_weights.keys()
    for name in new_weights:
        np.testing.assert_array_equal(new_weights[name], old_weights[name])
    assert (tmp_path / "digits_cnn.json").read_text() == (sample_dir() / "digits_cnn.json").read_text()
