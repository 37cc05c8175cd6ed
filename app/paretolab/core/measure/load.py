"""How much of the machine other processes took while we timed.

A spread between runs catches a neighbour that comes and goes; one that hogs the CPUs evenly
for the whole timing slows every run alike and leaves the spread small. The machine's CPU time
less this process's, over the timing's wall time, names that neighbour (a virtual machine's
steal time counts too: it is CPU the host gave to someone else).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

OTHERS_BUSY = 0.25  # other processes holding more than this share of all CPUs make a timing uncertain


@dataclass(frozen=True)
class CpuSnapshot:
    wall_s: float
    machine_busy_s: float  # every CPU's non-idle time, summed
    mine_s: float  # this process's (and its threads') CPU time


def cpu_snapshot() -> CpuSnapshot:
    machine = psutil.cpu_times()
    idle = machine.idle + getattr(machine, "iowait", 0.0)
    total = sum(machine)
    # guest time is already inside user time on Linux; counting it twice would invent load
    total -= getattr(machine, "guest", 0.0) + getattr(machine, "guest_nice", 0.0)
    mine = psutil.Process().cpu_times()
    return CpuSnapshot(time.monotonic(), total - idle, mine.user + mine.system)


def others_cpus(start: CpuSnapshot, end: CpuSnapshot) -> float:
    """How many CPUs other processes kept busy, on average, between two snapshots."""
    wall = end.wall_s - start.wall_s
    if wall <= 0:
        return 0.0
    others = (end.machine_busy_s - start.machine_busy_s) - (end.mine_s - start.mine_s)
    return max(0.0, others / wall)


def others_note(cpus_taken: float, cpus: int | None = None) -> str | None:
    """A busy note when other processes held more than OTHERS_BUSY of the machine, else None."""
    cpus = cpus or os.cpu_count() or 1
    if cpus_taken <= OTHERS_BUSY * cpus:
        return None
    return (f"other processes kept {cpus_taken:.1f} of {cpus} CPUs busy while timing: the machine was busy, so the "
            "speed-ups are uncertain; measure again on an idle machine")
