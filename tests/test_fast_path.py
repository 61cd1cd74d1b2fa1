"""The fast path is the correct path: batched evaluation, bf16 autocast, torch.compile."""

import os

import numpy as np
import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.data.videoset import VideoSet
from aqakit.models import list_models
from aqakit.train import precision
from aqakit.data.exemplars import ExemplarPool
from aqakit.train.config import build_config
from aqakit.train.evaluate import predict_videos
from aqakit.train.runner import train_run
from conftest import scoring_exemplars
from test_model_contract import tiny_model

TINY_RUN = {
    "benchmark_args": {"n_train": 48, "n_test": 24, "dim": 16},
    "model.args": {"hidden_dim": 16, "dropout": 0.0},
    "train.epochs": 3,
    "train.batch_size": 16,
    "train.crop_len": 24,
}


@pytest.mark.parametrize("name", list_models())
def test_batched_evaluation_equals_one_video_at_a_time(name):
    """Length-grouped padded batches with masks score every video as it scores alone."""
    rng = np.random.default_rng(0)
    lengths = [1, 2, 40, 7, 3, 25, 1, 13, 60, 9, 4, 31]
    videos = VideoSet(
        ids=[f"v{i}" for i in range(len(lengths))],
        features=[rng.normal(size=(n, 8)).astype(np.float32) for n in lengths],
        scores=rng.uniform(10, 30, len(lengths)),
    )
    torch.manual_seed(0)
    model = tiny_model(name, score_scale=ScoreScale(10.0, 30.0))
    model.train()  # a few steps so BatchNorm's running statistics are not the identity
    for _ in range(3):
        features = torch.randn(4, 10, 8)
        model(features, exemplars=scoring_exemplars(model, 4))
    exemplars = (ExemplarPool(videos), 0) if model.needs_exemplars else None  # held-out videos scored against the set
    batched = predict_videos(model, videos, batch_size=5, exemplars=exemplars)
    one_by_one = predict_videos(model, videos, batch_size=1, exemplars=exemplars)
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-5 * 20)


def test_auto_precision_takes_bf16_only_where_it_is_native(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto", "cpu") == "32-true"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto", "cpu") == "bf16-mixed"
    assert precision.resolve_precision("32-true", "cpu") == "32-true"


def test_the_precision_line_says_what_auto_chose_and_why(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    line = precision.describe_precision("auto", "cpu")
    assert line.startswith("precision bf16-mixed (train.precision auto: this CPU has native bf16")
    assert "--set train.precision=32-true" in line
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.describe_precision("auto", "cpu") == "precision 32-true (train.precision auto: this CPU has no native bf16)"
    assert precision.describe_precision("bf16-mixed", "cpu") == "precision bf16-mixed (train.precision)"


@pytest.mark.parametrize("name", ["gdlt", "cofinal"])
def test_bf16_autocast_stays_close_to_float32(tmp_path, name):
    """A tiny run in bf16-mixed ends within a small tolerance of the same run in float32."""
    runs = {}
    for mode in ("32-true", "bf16-mixed"):
        config = build_config(name, "synthetic", {**TINY_RUN, "train.precision": mode})
        runs[mode] = train_run(config, tmp_path / mode, [0])["per_seed"][0]
    assert runs["bf16-mixed"]["precision"] == "bf16-mixed" and runs["32-true"]["precision"] == "32-true"
    fp32, bf16 = runs["32-true"]["test"], runs["bf16-mixed"]["test"]
    assert bf16["spearman"] == pytest.approx(fp32["spearman"], abs=0.05)
    assert bf16["mae"] == pytest.approx(fp32["mae"], rel=0.05)


@pytest.mark.slow
@pytest.mark.skipif(
    not torch.cuda.is_available() and os.environ.get("AQAKIT_TEST_COMPILE") != "1",
    reason="torch.compile's inductor build takes minutes on a small CPU; set AQAKIT_TEST_COMPILE=1 to run it",
)
def test_compiled_training_runs_and_matches_eager(tmp_path):
    """train.compile: true trains to the same result as eager mode (up to float tolerance)."""
    results = {}
    for compiled in (False, True):
        config = build_config("gdlt", "synthetic", {**TINY_RUN, "train.epochs": 1, "train.compile": compiled})
        results[compiled] = train_run(config, tmp_path / str(compiled), [0])["per_seed"][0]["test"]
    assert results[True]["spearman"] == pytest.approx(results[False]["spearman"], abs=1e-4)
    assert results[True]["mae"] == pytest.approx(results[False]["mae"], rel=1e-4)
