"""ONNX Runtime's offline graph optimizations (constant folding, operator fusions),
saved as a new ONNX file that any runtime can load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from paretolab.core.compress.techniques import GRAPHOPT

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext


@dataclass(frozen=True)
class GraphOptSettings:
    # "basic" (constant folding, redundant-node removal) keeps standard ONNX ops that every
    # runtime loads; "extended" adds ONNX Runtime's fused ops (com.microsoft domain), for
    # ONNX Runtime only. ORT's "all" level bakes in this CPU's memory layout and is not offered.
    level: Literal["basic", "extended"] = "basic"

    def check(self) -> None:
        GRAPHOPT.setting("level").check(self.level)


def optimize_graph(src: Path, out: Path, settings: GraphOptSettings) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[settings.level]
    options.optimized_model_filepath = str(out)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def summary(settings: GraphOptSettings) -> str:
    return f"graphopt {settings.level}"


def runtime_only_ops(path: Path) -> list[str]:
    """The ONNX Runtime contrib ops (com.microsoft domain) a file uses: other runtimes and the
    ONNX checker do not know them."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return sorted({n.op_type for n in graph.node if n.domain == "com.microsoft"})


def apply(ctx: StepContext, index: int, settings: GraphOptSettings) -> None:
    optimize_graph(ctx.file(index).onnx_file(), ctx.out(index), settings)
    ctx.set_file(ctx.out(index))  # loaded by ONNX Runtime first, in a child process
    report: dict = {"technique": "graphopt", "level": settings.level, "runs_on": ["ort"]}
    contrib = runtime_only_ops(ctx.out(index))
    if not contrib or _openvino_loads(ctx.out(index)):
        report["runs_on"].append("openvino")
    if contrib:
        where = "OpenVINO loads it too" if "openvino" in report["runs_on"] else "OpenVINO cannot load it"
        report["notes"] = [f"the optimized graph uses ONNX Runtime's own ops ({', '.join(contrib[:4])}), which the ONNX "
                           f"checker and other runtimes do not know ({where}); choose level basic for a portable file"]
    ctx.report(index, report)


def _openvino_loads(path: Path) -> bool:
    import openvino as ov

    try:
        ov.Core().compile_model(str(path), "CPU")
    except Exception:  # noqa: BLE001 - any refusal means OpenVINO cannot run this file
        return False
    return True
