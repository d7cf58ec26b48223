"""Two runs side by side, and whether the newer one got worse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference.evaluation.metrics import LATENCY_METRICS, QUALITY_METRICS


@dataclass(frozen=True)
class MetricChange:
    name: str
    baseline: float | None
    current: float | None
    worse: bool

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline


def compare_metrics(
    baseline: dict[str, Any],
    current: dict[str, Any],
    *,
    max_drop: float | None = None,
    max_slowdown: float | None = None,
) -> list[MetricChange]:
    """Every figure of both runs. A quality figure is worse when it dropped
    by more than ``max_drop`` (absolute: 0.02 is two points of a rate); a
    latency figure when it grew by more than ``max_slowdown`` (relative:
    0.1 is ten per cent slower)."""
    changes = []
    for name in QUALITY_METRICS:
        old, new = baseline.get(name), current.get(name)
        worse = (
            max_drop is not None
            and old is not None
            and (new is None or old - new > max_drop)
        )
        changes.append(MetricChange(name, old, new, worse))
    for name in LATENCY_METRICS:
        old, new = baseline.get(name), current.get(name)
        worse = (
            max_slowdown is not None
            and old is not None
            and new is not None
            and new > old * (1 + max_slowdown)
        )
        changes.append(MetricChange(name, old, new, worse))
    return changes
