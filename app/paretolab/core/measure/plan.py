"""Which data serves which purpose: training and calibration, validation, final evaluation.

Every caller gets its data through a DataPlan, so the built-in digits always split the same
way (train for gradients and calibration, val for choices, test for the numbers shown) and a
user's single dataset is used for all three with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paretolab.core.measure.data import (
    Dataset,
    default_data,
    digits,
    digits_size_for,
    open_dataset,
    parse_random,
    random_inputs,
)
from paretolab.core.measure.images import ImageFolderDataset, ImagePreprocess, settle_preprocess
from paretolab.core.measure.text import is_text, text_dataset
from paretolab.core.model.handle import ModelHandle
from paretolab.core.tensors import TensorSpec


@dataclass
class DataPlan:
    train: Dataset
    validation: Dataset
    test: Dataset
    notes: list[str] = field(default_factory=list)
    output_kinds: dict[str, str] = field(default_factory=dict)  # --output-kind: how each output is judged, by name

    @classmethod
    def from_spec(cls, spec: str | None, handle: ModelHandle, preprocess: str | None = None) -> DataPlan:
        """`spec` as the CLI and the GUI take it: "digits", "random:N", a folder or a tensor file;
        None: the digits for models they fit, else random inputs, with a note. `preprocess` is how
        an image folder's images become tensors (ImagePreprocess.parse; default: shaped to the input)."""
        if spec is None:
            spec, note = default_data(handle.inputs)
            plan = cls.from_spec(spec, handle)
            plan.notes[:0] = [note] if note else []
            return plan
        if spec == "digits":
            size = digits_size_for(handle.inputs)
            return cls(digits("train", size), digits("val", size), digits("test", size))
        data: Dataset
        notes: list[str] = []
        if spec.partition(":")[0] == "random":
            count, values = parse_random(spec)
            data = random_inputs(handle.inputs, count, id_ranges=id_ranges(handle), values=values)
            notes += [f"scalar input '{s.name}' is random ({_random_kind(s)}); if it means something (a sample rate, "
                      f"a flag), hold it at its value in every run: --hold {s.name}=VALUE"
                      for s in handle.inputs if not s.shape and s.name not in values and s.value is None]
        else:
            data = dataset_for(spec, handle, preprocess)
        notes += [f"{data.name} serves for calibration and evaluation alike; hold out a test set for unbiased numbers"]
        notes += [note] if (note := preprocess_note(data)) else []
        return cls(data, data, data, notes)


def preprocess_note(data: Dataset) -> str | None:
    """How an image folder's images became tensors, where that is remembered, and how to change it:
    a wrong recipe looks like a bad model."""
    if not isinstance(data, ImageFolderDataset):
        return None
    return (f"images preprocessed as {data.preprocess.text()} ({data.origin + '; ' if data.origin else ''}"
            "change with --preprocess)")


def dataset_for(spec: str, handle: ModelHandle, preprocess: str | None = None) -> Dataset:
    """A dataset spec that is not random, opened for `handle`: text goes through the model's
    tokenizer, image folders through `preprocess` (ImagePreprocess.parse)."""
    path = Path(spec).expanduser()
    if is_text(path) and path.is_file():
        return text_dataset(path, handle.inputs, handle.path, _label_ids(handle), trust=handle.trusted)
    first = next(iter(handle.inputs), None)
    recipe = ImagePreprocess.parse(preprocess, first) if preprocess else None
    data = open_dataset(spec, handle.inputs, recipe)
    model = getattr(handle, "path", None)  # None: a model known only by its inputs
    if isinstance(data, ImageFolderDataset) and model is not None:  # asked once, remembered per model (user config)
        settle_preprocess(data, Path(model), recipe, first)
    return data


def _label_ids(handle: ModelHandle) -> dict[str, int]:
    """A Hugging Face model's class names (config.label2id), for text labels given by name."""
    config = getattr(handle.native, "config", None)
    return {str(k): int(v) for k, v in (getattr(config, "label2id", None) or {}).items()}


def _random_kind(spec: TensorSpec) -> str:
    return "standard normal" if spec.dtype.startswith("float") else "0 or 1"


def id_ranges(handle: ModelHandle) -> dict[str, int]:
    """For each integer input that feeds an embedding lookup (ONNX Gather on a weight table),
    the table's size: random token ids stay below it."""
    integer = {s.name for s in handle.inputs if not s.dtype.startswith("float")}
    if not integer or handle.runs_on_openvino_only:  # no ONNX form to read the tables from
        return {}
    import onnx

    graph = onnx.load(str(handle.onnx_file()), load_external_data=False).graph
    tables = {t.name: t.dims[0] for t in graph.initializer if t.dims}
    tables.update({n.output[0]: n.attribute[0].t.dims[0] for n in graph.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].t.dims})
    ranges: dict[str, int] = {}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] in integer and node.input[0] in tables:
            ranges[node.input[1]] = min(ranges.get(node.input[1], tables[node.input[0]]), tables[node.input[0]])
    return ranges
