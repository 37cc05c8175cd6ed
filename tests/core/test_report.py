"""The stakeholder report: one self-contained HTML file a real parser reads, plus JSON and CSV."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest

from paretolab.cli import main
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("cpu", [set(), {"avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16", "amx_fp16"}],
                         ids=["featureless-cpu", "amx-fp16-cpu"])
def test_report_from_an_experiment(tmp_path, capsys, cpu_features, cpu):
    cpu_features(cpu)  # what the report says must hold on any CPU
    sample = load_model(sample_model_path())
    experiment = Experiment.for_model(sample, tmp_path / "exp")
    plan = DataPlan.from_spec("digits", sample)
    for name, steps in (("v1", [{"technique": "quantize", "settings": {"precision": "fp16"}}]),
                        ("v2", [{"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.3}}])):
        optimize(sample, Recipe.from_dict({"steps": steps}), plan, experiment.folder, name)
    code = main(["report", str(experiment.folder), "--out", str(tmp_path / "report")])
    assert code == 0
    written = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[1] for p in written] == ["report.html", "report.json", "variants.csv"]

    parser = Collect()
    parser.feed((tmp_path / "report" / "report.html").read_text())
    assert parser.tags.count("svg") == 2 and "table" in parser.tags and "script" not in parser.tags
    assert parser.links == []  # self-contained: nothing to fetch
    text = " ".join(parser.text)
    assert "quantize ort fp16" in text and "prune unstructured 30%" in text and "Pareto front" in text

    numbers = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [v["name"] for v in numbers["variants"]] == ["baseline", "v1", "v2"] and numbers["pareto_front"]
    with open(tmp_path / "report" / "variants.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["baseline", "v1", "v2"] and float(rows[1]["latency_ms"]) > 0
    why = {r["name"]: r["why"] for r in rows}  # neither is faster on a CPU, and the report says why
    assert "FP16 halves the file, not the time" in why["v1"] and "as many MACs as the original" in why["v2"]
    assert "unstructured pruning zeroes weights" in why["v2"] and "pruning" not in why["v1"]
    assert "Why (not) faster" in text


def test_report_of_an_empty_experiment_says_what_to_do(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "has no variants yet" in capsys.readouterr().err
