"""A BERT-style encoder from a Hugging Face folder through the techniques that pay on transformers,
measured in one run: the table in README's "Transformers" section.

The model is built from a config (hidden 256, 4 layers, 4 heads, MLP 1024, random weights) and
saved with save_pretrained, as a user's fine-tuned checkpoint folder would be; it opens at batch 1,
sequence 128. Each technique runs through `optimize` on 32 random token sequences; the speed-up is
the variant's median batch-1 latency against the original's, timed side by side in alternating
rounds on the variant's runtime; size is the variant file against the folder's weights; fidelity
is the logits' cosine similarity to the original.

    python bench/hf_bert.py [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from md_table import print_table  # bench/ is the script's folder, first on sys.path
from paretolab.core.compress.techniques import QUANT_TARGETS
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize

CONFIG = dict(vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
              max_position_embeddings=256, num_labels=4)
TARGETS = ("ort-dynamic", "ort-int8", "ort-int8-weights", "ort-int4-weights", "openvino-int8", "openvino-int8-weights",
           "openvino-int4-weights", "ort-fp16")


def build(folder: Path) -> Path:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    path = folder / "bert"
    transformers.BertForSequenceClassification(transformers.BertConfig(**CONFIG)).eval().save_pretrained(path)
    return path


def row(folder: Path, target: str) -> list[str]:
    handle = load_model(folder, input_shapes={None: (1, 128)})
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": QUANT_TARGETS[target].settings()}]})
    try:
        variant = optimize(handle, recipe, DataPlan.from_spec("random:32", handle), folder.parent / "out", target)
    except ParetoLabError as exc:
        return [target, f"fails: {exc}", "", ""]
    m = variant.measured
    weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    return [QUANT_TARGETS[target].label, f"{variant.speedup:.2f}x", f"{m.size_bytes / weights:.2f}x",
            f"{m.cosine:.4f}" + ("" if m.sqnr_db is None else f" ({m.sqnr_db:.0f} dB)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp))
        rows = []
        for target in TARGETS:
            rows.append(row(folder, target))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = ["technique", "speed-up (batch 1)", "size", "cosine to FP32 (SQNR)"]
    if args.markdown:
        print_table(header, rows)
    print(f"\n{len(rows)} techniques in {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
