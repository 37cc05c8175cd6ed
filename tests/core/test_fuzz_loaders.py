"""Corrupted and truncated model files of every format: a clean error, never a crash or a hang."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from paretolab.core.errors import ParetoLabError
from paretolab.core.model.handle import load_model

KINDS = ["onnx", "script", "pt2", "pickle", "state_dict", "openvino"]


def _mutate(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    data = bytearray(data[: max(1, int(len(data) * cut))])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    return bytes(data)


@pytest.mark.parametrize("kind", KINDS)
@settings(
    max_examples=int(os.environ.get("PARETOLAB_FUZZ_EXAMPLES", "15")),
    deadline=None,
    derandomize="PARETOLAB_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6))
@example(cut=1.0, flips=[(0.0, 149)])  # found by this test: a pickle error with an empty message
@example(cut=1.0, flips=[(0.125, 128)])  # found: a name that is not UTF-8 (ONNX checker, OpenVINO op names)
@example(cut=1.0, flips=[(0.3359375, 128)])  # found: OpenVINO op friendly name not UTF-8
@example(cut=1.0, flips=[(0.544921875, 128)])  # found: OpenVINO output tensor name not UTF-8
@example(cut=1.0, flips=[(0.709536095499757, 29)])  # found: an ONNX tensor element type that does not exist
def test_broken_files_fail_cleanly(model_files, tmp_path, kind, cut, flips):
    original = model_files[kind]
    broken_dir = tmp_path / kind
    broken_dir.mkdir(exist_ok=True)
    target = broken_dir / original.name
    if kind == "openvino":  # break the topology or the weights
        target.write_bytes(_mutate(original.read_bytes(), cut, flips))
        target.with_suffix(".bin").write_bytes(
            original.with_suffix(".bin").read_bytes()[: int(len(original.with_suffix(".bin").read_bytes()) * cut)]
        )
    else:
        target.write_bytes(_mutate(original.read_bytes(), cut, flips))
    options = {"trust": True} if kind == "pickle" else {}
    try:
        handle = load_model(target, **options)
        handle.layer_graph()
    except ParetoLabError as exc:
        message = str(exc)
        assert "\n" not in message and target.name in message or "--input-shape" in message or "--arch" in message
