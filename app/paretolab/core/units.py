"""Human-readable numbers, shared by the CLI, the GUI and reports so they always agree."""

from __future__ import annotations


def si(value: float | int | None, unit: str = "") -> str:
    """1234567 -> "1.23 M"; None -> "?"."""
    if value is None:
        return "?"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}".rstrip()
    return f"{value:g} {unit}".rstrip()


def percent(value: float | None) -> str:
    """0.98889 -> "98.89%"; None -> "n/a"."""
    return "n/a" if value is None else f"{100 * value:.2f}%"


def size(num_bytes: int | None) -> str:
    """Bytes in binary units: 163885 -> "160 KiB"."""
    if num_bytes is None:
        return "?"
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} GiB"  # pragma: no cover - loop always returns
