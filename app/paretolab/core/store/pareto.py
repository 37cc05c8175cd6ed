"""The accuracy-versus-cost Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    key: str
    cost: float  # lower is better (latency, size)
    score: float  # higher is better (accuracy, agreement)
    broken: bool = False  # below its output kind's fidelity floor, or collapsed: never on the front


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both axes, by increasing cost.

    A point is dominated when another costs no more and scores at least as much, and is
    strictly better on one of the two. Ties in both keep the first given. Broken points take
    no part: a detector whose scores died can be fast and keep a perfect cosine.
    """
    ordered = sorted((p for p in points if not p.broken), key=lambda p: (p.cost, -p.score))
    front: list[Point] = []
    for p in ordered:
        if not front or p.score > front[-1].score:
            front.append(p)
    return front


def step_line(front: Sequence[Point]) -> tuple[list[float], list[float]]:
    """x, y of the front drawn as a staircase (the best score reachable at each cost)."""
    xs: list[float] = []
    ys: list[float] = []
    for i, p in enumerate(front):
        if i:
            xs.append(p.cost)
            ys.append(front[i - 1].score)
        xs.append(p.cost)
        ys.append(p.score)
    return xs, ys
