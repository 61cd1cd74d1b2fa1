"""Shared fixtures. Real data comes from $AQAKIT_DATA (default ../shared/data) and is never copied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("AQAKIT_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))
FISV = DATA / "fisv"


@pytest.fixture(scope="session")
def fisv_root() -> Path:
    """The real Fis-V folder, or a skip with the reason when it is absent."""
    if not (FISV / "train.txt").is_file() or not (FISV / "features").is_dir():
        pytest.skip(f"Fis-V data not found at {FISV} (set AQAKIT_DATA to the shared data folder)")
    return FISV


def run_cli(monkeypatch, capsys, *args):
    """Run ``aqakit ARGS``; returns (exit status, stdout, stderr)."""
    import sys

    from aqakit.cli import main

    monkeypatch.setattr(sys, "argv", ["aqakit", *map(str, args)])
    status = 0
    try:
        main()
    except SystemExit as exc:
        status = exc.code or 0
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def recorded_splits(monkeypatch) -> list[str]:
    """The splits the synthetic benchmark is asked to load, in order (to show what a run reads)."""
    from aqakit.data.benchmarks import SyntheticBenchmark

    read_splits: list[str] = []
    load = SyntheticBenchmark.load

    def recording_load(self, root, split):
        read_splits.append(split)
        return load(self, root, split)

    monkeypatch.setattr(SyntheticBenchmark, "load", recording_load)
    return read_splits


def padded_batch(lengths: list[int], dim: int, pad_value: float = 0.0):
    """Random features (B, max T, D) and their mask (B, max T) for videos of ``lengths`` clips."""
    import torch

    clips = max(lengths)
    features = torch.randn(len(lengths), clips, dim)
    mask = torch.arange(clips).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    features[~mask] = pad_value
    return features, mask


def exemplars_for(n_queries: int, dim: int = 8, per_query: int = 3):
    """The same Exemplars at every call: lengths 4, 1 and 7 (padded to 7 with a large value), each
    query paired with all three."""
    import torch

    from aqakit.data.exemplars import Exemplars

    features = torch.randn(3, 7, dim, generator=torch.Generator().manual_seed(1))
    mask = torch.arange(7)[None, :] < torch.tensor([4, 1, 7])[:, None]
    features[~mask] = 50.0
    index = torch.arange(per_query).repeat(n_queries, 1)  # (B, M)
    score = torch.tensor([11.0, 20.0, 28.0]).repeat(n_queries, 1)
    return Exemplars(features, mask, index, score, torch.full_like(score, 2.0), torch.full((n_queries,), 3.0))


def scoring_exemplars(model, n_queries: int, dim: int = 8):
    """``exemplars_for`` when ``model`` is a pair model (it needs them to score), else None."""
    return exemplars_for(n_queries, dim) if model.needs_exemplars else None


def random_videos(n_videos: int, dim: int, max_clips: int = 9, seed: int = 0):
    """A VideoSet of ``n_videos`` with 1..max_clips random clips each and scores 10..30 that rise with feature 0;
    extras a degree of difficulty and a dive number of two values, as diving sets have."""
    import numpy as np

    from aqakit.data.videoset import VideoSet

    rng = np.random.default_rng(seed)
    features = [rng.normal(size=(int(rng.integers(1, max_clips + 1)), dim)).astype(np.float32) for _ in range(n_videos)]
    signal = np.array([f[:, 0].mean() for f in features])
    scores = 10.0 + 20.0 * (signal - signal.min()) / (np.ptp(signal) or 1.0)
    extras = {"difficulty": rng.uniform(1.5, 3.5, size=n_videos), "dive_number": np.arange(n_videos) % 2}
    return VideoSet([f"v{i}" for i in range(n_videos)], features, scores, source="random videos", extras=extras)


def learnable_batch(min_clips: int, max_clips: int, n_videos: int = 16, dim: int = 8) -> dict:
    """A padded batch whose scores (10..30) are an affine map of the mean of feature 0 over real clips."""
    import torch

    lengths = [int(n) for n in torch.randint(min_clips, max_clips + 1, (n_videos,))]
    features, mask = padded_batch(lengths, dim)
    signal = (features[..., 0] * mask).sum(1) / mask.sum(1)
    scores = 10.0 + 20.0 * (signal - signal.min()) / (signal.max() - signal.min())
    return {"features": features, "mask": mask, "score": scores}


def overfit(model, batch: dict, steps: int, lr: float = 3e-3) -> tuple[float, float]:
    """Train ``model`` on one batch with Adam; returns its eval-mode normalised MSE before and after."""
    import torch

    def eval_mse() -> float:
        model.eval()
        with torch.no_grad():
            prediction = model(batch["features"], batch["mask"])
            return float(((prediction.normalised_score - model.normalised_target(batch)) ** 2).mean())

    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    before = eval_mse()
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        sum(model.loss(model(batch["features"], batch["mask"]), batch).values()).backward()
        optimiser.step()
    return before, eval_mse()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """Random I3D weights in the Flax .npz layout (a stand-in for the Kinetics file)."""
    from videos import write_random_i3d_weights

    return write_random_i3d_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def backbone(weights_file):
    """The I3D backbone on those random weights, on the CPU."""
    from aqakit.video.registry import load_backbone

    return load_backbone("i3d", weights_file, "cpu")
