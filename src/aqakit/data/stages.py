"""Action stages: step transitions on a video's frames or clips, and the per-clip targets built from them.

A *transition* is the index of the last frame (or clip) of a stage, the convention of FineDiving's
``step_transitions``: stage ``s`` of a video with transitions ``t_1 < ... < t_{S-1}`` holds the
positions ``t_{s-1} + 1 .. t_s`` (``t_0 = -1``, ``t_S = length - 1``). So every transition lies
in ``0 .. length - 2`` and no stage is empty.

A :class:`~aqakit.data.videoset.VideoSet` carries the transitions of its clips in
``extras["transition_clips"]`` (N, S - 1) int64; :class:`~aqakit.data.batches.ClipBank` turns
them into the batch field ``transition`` (B, T) float32, 1.0 at a transition clip, so they follow
every crop. Documented in docs/reference/data.md ("Stages").
"""

from __future__ import annotations

import numpy as np

from aqakit.errors import DataError

#: The VideoSet extra holding each video's transitions on its clip grid, (N, S - 1) int64.
TRANSITION_CLIPS = "transition_clips"


def check_transitions(transitions: np.ndarray, length: int, where: str) -> np.ndarray:
    """``transitions`` as int64 if strictly increasing inside ``0 .. length - 2``, else a DataError naming ``where``."""
    values = np.asarray(transitions)
    if values.ndim != 1 or (values.size and not np.all(np.mod(values, 1) == 0)):
        raise DataError(f"{where}: transitions {values.tolist()} are not whole positions")
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > length - 2 or np.any(np.diff(values) <= 0)):
        raise DataError(
            f"{where}: transitions {values.tolist()} are outside the clip or out of order "
            f"(each must be the last position of a stage, increasing, in 0..{length - 2} of {length})"
        )
    return values


def frames_to_clips(transitions: np.ndarray, n_frames: int, n_clips: int, where: str) -> np.ndarray:
    """Frame transitions of a video of ``n_frames`` frames -> transitions on its grid of ``n_clips``
    clips covering the frames evenly: the clip holding each transition frame (clip ``c`` holds
    frames ``c * n_frames / n_clips`` up to the next clip's first). Raises a DataError (naming
    ``where``) when two transitions fall in one clip or one falls in the last clip (the grid is
    too coarse for the stages)."""
    frames = check_transitions(transitions, n_frames, where)
    clips = frames * n_clips // n_frames
    return check_transitions(clips, n_clips, f"{where} (frame transitions {frames.tolist()} on {n_clips} clips)")


def stage_segments(transitions: np.ndarray, length: int) -> list[tuple[int, int]]:
    """The stages ``[(first, last), ...]`` (inclusive) that ``transitions`` cut ``0 .. length - 1`` into."""
    bounds = [-1, *np.asarray(transitions, dtype=np.int64).tolist(), length - 1]
    return [(bounds[s] + 1, bounds[s + 1]) for s in range(len(bounds) - 1)]
