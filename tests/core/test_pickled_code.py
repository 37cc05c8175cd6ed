"""A pickled model names its class by module: the code is found next to the model, or where the
user says (--code DIR; the app asks), and a missing module is one line naming it."""

from __future__ import annotations

import pytest

from paretolab.cli import main
from paretolab.core.errors import CodeRequiredError
from paretolab.core.model.handle import load_model
from pickled_code import pickle_with_code  # type: ignore[import-not-found]


def test_a_missing_module_is_named_and_code_can_be_given(tmp_path, capsys):
    path, code = pickle_with_code(tmp_path, "paretolab_test_net_a", "models")
    with pytest.raises(CodeRequiredError, match="module 'paretolab_test_net_a', which is not importable here") as caught:
        load_model(path, trust=True, input_shapes={None: (1, 6)})
    assert caught.value.module == "paretolab_test_net_a" and "--code DIR" in str(caught.value)
    assert main(["inspect", str(path), "--trust", "--input-shape", "1x6", "--code", str(code)]) == 0
    assert "fc" in capsys.readouterr().out
    assert main(["inspect", str(path), "--trust", "--code", str(tmp_path / "nowhere")]) == 2
    assert "--code" in capsys.readouterr().err


def test_code_next_to_the_model_is_found_without_asking(tmp_path):
    path, _ = pickle_with_code(tmp_path, "paretolab_test_net_b", "code")
    handle = load_model(path, trust=True, input_shapes={None: (1, 6)})
    assert handle.layer_graph().total_params == 6 * 3 + 3
