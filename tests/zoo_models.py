"""A zoo of small, realistic architectures, built in code, and files of them as other tools write them.

Each entry is a class of model users bring: a ResNet-style CNN, a MobileNetV3-style CNN (depthwise
convs, hardswish, squeeze-excite), a U-Net-style segmenter with two outputs, a two-head detector,
a GRU with a state input and a sample-rate scalar (voice activity), and a transformer encoder over
token ids with a dynamic sequence length. Sizes are small so the whole path runs in seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


def _conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(cout), act())


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.down(x))


class ZooResNet(nn.Module):
    """Stem, three residual stages, global pool, classifier: 10 classes from 3x32x32."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 16)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 64, 2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // 4, 1)
        self.expand = nn.Conv2d(channels // 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.hardsigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.Hardswish())
        self.depthwise = _conv_bn(hidden, hidden, stride, groups=hidden, act=nn.Hardswish)
        self.se = SqueezeExcite(hidden)
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class ZooMobileNet(nn.Module):
    """MobileNetV3-style: hardswish stem, inverted residuals with depthwise convs and squeeze-excite."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 16, 2, act=nn.Hardswish)
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1), InvertedResidual(16, 24, 2), InvertedResidual(24, 24, 1))
        self.head = nn.Sequential(nn.Conv2d(24, 64, 1), nn.Hardswish())
        self.classifier = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ZooUNet(nn.Module):
    """Encoder-decoder with skip connections and two outputs: a 1-channel mask and a 3-class map."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = _conv_bn(3, 16)
        self.enc2 = _conv_bn(16, 32, 2)
        self.bottleneck = _conv_bn(32, 32)
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec = _conv_bn(32, 16)
        self.mask = nn.Conv2d(16, 1, 1)
        self.classes = nn.Conv2d(16, 3, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.enc1(x)
        y = self.dec(torch.cat([self.up(self.bottleneck(self.enc2(skip))), skip], 1))
        return torch.sigmoid(self.mask(y)), self.classes(y)


class ZooDetector(nn.Module):
    """A backbone with a class head and a box head per anchor cell, as single-stage detectors have."""

    def __init__(self, classes: int = 5, anchors: int = 2) -> None:
        super().__init__()
        self.backbone = nn.Sequential(_conv_bn(3, 16, 2), _conv_bn(16, 32, 2), _conv_bn(32, 32))
        self.cls_head = nn.Conv2d(32, anchors * classes, 1)
        self.box_head = nn.Conv2d(32, anchors * 4, 1)
        self.classes = classes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)
        n = x.shape[0]
        scores = self.cls_head(features).reshape(n, -1, self.classes)
        boxes = self.box_head(features).reshape(n, -1, 4)
        return scores, boxes


class ZooVoiceActivity(nn.Module):
    """A voice-activity model as audio projects ship them: a chunk of samples, a recurrent state
    (layers x batch x hidden, no batch axis first) and a sample-rate scalar in; a speech probability
    and the next state out."""

    def __init__(self, chunk: int = 64, hidden: int = 32) -> None:
        super().__init__()
        self.frontend = nn.Linear(chunk, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, state: torch.Tensor, sr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x * (sr.to(x.dtype) / 16000.0)
        features = torch.relu(self.frontend(x)).unsqueeze(1)
        out, state = self.gru(features, state)
        return torch.sigmoid(self.decoder(out[:, -1])), state


class ZooTransformer(nn.Module):
    """A BERT-style encoder over token ids that returns a sentence embedding (mean over tokens)."""

    def __init__(self, vocab: int = 100, width: int = 32, layers: int = 2, max_len: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Embedding(max_len, width)
        layer = nn.TransformerEncoderLayer(width, 4, width * 2, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pool = nn.Linear(width, width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        hidden = self.encoder(self.embed(ids) + self.position(positions))
        return torch.tanh(self.pool(hidden.mean(1)))


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: how to build it, example inputs, and which input axes are free in its files."""

    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple[torch.Tensor, ...]]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)

    def model(self) -> nn.Module:
        torch.manual_seed(0)
        model = self.build()
        _randomize_batchnorm(model)
        return model.eval()

    def shape_args(self) -> list[str]:
        """`--input-shape` arguments that fix every input at the example's shape."""
        args: list[str] = []
        for name, tensor in zip(self.input_names, self.inputs()):
            args += ["--input-shape", f"{name}={'x'.join(map(str, tensor.shape)) or 'scalar'}"]
        return args


def _randomize_batchnorm(model: nn.Module) -> None:
    """Trained-looking statistics, so BatchNorm folding and quantization see real ranges."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)


def _image(shape: tuple[int, ...] = (1, 3, 32, 32)) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: (torch.rand(shape),)


IMAGE_DYNAMIC = {"input": {0: "batch"}}
ZOO: dict[str, ZooEntry] = {entry.name: entry for entry in [
    ZooEntry("resnet", ZooResNet, _image(), ("input",), ("logits",), IMAGE_DYNAMIC),
    ZooEntry("mobilenet", ZooMobileNet, _image(), ("input",), ("logits",), IMAGE_DYNAMIC),
    ZooEntry("unet", ZooUNet, _image(), ("input",), ("mask", "classes"),
             {"input": {0: "batch", 2: "height", 3: "width"}}),
    ZooEntry("detector", ZooDetector, _image(), ("input",), ("scores", "boxes"), IMAGE_DYNAMIC),
    ZooEntry("vad", ZooVoiceActivity,
             lambda: (torch.rand(1, 64) - 0.5, torch.zeros(2, 1, 32), torch.tensor(16000, dtype=torch.int64)),
             ("x", "state", "sr"), ("prob", "next_state"), {"x": {0: "batch"}, "state": {1: "batch"}}),
    ZooEntry("transformer", ZooTransformer, lambda: (torch.randint(0, 100, (1, 16)),), ("ids",), ("pooled",),
             {"ids": {0: "batch", 1: "sequence"}}),
]}


def export(entry: ZooEntry, path: Path, dynamo: bool = False, opset: int = 17) -> Path:
    """The entry as ONNX, with its free axes, from either of torch's exporters."""
    model, inputs = entry.model(), entry.inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = _dynamo_shapes(entry, inputs)
            program = torch.onnx.export(model, inputs, dynamo=True, input_names=list(entry.input_names),
                                        output_names=list(entry.output_names), dynamic_shapes=shapes,
                                        opset_version=max(opset, 18), verbose=False)
            program.save(str(path))
        else:
            torch.onnx.export(model, inputs, str(path), dynamo=False, opset_version=opset,
                              input_names=list(entry.input_names), output_names=list(entry.output_names),
                              dynamic_axes=entry.dynamic)
    return path


def _dynamo_shapes(entry: ZooEntry, inputs: tuple[torch.Tensor, ...]) -> tuple[dict[int, object] | None, ...]:
    dims: dict[str, torch.export.Dim] = {}
    shapes: list[dict[int, object] | None] = []
    for name, tensor in zip(entry.input_names, inputs):
        axes = entry.dynamic.get(name, {})
        if name == "state" or not axes:  # a recurrent state's batch is tied to x's; keep it fixed
            shapes.append(None)
            continue
        shapes.append({axis: dims.setdefault(label, torch.export.Dim(label, min=1, max=64 if label == "sequence" else 4096))
                       for axis, label in axes.items() if axis < tensor.dim()})
    return tuple(shapes)


def as_foreign(source: Path, path: Path) -> Path:
    """The same ONNX graph as other frameworks write it: the batch stored as -1, the other free
    dims unnamed, and every weight in a Constant node instead of an initializer."""
    import onnx

    model = onnx.load(str(source))
    for value in list(model.graph.input) + list(model.graph.output):
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_param"):
                dim.Clear()
                if i == 0:
                    dim.dim_value = -1
    constants = [onnx.helper.make_node("Constant", [], [t.name], value=t) for t in model.graph.initializer]
    del model.graph.initializer[:]
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(constants + nodes)
    del model.graph.value_info[:]
    onnx.save(model, str(path))
    return path


# -- the path every zoo model takes ---------------------------------------------------------

@dataclass(frozen=True)
class ZooTechnique:
    """One step of the matrix, and the fidelity it must keep: the worst output's cosine to the
    original on random inputs (the zoo's weights are random, so pruning's bound is loose)."""

    name: str
    steps: tuple[dict, ...]
    min_cosine: float
    needs_module: bool = False  # edits PyTorch: runs on the eager module (pickled), not on a file

    def recipe_doc(self) -> dict:
        return {"steps": [dict(step) for step in self.steps]}


def _quant(backend: str, precision: str) -> dict:
    return {"technique": "quantize", "settings": {"backend": backend, "precision": precision}}


TECHNIQUES: dict[str, ZooTechnique] = {t.name: t for t in [
    ZooTechnique("int8 (ONNX Runtime)", (_quant("ort", "int8"),), 0.98),
    ZooTechnique("int8 (OpenVINO)", (_quant("openvino", "int8"),), 0.98),
    ZooTechnique("FP16 (ONNX Runtime)", (_quant("ort", "fp16"),), 0.999),
    ZooTechnique("FP16 (OpenVINO)", (_quant("openvino", "fp16"),), 0.999),
    ZooTechnique("fastest precision (OpenVINO)", (_quant("openvino", "fastest"),), 0.98),
    ZooTechnique("dynamic int8", (_quant("ort", "dynamic-int8"),), 0.98),
    ZooTechnique("unstructured 30%", ({"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.3}},), 0.9),
    ZooTechnique("graph optimization", ({"technique": "graphopt", "settings": {"level": "extended"}},), 0.9999),
    ZooTechnique("structured 20% + distill", ({"technique": "prune", "settings": {"method": "structured", "sparsity": 0.2}},
                                              {"technique": "distill", "settings": {"epochs": 2}}), 0.0, needs_module=True),
]}


def open_zoo_model(entry: ZooEntry, path: Path):  # -> ModelHandle (kept untyped: tests import this without paretolab typing)
    """`path` opened as a user would, every input fixed at the example's shape."""
    from paretolab.core.model.handle import load_model
    from paretolab.core.tensors import parse_input_shapes

    texts = [arg for arg in entry.shape_args() if arg != "--input-shape"]
    return load_model(path, input_shapes=parse_input_shapes(texts), trust=path.suffix == ".pth")


def write_zoo_files(entry: ZooEntry, folder: Path, dynamo: bool = True) -> dict[str, Path]:
    """The entry in every form the zoo tests: both exporters, a file as other frameworks write it,
    and the pickled eager module."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"onnx": export(entry, folder / f"{entry.name}.onnx")}
    if dynamo:
        files["onnx (dynamo)"] = export(entry, folder / f"{entry.name}_dynamo.onnx", dynamo=True)
    files["onnx (foreign)"] = as_foreign(files["onnx"], folder / f"{entry.name}_foreign.onnx")
    files["pytorch"] = folder / f"{entry.name}.pth"
    torch.save(entry.model(), str(files["pytorch"]))
    return files
