"""Score one video with a trained checkpoint (or every seed of a run): extract its features the way
the training features were made, predict, and collect everything a report shows (a
:class:`~aqakit.explain.ScoreReport`); or do the same for a feature file that is already extracted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqakit.data.exemplars import Exemplars, ExemplarPool, held_out_batches
from aqakit.data.features import load_feature_file
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError
from aqakit.explain.parts import clip_influence, grade_view, view_parts
from aqakit.explain.report import MAX_THUMBNAILS, ScoreReport
from aqakit.models.base import AQAModel, Prediction
from aqakit.models.loading import find_checkpoints, load_checkpoint
from aqakit.pipeline.evaluate import training_exemplars
from aqakit.video.decode import DecodeOptions
from aqakit.video.extract import extract_video, extraction_settings, video_id
from aqakit.video.foreground import ClipMasker, foreground_settings
from aqakit.video.isolated import DEFAULT_DECODE_TIMEOUT
from aqakit.video.manifest import with_legacy_settings
from aqakit.video.masks import read_masks
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


@dataclass
class SeedModels:
    """Every finished seed of a run: its model, checkpoint description and folder, and for a pair
    model (TPT, FineCausal) the pool of training videos and the seed its exemplars are drawn with."""

    models: list[AQAModel]
    metas: list[dict[str, Any]]
    folders: list[Path]
    exemplar_pools: list[tuple[ExemplarPool, int] | None]


def load_seed_models(checkpoint: Path) -> SeedModels:
    """The models of every finished seed of a run (one for a seed or checkpoint folder); a pair
    model's training split is read for its exemplars (:func:`~aqakit.pipeline.evaluate.training_exemplars`).

    Raises:
        RunDirectoryError: no checkpoint; ConfigError / DataError: a pair model whose training data
            cannot be found or read.
    """
    folders = find_checkpoints(checkpoint)
    loaded = [load_checkpoint(folder) for folder in folders]
    models, metas = [model for model, _ in loaded], [meta for _, meta in loaded]
    pools = [training_exemplars(model, meta, folder) for model, meta, folder in zip(models, metas, folders)]
    return SeedModels(models, metas, folders, pools)


def predict_one(model: AQAModel, features: torch.Tensor, video_id: str,
                pool: tuple[ExemplarPool, int] | None) -> tuple[Prediction, Exemplars | None]:
    """One input's prediction (features (T, D)) and, for a pair model, the exemplars it was scored
    against: drawn from the training pool as ``aqakit predict`` draws them for a video of that id."""
    if pool is None:
        return model(features.unsqueeze(0)), None
    exemplar_pool, seed = pool
    one = VideoSet([video_id], [features.numpy()], np.zeros(1), source=video_id)
    batch = next(iter(held_out_batches(one, 1, (exemplar_pool, model.config.n_exemplars, seed))))
    exemplars = Exemplars.from_batch(batch)
    return model(batch["features"], batch["mask"], exemplars), exemplars


def explain(
    features: torch.Tensor, seeds: SeedModels, video: str, extraction: dict[str, Any],
    clip_seconds: list[float] | None = None, thumbnails: dict[int, np.ndarray] | None = None,
) -> ScoreReport:
    """Score one input's features (T, D) with every seed's model and explain the first model's prediction."""
    video_id = Path(video).stem
    with torch.no_grad():
        scored = [predict_one(model, features, video_id, pool) for model, pool in zip(seeds.models, seeds.exemplar_pools)]
    first, (prediction, exemplars) = seeds.models[0], scored[0]
    folders, metas = seeds.folders, seeds.metas
    training_scores = metas[0]["info"].get("training_scores")
    return ScoreReport(
        video=video, seed_scores=[float(p.score[0]) for p, _ in scored], model=metas[0]["model"],
        checkpoint=str(folders[0].parent.parent if len(folders) > 1 else folders[0]),
        score_range=(first.score_scale.lo, first.score_scale.hi), extraction=extraction,
        parts=view_parts(first, prediction), n_clips=features.shape[0], grade=grade_view(first, prediction),
        influence=clip_influence(first, features, exemplars=exemplars),
        training_scores=None if training_scores is None else np.asarray(training_scores, float),
        clip_seconds=clip_seconds, thumbnails=thumbnails or {},
    )


def score_features(path: Path, checkpoint: Path) -> ScoreReport:
    """Score one feature file (``.npy``, (T, D)) with ``checkpoint`` (every finished seed of a run)
    and explain it as :func:`score_video` does a video, without thumbnails or clip times.

    Raises:
        DataError: the file is unreadable or its dimension is not the model's.
    """
    seeds = load_seed_models(checkpoint)
    features = torch.from_numpy(load_feature_file(Path(path), expected_dim=seeds.models[0].in_dim))  # (T, D)
    extraction = {"features": "read from the file as they are", "feature_dim": seeds.models[0].in_dim}
    return explain(features, seeds, str(path), extraction)


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
    masks: Path | None = None,
) -> ScoreReport:
    """Extract ``video``'s features, score them with ``checkpoint`` and explain the prediction.

    A run folder scores with every finished seed's model (the report shows their spread) and
    explains the first seed's.

    Args:
        video: a video file or a frame folder (one image per frame).
        weights: the backbone's weights file (never stored in checkpoints, never downloaded).
        backbone: the backbone's name, only for checkpoints that do not record their extraction.
        clip_len: frames per clip, likewise only for such checkpoints.
        fps: the frame rate clips are sampled at, likewise only for such checkpoints.
        folder_fps: the frame rate of a frame folder ``video`` (default: as recorded, else 25).
        decode_timeout: seconds the decoder may go without decoding a frame (:mod:`aqakit.video.isolated`).
        masks: for a model of [whole frame | foreground] features (FineCausal): the video's person
            masks (:func:`~aqakit.video.masks.read_masks`: an ``aqakit masks`` folder, or a folder of
            PNG masks), with which its foreground stream is extracted beside the whole-frame one.

    Raises:
        ConfigError: no weights, other weights than the training features were made with, settings
            that contradict the checkpoint, masks missing for a two-stream model or given to another;
            DataError: the video cannot be decoded, its features do not fit the model, or its masks
            are not its frames' or show no person.
    """
    seeds = load_seed_models(checkpoint)
    folder, model, meta = seeds.folders[0], seeds.models[0], seeds.metas[0]
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
    two_streams = model.in_dim == 2 * encoder.feature_dim
    if two_streams and masks is None:
        raise ConfigError(f"{folder}: the model reads [whole frame | foreground] features; pass --masks MASKS (the "
                          "video's person masks: aqakit masks VIDEO --out MASKS, or a folder of PNG masks)")
    if masks is not None and not two_streams:
        raise ConfigError(f"--masks {masks}: the model at {folder} reads whole-frame features only, not a foreground stream")
    if encoder.feature_dim * (2 if two_streams else 1) != model.in_dim:
        raise DataError(f"{name} features have dimension {encoder.feature_dim}, the model at {folder} expects {model.in_dim}")
    extracted = extract_video(video, encoder, clip_len, options, batch_size, max_thumbnails=MAX_THUMBNAILS,
                              decode_timeout=decode_timeout)
    extraction = dict(recorded or extraction_settings(encoder, clip_len, options))
    features = extracted.features
    if masks is not None:
        masker = ClipMasker(read_masks(masks, video_id(Path(video)), options), str(video))
        foreground = extract_video(video, encoder, clip_len, options, batch_size, decode_timeout=decode_timeout,
                                   masker=masker)
        features = np.concatenate([features, foreground.features], axis=1)  # (T, 2D): [O | F]
        extraction["foreground"] = foreground_settings(masks)
    return explain(torch.from_numpy(features), seeds, str(video), extraction,
                   extracted.clip_seconds, extracted.thumbnails)
