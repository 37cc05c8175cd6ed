"""Which data serves which purpose: training and calibration, validation, final evaluation.

Every caller gets its data through a DataPlan, so the built-in digits always split the same
way (train for gradients and calibration, val for choices, test for the numbers shown) and a
user's single dataset is used for all three with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paretolab.core.measure.data import Dataset, default_data, digits, digits_size_for, open_dataset
from paretolab.core.model.handle import ModelHandle


@dataclass
class DataPlan:
    train: Dataset
    validation: Dataset
    test: Dataset
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: str | None, handle: ModelHandle) -> DataPlan:
        """`spec` as the CLI and the GUI take it: "digits", "random:N", a folder or a tensor file;
        None: the digits for models they fit, else random inputs, with a note."""
        if spec is None:
            spec, note = default_data(handle.inputs)
            plan = cls.from_spec(spec, handle)
            plan.notes[:0] = [note] if note else []
            return plan
        if spec == "digits":
            size = digits_size_for(handle.inputs)
            return cls(digits("train", size), digits("val", size), digits("test", size))
        data = open_dataset(spec, handle.inputs)
        return cls(
            data,
            data,
            data,
            [f"{data.name} serves for calibration and evaluation alike; hold out a test set for unbiased numbers"],
        )
