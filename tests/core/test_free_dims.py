"""A model with free dimensions: the user's input shape reaches every step — data, the
techniques, the variant's measurement and timing — and the variant keeps the free axes."""

from __future__ import annotations

import onnx
import pytest

from model_zoo import TINY_MACS  # type: ignore[import-not-found]
from paretolab.cli import main
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize


@pytest.fixture()
def free_dims(model_files, tmp_path):
    """The tiny CNN with its batch, height and width free, as other exporters write them."""
    model = onnx.load(str(model_files["onnx"]))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for i, value in ((0, -1), (2, "h"), (3, "w")):
        dims[i].Clear()
        if isinstance(value, int):
            dims[i].dim_value = value
        else:
            dims[i].dim_param = value
    path = tmp_path / "free.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("steps", [
    [{"technique": "quantize", "settings": {"precision": "fp16"}}],
    [{"technique": "quantize", "settings": {"backend": "ort", "precision": "int8"}}],
    [{"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.5}}],
])
def test_every_step_uses_the_users_input_shape(free_dims, tmp_path, steps):
    handle = load_model(free_dims, input_shapes={None: (1, 3, 16, 16)})
    variant = optimize(handle, Recipe.from_dict({"steps": steps}), DataPlan.from_spec("random:8", handle), tmp_path, "v")
    assert variant.measured.macs == variant.baseline.macs == TINY_MACS and variant.measured.latency_ms > 0
    assert load_model(variant.artifact).inputs[0].dynamic_axes == (0, 2, 3)  # the variant stays as general as the original


def test_the_cli_carries_input_shape_through_optimize(free_dims, tmp_path, capsys):
    code = main(["optimize", str(free_dims), "--input-shape", "1x3x16x16", "--data", "random:8", "--quantize", "ort-fp16",
                 "--out", str(tmp_path / "out"), "--name", "v"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "speed-up" in out and (tmp_path / "out" / "v.onnx").exists()


def test_without_data_a_model_the_digits_do_not_fit_gets_random_inputs_and_a_note(model_files, tmp_path, capsys):
    code = main(["optimize", str(model_files["onnx"]), "--quantize", "ort-fp16", "--out", str(tmp_path), "--name", "v"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "note      no data given: random inputs measure agreement with the original, not accuracy" in out
    from paretolab.core.sample import sample_model_path

    code = main(["evaluate", str(sample_model_path())])  # the sample still gets its digits
    out, err = capsys.readouterr()
    assert code == 0 and "98.89%" in out and "note:" not in err


def test_random_token_ids_cover_the_embedding_table(tmp_path):
    """An embedding model over token ids: random ids reach past rows 0 and 1, yet stay in the table."""
    import numpy as np
    import torch

    class Embedder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(1000, 16)
            self.head = torch.nn.Linear(16, 4)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(ids).mean(1))

    path = tmp_path / "embedder.onnx"
    from paretolab.core.model.torch_onnx import export_to_onnx

    export_to_onnx(Embedder().eval(), (torch.zeros(1, 12, dtype=torch.int64),), path, ["ids"])
    handle = load_model(path)
    ids = DataPlan.from_spec("random:64", handle).test.load(np.arange(64))[0]
    assert ids.dtype == np.int64 and ids.max() < 1000 and len(np.unique(ids)) > 100


def test_shape_guesses_for_free_dimensions():
    from paretolab.core.tensors import TensorSpec, guess_shapes, needs_shape

    image = TensorSpec("x", (None, 3, "h", "w"), "float32")
    ids = TensorSpec("ids", ("batch", "seq"), "int64")
    state = TensorSpec("state", (2, None, 128), "float32")
    assert not needs_shape([TensorSpec("x", ("batch", 3, 224, 224), "float32")])  # a free batch is taken as 1
    assert needs_shape([image]) and guess_shapes([image]) == "1x3x224x224"
    assert guess_shapes([ids, state]) == "ids=1x128 state=2x128x128"


def test_random_data_holds_named_inputs_at_a_value_and_asks_for_meaningful_scalars(tmp_path):
    """A voice-activity model (signal, state, sample-rate scalar): `random:N:sr=16000` gives the
    rate every call, a state can start elsewhere than zero, and a scalar left random is named."""
    import numpy as np

    from paretolab.core.measure.data import DataError
    from zoo_models import ZOO, export, open_zoo_model  # type: ignore[import-not-found]

    handle = open_zoo_model(ZOO["vad"], export(ZOO["vad"], tmp_path / "vad.onnx"))
    plan = DataPlan.from_spec("random:8:sr=16000,state=0.5", handle)
    x, state, sr = plan.test.load(np.arange(8))
    assert x.shape == (8, 64) and np.unique(x).size > 100
    assert sr.dtype == np.int64 and sr.shape == () and int(sr) == 16000
    assert state.shape == (2, 8, 32) and np.all(state == 0.5)
    assert not any("scalar input" in note for note in plan.notes)
    assert any("scalar input 'sr' is random (0 or 1)" in note and "--hold sr=VALUE" in note
               for note in DataPlan.from_spec("random:8", handle).notes)
    for spec, message in (("random:8:rate=1", "sets 'rate', which is not an input of the model; its inputs are x, state, sr"),
                          ("random:8:sr=fast", "'sr=fast' is not NAME=NUMBER")):
        with pytest.raises(DataError, match=message):
            DataPlan.from_spec(spec, handle)


def _text_onnx(path, mask_rank=2):
    """Token ids and a mask over shared symbolic [batch, sequence] dims: an embedding, masked, summed."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    mask_shape = ["batch", "sequence"] if mask_rank == 2 else ["batch", 1, 1, "sequence"]
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["emb"]),
             helper.make_node("Reshape", ["attention_mask", "flat"], ["mask2"]),
             helper.make_node("Cast", ["mask2"], ["maskf"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
             helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
             helper.make_node("ReduceSum", ["masked", "axis1"], ["pooled"], keepdims=0),
             helper.make_node("MatMul", ["pooled", "head"], ["logits"])]
    inits = [numpy_helper.from_array(np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32), "table"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "flat"),
             numpy_helper.from_array(np.array([-1], np.int64), "last"),
             numpy_helper.from_array(np.array([1], np.int64), "axis1"),
             numpy_helper.from_array(np.ones((8, 3), np.float32), "head")]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, mask_shape)]
    graph = helper.make_graph(nodes, "text", inputs, [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
                              inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_an_onnx_text_model_opens_at_the_tokenizers_length_and_a_named_shape_binds_shared_dims(tmp_path):
    path = _text_onnx(tmp_path / "text.onnx")
    handle = load_model(path)
    assert [s.shape for s in handle.inputs] == [(1, 128), (1, 128)]
    assert handle.notes and "128 tokens" in handle.notes[0] and "--input-shape 1xN" in handle.notes[0]
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 64}')
    assert load_model(path).inputs[0].shape == (1, 64) and "model_max_length" in load_model(path).notes[0]
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 1000000000000000019884624838656}')
    assert load_model(path).inputs[0].shape == (1, 128)  # "no limit" is not a length to time at
    named = load_model(path, input_shapes={"input_ids": (2, 16)})
    assert [s.shape for s in named.inputs] == [(2, 16), (2, 16)] and not named.notes
    assert handle.with_input_shapes({"attention_mask": (1, 40)}).inputs[0].shape == (1, 40)  # the default gives way
    # the inputs really run together at the bound shapes
    from paretolab.core.measure.evaluate import evaluate

    result = evaluate(named, DataPlan.from_spec("random:4", named).test, backend="ort")
    assert result.samples == 4


def test_a_named_shape_binds_dims_across_ranks_and_suggestions_never_mix_lengths(tmp_path):
    from paretolab.core.tensors import TensorSpec, apply_input_shapes, guess_shapes

    path = _text_onnx(tmp_path / "mask4.onnx", mask_rank=4)
    handle = load_model(path, input_shapes={"input_ids": (1, 64)})
    assert [s.shape for s in handle.inputs] == [(1, 64), (1, 1, 1, 64)]
    ids, mask = TensorSpec("ids", ("batch", "seq"), "int64"), TensorSpec("mask", ("batch", 1, 1, "seq"), "int64")
    assert guess_shapes([ids, mask]) == "ids=1x128 mask=1x1x1x128"
    signal, rate = TensorSpec("input", (None, None), "float32"), TensorSpec("sr", (), "int64")
    assert guess_shapes([signal, rate]) == "input=1x128 sr=scalar"  # from the input's rank, not an image
    fixed = apply_input_shapes([ids, mask, TensorSpec("other", ("n", 4), "float32")], {"mask": (3, 1, 1, 9)}, "m")
    assert [s.shape for s in fixed] == [(3, 9), (3, 1, 1, 9), ("n", 4)]


def test_a_text_models_remembered_length_replaces_the_default(tmp_path):
    """The app remembers the shape a user gave for a model: next time it opens at that length, not the default."""
    from paretolab.core.pipeline.session import open_for_study

    path = _text_onnx(tmp_path / "text.onnx")
    first = open_for_study(path, input_shapes={"input_ids": (1, 48)}, experiments=tmp_path / "exp")
    assert [s.shape for s in first.handle.inputs] == [(1, 48), (1, 48)]
    again = open_for_study(path, experiments=tmp_path / "exp")
    assert [s.shape for s in again.handle.inputs] == [(1, 48), (1, 48)]
    fresh = open_for_study(path, experiments=tmp_path / "other")
    assert [s.shape for s in fresh.handle.inputs] == [(1, 128), (1, 128)]


def test_an_onnx_text_model_opens_no_longer_than_its_position_table(tmp_path):
    """The zoo's transformer (64 positions) exported to ONNX with a free sequence: 128 tokens would index
    past its position table, so it opens at 64, and runs there."""
    from paretolab.core.measure.evaluate import evaluate
    from zoo_models import ZOO, export  # type: ignore[import-not-found]

    handle = load_model(export(ZOO["transformer"], tmp_path / "tiny_bert.onnx", dynamo=True))
    assert handle.inputs[0].shape == (1, 64) and "64 tokens (the longest its position table takes)" in handle.notes[0]
    result = evaluate(handle, DataPlan.from_spec("random:4", handle).test, backend="ort")
    assert result.samples == 4
