"""ONNX files from other frameworks, brought to the form ONNX's own tools expect.

Exporters such as Paddle2ONNX store weights as Constant nodes instead of initializers. Shape
inference and analysis read them either way, but ONNX Runtime's quantizers and our magnitude
pruning look for initializers ("has no Conv weights to prune", "Expected ... to be an
initializer"). Techniques that edit weights work on a private copy whose tensor-valued Constant
nodes are initializers; the user's file is never touched.
"""

from __future__ import annotations

from pathlib import Path

import onnx


def constants_as_initializers(model: onnx.ModelProto) -> int:
    """Move the main graph's tensor-valued Constant nodes into initializers, in place; return how many."""
    kept, moved = [], 0
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
            moved += 1
        else:
            kept.append(node)
    if moved:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return moved


def normalized_onnx(src: Path, work: Path) -> Path:
    """`src` itself when its weights are initializers already, else a normalized copy in `work`."""
    header = onnx.load(str(src), load_external_data=False)
    if not any(n.op_type == "Constant" for n in header.graph.node):
        return src
    model = onnx.load(str(src))
    constants_as_initializers(model)
    out = work / f"{src.stem}.normalized.onnx"
    onnx.save(model, str(out), save_as_external_data=model.ByteSize() > 1_800_000_000)
    return out
