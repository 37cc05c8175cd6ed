"""A technique ParetoLab has never heard of, described in this one module: registering it must
give it a GUI control, a CLI flag and a sweep dimension, and its requirement must refuse a model
that lacks it (tests/core/test_technique_descriptions.py, tests/gui/test_technique_controls.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from paretolab.core.compress.requirements import opset_at_least
from paretolab.core.compress.technique_spec import Setting, Technique

FUTURE_OPSET = 99  # no model has it: the requirement refuses every model


@dataclass(frozen=True)
class ScaleSettings:
    factor: float = 2.0

    def check(self) -> None:
        SCALE.setting("factor").check(self.factor)


def summary(settings: ScaleSettings) -> str:
    return f"scale x{settings.factor:g}"


def apply(ctx, index: int, settings: ScaleSettings) -> None:  # noqa: ANN001 - a StepContext
    """Multiply the model's first output by the factor."""
    model = onnx.load(ctx.file(index).onnx_file())
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{out}_unscaled" if o == out else o for o in node.output]
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(settings.factor, np.float32), "scale_factor"))
    model.graph.node.append(onnx.helper.make_node("Mul", [f"{out}_unscaled", "scale_factor"], [out]))
    onnx.save(model, ctx.out(index))
    ctx.set_file(ctx.out(index))
    ctx.report(index, {"technique": "scale", "factor": settings.factor})


def _fields(sweep: tuple | None) -> tuple[Setting, ...]:
    return (Setting("factor", "float", 2.0, "Factor", "what the first output is multiplied by", minimum=0.5, maximum=4.0,
                    step=0.5, sweep=sweep),)


# Implementations named by string: the registry imports this module's functions on first use.
SCALE = Technique("scale", "dummy_technique:ScaleSettings", "dummy_technique:summary", "dummy_technique:apply",
                  lambda s: "onnx", label="Output scaling", words="output scaling",
                  help="multiply the model's first output by a factor", fields=_fields((None, 1.5, 3.0)))
# The same, needing an opset no model has.
SCALE_FUTURE = Technique("scale", "dummy_technique:ScaleSettings", "dummy_technique:summary", "dummy_technique:apply",
                         lambda s: "onnx", label="Output scaling", words="output scaling",
                         help="multiply the model's first output by a factor", fields=_fields((None, 1.5, 3.0)),
                         needs=(opset_at_least(FUTURE_OPSET),))

