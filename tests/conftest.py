"""Shared fixtures: model files of every format, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if "PARETOLAB_LOG_DIR" not in os.environ:  # keep the suite's log out of the user's own
    import tempfile

    os.environ["PARETOLAB_LOG_DIR"] = tempfile.mkdtemp(prefix="paretolab-test-log-")


@pytest.fixture(autouse=True)
def _private_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ParetoLab remembers per model (an image folder's preprocessing) goes to a folder of
    this test's own: never the user's config, never carried from one test into the next."""
    monkeypatch.setenv("PARETOLAB_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


@pytest.fixture()
def cpu_features(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a setter
    """Substitute this machine's CPU: `cpu_features({"avx512_vnni"})` makes every caller of
    machine_info() see those instruction sets (and no others) until the test ends, so behaviour
    that depends on the CPU is tested for both kinds of machine wherever the suite runs."""
    from paretolab.core.measure import machine

    def use(features: set[str] | frozenset[str]) -> None:
        monkeypatch.setattr(machine, "_cpu_flags", lambda: ("a substituted CPU", set(features)))
        machine.machine_info.cache_clear()

    yield use
    machine.machine_info.cache_clear()  # the real CPU again once monkeypatch restores _cpu_flags


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from model_zoo import write_model_files

    return write_model_files(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def bad_files(tmp_path: Path, model_files: dict[str, Path]) -> dict[str, Path]:
    """Broken model files, each made the way users break them."""
    import onnx

    files: dict[str, Path] = {}
    onnx_bytes = model_files["onnx"].read_bytes()
    files["empty"] = tmp_path / "empty.onnx"
    files["empty"].write_bytes(b"")
    files["truncated_onnx"] = tmp_path / "truncated.onnx"
    files["truncated_onnx"].write_bytes(onnx_bytes[: len(onnx_bytes) // 2])
    files["garbage_onnx"] = tmp_path / "garbage.onnx"
    files["garbage_onnx"].write_bytes(b"\x00\xff this is not protobuf \x13\x37" * 40)
    files["unknown_ext"] = tmp_path / "weights.xyz"
    files["unknown_ext"].write_bytes(b"\x89HDF\r\n\x1a\n")
    files["keras"] = tmp_path / "model.h5"
    files["keras"].write_bytes(b"\x89HDF\r\n\x1a\n")
    proto = onnx.load(str(model_files["onnx"]))
    proto.opset_import[0].version = 99
    files["future_opset"] = tmp_path / "future_opset.onnx"
    files["future_opset"].write_bytes(proto.SerializeToString())
    ir_dir = tmp_path / "ir_without_bin"
    ir_dir.mkdir()
    files["xml_without_bin"] = ir_dir / "tiny.xml"
    files["xml_without_bin"].write_bytes(model_files["openvino"].read_bytes())
    for key in ("script", "pt2", "pickle"):
        data = model_files[key].read_bytes()
        files[f"truncated_{key}"] = tmp_path / f"truncated_{model_files[key].name}"
        files[f"truncated_{key}"].write_bytes(data[: len(data) // 2])
    return files


@pytest.fixture
def fp32_timed_slow(monkeypatch):
    """Which precision wins a fastest-precision contest is a measurement (under a CPU hog the forms
    can tie, and FP32 is then kept); tests about what happens to the winner make FP32 time slow."""
    import dataclasses

    from paretolab.core.compress.quantization import fastest_faithful

    real = fastest_faithful.time_side_by_side

    def fp32_slow(handles, **kwargs):
        base, *rest = real(handles, **kwargs)
        return [dataclasses.replace(base, median_ms=base.median_ms * 10, low_ms=base.high_ms * 10,
                                    high_ms=base.high_ms * 10), *rest]

    monkeypatch.setattr(fastest_faithful, "time_side_by_side", fp32_slow)
