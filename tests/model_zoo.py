"""Small models with hand-computed sizes, and files of every format made from them."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

TINY_INPUT = (1, 3, 16, 16)

# Hand-computed for TINY_INPUT (batch 1):
#   stem  Conv2d(3->8, 3x3):           params 8*3*9 + 8 = 224,  MACs 8*16*16 * 3*9 = 55,296
#   bn    BatchNorm2d(8):              params 8 + 8 = 16 (running stats are buffers, not params)
#   block.conv Conv2d(8->8, 3x3, g=2): params 8*4*9 = 288,      MACs 8*16*16 * 4*9 = 73,728
#   fc    Linear(8->10):               params 8*10 + 10 = 90,   MACs 8*10 = 80
TINY_PARAMS = 224 + 16 + 288 + 90
TINY_MACS = 55_296 + 73_728 + 80
# Layers as ParetoLab names them for the torch model: every module, plus the residual Add.
TINY_LAYERS = ["stem", "bn", "act", "block.conv", "block/Add", "pool", "flatten", "fc"]


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.block = Residual()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.block(self.act(self.bn(self.stem(x)))))))


def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    model = TinyNet()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding it changes weights
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.bn.weight.uniform_(0.5, 1.5)
    return model.eval()


def deep_mlp(blocks: int = 500, width: int = 16) -> nn.Module:
    """2 * blocks layers (Linear, ReLU): a 1,000-layer model by default."""
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers).eval()


def export_onnx(model: nn.Module, path: Path, shape=TINY_INPUT, opset: int = 17) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(shape),),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    return path


def write_model_files(folder: Path) -> dict[str, Path]:
    """One file of every supported kind, all holding the same TinyNet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, still in use
        return _write_model_files(folder)


def _write_model_files(folder: Path) -> dict[str, Path]:
    import onnx
    import openvino as ov

    model = tiny_net()
    x = torch.rand(TINY_INPUT)
    files = {"onnx": export_onnx(model, folder / "tiny.onnx")}

    proto = onnx.load(str(files["onnx"]))
    files["onnx_external"] = folder / "external" / "tiny_ext.onnx"
    files["onnx_external"].parent.mkdir()
    onnx.save_model(proto, str(files["onnx_external"]), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="tiny_ext.onnx.data", size_threshold=0)

    files["script"] = folder / "tiny_script.pt"
    torch.jit.save(torch.jit.script(model), str(files["script"]))
    files["trace"] = folder / "tiny_trace.pth"
    torch.jit.save(torch.jit.trace(model, x), str(files["trace"]))
    files["pt2"] = folder / "tiny.pt2"
    torch.export.save(torch.export.export(model, (x,)), str(files["pt2"]))
    files["pickle"] = folder / "tiny_module.pth"
    torch.save(model, str(files["pickle"]))
    files["state_dict"] = folder / "tiny_state.pth"
    torch.save(model.state_dict(), str(files["state_dict"]))
    files["checkpoint"] = folder / "tiny_ckpt.pth"
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "lr": 0.1}, str(files["checkpoint"]))
    files["openvino"] = folder / "ir" / "tiny.xml"
    files["openvino"].parent.mkdir()
    ir = ov.convert_model(model, example_input=x, input=[ov.PartialShape([-1, *TINY_INPUT[1:]])])
    ov.save_model(ir, str(files["openvino"]), compress_to_fp16=False)
    return files
