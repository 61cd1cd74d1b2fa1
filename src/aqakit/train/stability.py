"""Whether a run's per-epoch curve was still swinging when training stopped.

On small training sets a model's held-out Spearman can swing by a lot from one epoch to the next, so
the epoch a ``final`` selection keeps lands wherever the swing happens to end. :func:`late_swing`
measures that on the curve of a seed's ``metrics.csv``: over the last ``max(5, 10 %)`` epochs, the
range (max - min) of the validation Spearman (the test Spearman when no validation split was carved;
only described, never used to choose). A range above :data:`SWING_THRESHOLD` marks the seed unstable
in its summary and in ``aqakit results``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

#: Largest range of the held-out Spearman over the last epochs of a seed that counts as stable.
SWING_THRESHOLD = 0.05
#: Fewest epochs the window spans; it also covers the last 10 % of a longer run.
MIN_WINDOW = 5


def late_swing(history: Sequence[Mapping[str, float]]) -> dict[str, Any] | None:
    """The swing of ``history``'s held-out Spearman over its last epochs, or None when there are
    fewer than :data:`MIN_WINDOW` epochs with a finite value (nothing to judge)."""
    for curve in ("val_spearman", "test_spearman"):
        values = [float(row[curve]) for row in history if curve in row and math.isfinite(float(row[curve]))]
        if values:
            break
    else:
        return None
    if len(values) < MIN_WINDOW:
        return None
    window = max(MIN_WINDOW, math.ceil(0.1 * len(values)))
    last = values[-window:]
    swing = max(last) - min(last)
    return {"curve": curve, "last_epochs": window, "swing": swing, "threshold": SWING_THRESHOLD,
            "unstable": swing > SWING_THRESHOLD}
