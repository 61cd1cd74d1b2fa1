"""Score one video with a trained checkpoint: extract its features the way the training features
were made, predict, and collect everything a report shows (a :class:`~aqakit.explain.ScoreReport`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aqakit.errors import ConfigError, DataError
from aqakit.explain.parts import INFLUENCE_NAME, PartView, clip_influence, view_parts
from aqakit.explain.report import MAX_THUMBNAILS, ScoreReport
from aqakit.models.loading import find_checkpoint, load_checkpoint
from aqakit.video.decode import DecodeOptions
from aqakit.video.extract import extract_video, extraction_settings
from aqakit.video.isolated import DEFAULT_DECODE_TIMEOUT
from aqakit.video.manifest import with_legacy_settings
from aqakit.video.registry import backbone_class, load_backbone


def extraction_plan(
    recorded: dict[str, Any] | None, folder: Path, backbone: str | None, clip_len: int | None, fps: float | None,
    folder_fps: float | None = None,
) -> tuple[str, int, DecodeOptions]:
    """Backbone name, clip length and decode options: the checkpoint's record, else the user's flags.

    ``folder_fps`` (the frame rate of a frame folder) describes the video being scored, not the
    training features, so it may differ from the record; by default it is the recorded one.

    Raises:
        ConfigError: the checkpoint records nothing and no ``backbone`` is given, a flag
            contradicts the record, or the training features came from an older revision of the
            backbone than aqakit computes now (the model would see features unlike its training ones).
    """
    if recorded is None:
        if backbone is None:
            raise ConfigError(
                f"{folder}: the checkpoint does not record how its features were extracted (it was trained on a "
                "feature folder without an aqakit manifest); pass --backbone and --weights, and --clip-len/--fps "
                "as used for its training features"
            )
        transform = backbone_class(backbone).default_weights().transform
        options = transform.decode_options(fps=fps, folder_fps=folder_fps or DecodeOptions.folder_fps)
        return backbone, clip_len or transform.clip_len, options
    recorded = with_legacy_settings(recorded)
    stale = backbone_class(recorded["backbone"]).stale_features(recorded)
    if stale:
        raise ConfigError(
            f"{folder}: trained on {stale}, which this aqakit computes; re-extract the training videos "
            "(aqakit extract ... --force) and train again to score new videos"
        )
    asked = {"backbone": backbone, "clip_len": clip_len, "fps": fps}
    for key, value in asked.items():
        if value is not None and value != recorded.get(key):
            raise ConfigError(
                f"{folder}: its training features used {key}={recorded.get(key)!r}; --{key.replace('_', '-')} {value} "
                "would give features the model has never seen"
            )
    options = DecodeOptions(
        fps=recorded.get("fps"), size=recorded.get("crop_size", 224), short_side=recorded.get("short_side"),
        upright=recorded["upright"], folder_fps=folder_fps or recorded["folder_fps"], frames=recorded["frames_per_video"],
    )
    return recorded["backbone"], int(recorded["clip_len"]), options


def score_video(
    video: Path,
    checkpoint: Path,
    weights: Path | None,
    *,
    backbone: str | None = None,
    clip_len: int | None = None,
    fps: float | None = None,
    folder_fps: float | None = None,
    batch_size: int = 8,
    device: str | None = None,
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT,
) -> ScoreReport:
    """Extract ``video``'s features, score them with ``checkpoint`` and explain the prediction.

    Args:
        video: a video file or a frame folder (one image per frame).
        weights: the backbone's weights file (never stored in checkpoints, never downloaded).
        backbone: the backbone's name, only for checkpoints that do not record their extraction.
        clip_len: frames per clip, likewise only for such checkpoints.
        fps: the frame rate clips are sampled at, likewise only for such checkpoints.
        folder_fps: the frame rate of a frame folder ``video`` (default: as recorded, else 25).
        decode_timeout: seconds the decoder may go without decoding a frame (:mod:`aqakit.video.isolated`).

    Raises:
        ConfigError: no weights, other weights than the training features were made with, or
            settings that contradict the checkpoint; DataError: the video cannot be decoded or its
            features do not fit the model.
    """
    folder = find_checkpoint(checkpoint)
    model, meta = load_checkpoint(folder)
    if model.needs_exemplars:
        raise ConfigError(
            f"{folder}: {meta['model']} scores a video against exemplars from its training videos, which scoring one "
            "video does not do yet; extract its features (aqakit extract) and score the folder with aqakit predict"
        )
    recorded = meta["info"].get("features")
    name, clip_len, options = extraction_plan(recorded, folder, backbone, clip_len, fps, folder_fps)
    if weights is None:
        raise ConfigError(f"scoring needs the {name} weights the features were extracted with: pass --weights FILE")
    encoder = load_backbone(name, weights, device)
    if recorded is not None and recorded.get("weights_sha256") not in (None, encoder.weights_sha256):
        raise ConfigError(
            f"{weights}: not the weights the training features were extracted with "
            f"({recorded.get('weights_file')}, sha256 {recorded['weights_sha256'][:12]}...)"
        )
    if encoder.feature_dim != model.in_dim:
        raise DataError(f"{name} features have dimension {encoder.feature_dim}, the model at {folder} expects {model.in_dim}")
    extracted = extract_video(video, encoder, clip_len, options, batch_size, max_thumbnails=MAX_THUMBNAILS,
                              decode_timeout=decode_timeout)
    features = torch.from_numpy(extracted.features)  # (T, D)
    with torch.no_grad():
        prediction = model(features.unsqueeze(0))
    n_clips = features.shape[0]
    views = view_parts(prediction.parts, n_clips)
    influence = clip_influence(model, features)
    if influence.size:
        views.append(PartView(INFLUENCE_NAME, "timeline", influence))
    return ScoreReport(
        video=str(video), score=float(prediction.score[0]), model=meta["model"], checkpoint=str(folder),
        score_range=(model.score_scale.lo, model.score_scale.hi),
        extraction=recorded or extraction_settings(encoder, clip_len, options),
        parts=views, n_clips=n_clips,
        clip_seconds=extracted.clip_seconds,
        thumbnails=extracted.thumbnails,
    )
