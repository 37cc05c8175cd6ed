"""Variant: one optimized model (recipe, artifact, parent, metrics). Recipe: the ordered
steps, with their settings, that reproduce it; saved and loaded as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paretolab.core.compress.techniques import COMBINED_KINDS, TECHNIQUES, technique
from paretolab.core.errors import first_line
from paretolab.core.files import write_json_atomic
from paretolab.core.measure.measurement import METRIC_LABELS, Measurement, score_of, speedup
from paretolab.core.measure.records import MeasuredBy, TimingRecord, ValidationScores
from paretolab.core.model.exits import exits_text
from paretolab.core.settings import SettingsError, from_dict, to_dict

if TYPE_CHECKING:
    from paretolab.core.measure.timing import Speedup  # timing needs the runtimes; a variant only carries its result

RECIPE_VERSION = 1


@dataclass(frozen=True)
class Step:
    technique: str
    settings: Any

    def to_dict(self) -> dict:
        return {"technique": self.technique, "settings": to_dict(self.settings)}

    def summary(self) -> str:
        return TECHNIQUES[self.technique].summarize(self.settings)

    def output(self) -> str | None:
        """What the step leaves: an edited torch module, an ONNX or an OpenVINO file, or None
        when it works on whatever it is given."""
        return TECHNIQUES[self.technique].output(self.settings)

    def trains_module(self) -> bool:
        """Whether the step may train the PyTorch module before it (so that module must reach it)."""
        trains = TECHNIQUES[self.technique].trains_module
        return trains is not None and trains(self.settings)


@dataclass(frozen=True)
class Recipe:
    steps: tuple[Step, ...]

    def summary(self) -> str:
        return " → ".join(step.summary() for step in self.steps) or "baseline"

    def to_dict(self) -> dict:
        return {"paretolab_recipe": RECIPE_VERSION, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, doc: Any, where: str = "recipe") -> Recipe:
        if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
            raise SettingsError(f"{where}: a recipe is an object with a 'steps' list")
        version = doc.get("paretolab_recipe", RECIPE_VERSION)
        if version != RECIPE_VERSION:
            raise SettingsError(
                f"{where}: recipe version {version} is not supported (this ParetoLab reads version {RECIPE_VERSION})"
            )
        steps = []
        for i, raw in enumerate(doc["steps"], start=1):
            here = f"{where} step {i}"
            if not isinstance(raw, dict) or not isinstance(raw.get("technique"), str):
                raise SettingsError(f"{here}: each step needs a 'technique' named by a string ({', '.join(TECHNIQUES)})")
            entry = technique(raw["technique"], here)
            extra = set(raw) - {"technique", "settings"}
            if extra:
                raise SettingsError(f"{here}: unknown field '{sorted(extra)[0]}'; a step has 'technique' and 'settings'")
            steps.append(Step(entry.name, from_dict(entry.settings_class, raw.get("settings", {}), f"{here} ({entry.name})")))
        recipe = cls(tuple(steps))
        recipe.check_order(where)
        return recipe

    def check_order(self, where: str = "recipe") -> None:
        """Steps that edit the PyTorch model must come before steps that produce files for a
        runtime, nothing can follow OpenVINO quantization (its output is IR, not ONNX) or a step that
        says it comes last (a PyTorch precision), and a step refuses the outputs its entry names
        (OpenVINO IR after early exit loses the exits' record)."""
        file_step = openvino_step = final_step = None
        refusing: list[tuple[str, dict[str, str]]] = []  # earlier steps that refuse some later outputs, with why
        for i, step in enumerate(self.steps, start=1):
            output, label, entry = step.output(), f"step {i} ({step.summary()})", TECHNIQUES[step.technique]
            for earlier, reasons in refusing:
                if output in reasons:
                    raise SettingsError(f"{where} step {i}: {step.summary()} cannot follow {earlier}: {reasons[output]}")
            if entry.refuses_after:
                refusing.append((label, entry.refuses_after))
            if output == "torch" and file_step:
                raise SettingsError(
                    f"{where} step {i}: {step.summary()} edits the PyTorch model, so it must come before {file_step}"
                )
            if openvino_step:
                raise SettingsError(f"{where} step {i}: nothing can follow {openvino_step}, whose output is OpenVINO IR")
            if final_step:
                raise SettingsError(f"{where} step {i}: nothing can follow {final_step[0]}: {final_step[1]}")
            why_last = entry.final(step.settings) if entry.final is not None else None
            if why_last:
                final_step = (label, why_last)
            if output in ("onnx", "openvino"):
                file_step = file_step or label
            if output == "openvino":
                openvino_step = label

    def output(self) -> str | None:
        """What the recipe leaves: the kind of model its last step that decides one leaves, or
        None when no step does (the model stays in its own form)."""
        return next((out for out in (s.output() for s in reversed(self.steps)) if out is not None), None)

    def save(self, path: Path) -> Path:
        write_json_atomic(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> Recipe:
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"{path}: no such recipe file") from None
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        except RecursionError:
            raise SettingsError(f"{path.name} nests its JSON too deeply to be a recipe; a recipe is an object with a "
                                "'steps' list") from None
        except UnicodeDecodeError as exc:
            raise SettingsError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 "
                                "JSON") from None
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read the recipe ({exc.strerror or first_line(exc)})") from None
        return cls.from_dict(doc, path.name)


@dataclass
class Variant:
    name: str
    recipe: Recipe
    artifact: Path
    parent: str  # the model file the recipe was applied to
    metrics: dict = field(default_factory=dict)
    reports: list[dict] = field(default_factory=list)  # what each step reported
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "recipe": self.recipe.to_dict(),
            "summary": self.recipe.summary(),
            "artifact": str(self.artifact),
            "parent": self.parent,
            "metrics": self.metrics,
            "reports": self.reports,
            "created": self.created,
        }

    @cached_property  # read on every paint of the variants table: parse the metrics once
    def measured(self) -> Measurement:
        """The variant's own numbers, on the backend it was measured on. A cancelled variant
        has none (ValueError): check `cancelled` first."""
        return self._measurement("variant")

    @cached_property
    def baseline(self) -> Measurement:
        """The original model's numbers, FP32 on the variant's backend, device and threads, measured
        in the same run."""
        return self._measurement("baseline")

    @property
    def baseline_key(self) -> str:
        """How the chart and the report name the original on this variant's backend and device."""
        b = self.baseline
        return "baseline" if (b.backend, b.device) == ("ort", "cpu") else f"baseline {b.backend}/{b.device}"

    def check(self) -> None:
        """Raise ValueError when a finished variant's metrics lack its or its baseline's numbers."""
        if not self.cancelled:
            for key in ("variant", "baseline"):
                self._measurement(key)

    def _measurement(self, key: str) -> Measurement:
        doc = self.metrics.get(key)
        if not isinstance(doc, dict):
            raise ValueError(f"{self.name} has no {key} measurement")
        return Measurement.from_dict(doc)

    # The metrics document, typed. `metrics` stays the dict the file stores; these read it (a
    # property, not cached: a writer may still add to the dict of a variant it has built).
    @property
    def timing(self) -> TimingRecord:
        """How the latencies were timed (an empty record for a cancelled variant)."""
        return TimingRecord.from_dict(self.metrics.get("timing"))

    @property
    def validation(self) -> ValidationScores | None:
        """The scores on the validation split; None when the data had no validation split."""
        doc = self.metrics.get("validation")
        return ValidationScores.from_dict(doc) if doc else None

    @property
    def notes(self) -> list[str]:
        """What the run said of this variant (data, timing, like-for-like), for the CLI and the report."""
        return list(self.metrics.get("notes") or [])

    @property
    def measured_by(self) -> MeasuredBy:
        return MeasuredBy.from_dict(self.metrics.get("measured_by"))

    @property
    def fidelity(self) -> list[dict]:
        """Per output: its kind, measures and verdict (measure.metrics.fidelity_dict; empty for class scores)."""
        return list(self.metrics.get("fidelity") or [])

    @property
    def machine(self) -> dict:
        """The machine it was measured on (measure.machine.machine_info: free-form, shown as it is)."""
        return dict(self.metrics.get("machine") or {})

    @property
    def size_ratio(self) -> float | None:
        return self.metrics.get("size_ratio")

    @property
    def speedup(self) -> float | None:
        return None if self.cancelled else speedup(self.baseline, self.measured)

    @property
    def cancelled(self) -> bool:
        return bool(self.metrics.get("cancelled"))

    @property
    def speedup_range(self) -> tuple[float, float] | None:
        """The speed-up's 95 % interval from side-by-side timing (None for older variants)."""
        return self.timing.speedup_range

    def speedup_text(self, with_basis: bool = True) -> str:
        """"2.31x (2.10-2.52) vs the original on openvino/cpu, default threads" or "n/a"."""
        if self.speedup is None:
            return "n/a"
        span = f" ({self.speedup_range[0]:.2f}-{self.speedup_range[1]:.2f})" if self.speedup_range else ""
        return f"{self.speedup:.2f}x{span}" + (f" vs the original on {self.baseline.where}" if with_basis else "")

    @property
    def busy(self) -> str | None:
        """Why this speed-up is uncertain (the machine was busy while timing), or None."""
        return None if self.cancelled else self.timing.busy or None

    def speedup_basis(self) -> str:
        """What the speed-up divides, so it never reads against the latencies beside it: "the original's
        0.7560 ms / this variant's 0.1230 ms, timed in the same rounds" ("" when unmeasured)."""
        if self.speedup is None:
            return ""
        return (f"the original's {self.baseline.latency_ms:.4f} ms / this variant's {self.measured.latency_ms:.4f} ms, "
                "timed in the same rounds")

    def deployed_text(self) -> str | None:
        """"vs OpenVINO default (bf16): 1.31x (1.20-1.45)": the speed-up against the original as
        OpenVINO runs it with no precision hint, where that is not the f32 it is compared with; else None."""
        d = None if self.cancelled else self.timing.openvino_default
        if not d:
            return None
        return f"vs OpenVINO default ({d.precision}): {d.speedup:.2f}x ({d.speedup_low:.2f}-{d.speedup_high:.2f})"

    @property
    def selection_score(self) -> float:
        """What sweeps and the chart choose by: the validation score when the data has a
        validation split, else the only one there is. The test score is reported, never chosen by."""
        return self._selection("variant", self.measured)

    @property
    def baseline_selection_score(self) -> float:
        """The original's score on the same split as `selection_score`."""
        return self._selection("baseline", self.baseline)

    def _selection(self, who: str, reported: Measurement) -> float:
        validation = self.validation
        if not validation:
            return reported.score
        doc = validation.variant if who == "variant" else validation.baseline
        return score_of(doc.top1, doc.agreement, doc.cosine)

    @property
    def metric(self) -> str:
        """Which measure the scores are: "top-1", "agreement" or "cosine" (outputs that are not class scores)."""
        return self.measured.metric

    @property
    def metric_label(self) -> str:
        """The measure in words, for the chart's axis and the report."""
        return METRIC_LABELS[self.metric]

    @property
    def selection_split(self) -> str:
        validation = self.validation
        return validation.dataset if validation and validation.dataset else (self.measured.dataset or "the data given")

    @property
    def exits(self) -> list[dict]:
        """An early-exit variant's exits on the test split: per exit, the share of samples leaving
        there and their top-1 (empty for other variants)."""
        return list(self.metrics.get("exits") or [])

    def exits_text(self) -> str:
        """Where the test inputs left and how right they were there ("" for other variants)."""
        return exits_text(self.exits)

    def latency_text(self) -> str | None:
        """An input-dependent latency in words: "average 0.62 ms over 360 samples of digits:test;
        p50 0.66, p90 0.95, p99 1.08 ms (the original: 0.71 ms)", or None for a fixed-cost variant."""
        over = self.timing.over_data
        if not over:
            return None
        mine, base = over.variant, over.baseline
        return (f"average {mine.mean_ms:.4f} ms over {mine.samples} samples of {over.dataset}; p50 "
                f"{mine.p50_ms:.4f}, p90 {mine.p90_ms:.4f}, p99 {mine.p99_ms:.4f} ms (the original: average "
                f"{base.mean_ms:.4f} ms)")

    def remeasured(self, baseline_ms: float, variant_ms: float, timing: dict, faster: Speedup) -> Variant:
        """A copy with the latencies of a new timing (a re-profile; pipeline.scorecard.latencies), whose
        notes (timing["notes"]) replace the old timing's: a stale "busy" must not outlive its timing."""
        old = self.timing
        stale = set(old.notes or [])
        if old.notes is None:  # recorded before timings kept their notes apart
            stale |= {old.busy or "", *(old.busy or "").split("; ")}
        kept = [n for n in self.notes if n not in stale and not n.startswith(_TIMING_VERDICTS)]
        metrics = {
            **self.metrics,
            "variant": replace(self.measured, latency_ms=variant_ms).to_dict(),
            "baseline": replace(self.baseline, latency_ms=baseline_ms).to_dict(),
            "speedup": faster.value,
            "timing": {**old.to_dict(), **timing, "notes": list(timing.get("notes") or [])},
            "notes": kept + list(timing.get("notes") or []),
        }
        return replace(self, metrics=metrics)


_TIMING_VERDICTS = ("no measurable speed-up", "this variant is slower than the original")  # what a timing says of itself


def technique_kind(recipe: Recipe) -> str:
    """What kind of compression a recipe is, for colouring points (a TECHNIQUE_COLOURS key)."""
    names = {s.technique for s in recipe.steps}
    combined = next((kind for kind, together in COMBINED_KINDS.items() if together <= names), None)
    if combined:
        return combined
    coloured = sorted((TECHNIQUES[n] for n in names if TECHNIQUES[n].colour), key=lambda t: t.colour_rank)
    return coloured[0].name if coloured else "other"


COLLAPSE_DROP = 0.05  # a fall of more than 5 points of accuracy (or agreement) is flagged
BROKEN_COSINE = 0.95  # outputs that are not class scores: below this (about 13 dB SQNR) a variant is broken


def collapse_warning(variant: Variant) -> str | None:
    """Say so when a variant lost much of the original's accuracy, and what usually fixes it:
    a collapsed variant on the chart with no word is how people ship broken models."""
    if variant.cancelled:
        return None
    base, mine = variant.baseline, variant.measured
    if base.top1 is not None and mine.top1 is not None:
        measure, before, after = "top-1", base.top1, mine.top1
    elif mine.agreement is not None:
        measure, before, after = "agreement with the original", 1.0, mine.agreement
    elif mine.cosine is not None and mine.cosine < BROKEN_COSINE:
        return (f"the outputs no longer match the original's ({mine.fidelity_text()}): this variant is broken; "
                + _collapse_hint(variant))
    else:
        return None
    if before - after <= COLLAPSE_DROP:
        return None
    return f"{measure} fell from {before:.1%} to {after:.1%}: this variant has collapsed; {_collapse_hint(variant)}"


def _collapse_hint(variant: Variant) -> str:
    names = frozenset(s.technique for s in variant.recipe.steps)
    fixes: list[str] = []
    for entry in TECHNIQUES.values():  # each technique says what fixes it (its first step's settings), in recipe order
        step = next((s for s in variant.recipe.steps if s.technique == entry.name), None)
        if step is not None and entry.hints is not None:
            fixes += [fix for fix in entry.hints(step.settings, names) if fix not in fixes]
    return "; ".join(fixes) or "try milder settings"
