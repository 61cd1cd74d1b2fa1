"""The ridge floor: closed-form fit, penalty by k-fold CV on training data only, trained by `aqakit train`."""

import json

import numpy as np
import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError
from aqakit.models import create_model
from aqakit.models.loading import load_checkpoint, save_checkpoint
from aqakit.train.config import build_config
from aqakit.train.evaluate import predict_videos
from aqakit.train.runner import train_run
from conftest import padded_batch, random_videos

SCALE = ScoreScale(10.0, 30.0)


def linear_videos(n_videos, dim, noise, seed=0):
    """Videos whose score is a fixed linear function of their mean clip, plus judge noise."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(99).normal(size=dim)
    features = [rng.normal(size=(int(rng.integers(1, 12)), dim)).astype(np.float32) for _ in range(n_videos)]
    signal = np.array([f.mean(0) @ direction for f in features])
    scores = 20.0 + 3.0 * signal + noise * rng.normal(size=n_videos)
    return VideoSet([f"v{i}" for i in range(n_videos)], features, scores)


def fitted(videos, **hparams):
    model = create_model("ridge", in_dim=videos.feature_dim, score_scale=ScoreScale(videos.scores.min(), videos.scores.max()), **hparams)
    return model, model.fit_closed_form(videos)


def test_a_planted_linear_score_is_recovered_on_new_videos():
    model, _ = fitted(linear_videos(200, 10, noise=0.1))
    test = linear_videos(100, 10, noise=0.0, seed=1)
    predicted = predict_videos(model, test)
    assert np.corrcoef(predicted, test.scores)[0, 1] > 0.99


def test_the_fit_is_the_closed_form_ridge_solution_at_the_chosen_penalty():
    videos = linear_videos(60, 6, noise=1.0)
    model, fit = fitted(videos)
    x = np.stack([f.mean(0) for f in videos.features]).astype(np.float64)
    z = (x - x.mean(0)) / x.std(0)
    y = model.score_scale.normalise(torch.from_numpy(videos.scores)).double().numpy()
    coef = np.linalg.solve(z.T @ z + fit["alpha"] * np.eye(6), z.T @ (y - y.mean()))
    np.testing.assert_allclose(model.coef.numpy(), coef, rtol=1e-4, atol=1e-7)
    assert float(model.intercept) == pytest.approx(y.mean())


def test_cross_validation_penalises_more_when_the_scores_are_noise():
    _, clean = fitted(linear_videos(120, 20, noise=0.05))
    rng = np.random.default_rng(3)
    noise = linear_videos(120, 20, noise=0.0)
    noise.scores = rng.normal(size=120)  # unrelated to the features
    _, noisy = fitted(noise)
    assert noisy["alpha"] > 100 * clean["alpha"]
    assert len(clean["cv"]) == 17 and clean["cv_folds"] == 5


def test_spearman_cv_metric_and_pooling_choices():
    videos = linear_videos(80, 4, noise=0.5)
    model, fit = fitted(videos, pooling=["mean", "max", "std"], cv_metric="spearman")
    assert model.coef.shape == (12,) and set(fit["cv"][0]) == {"alpha", "spearman"}
    assert np.corrcoef(predict_videos(model, linear_videos(50, 4, noise=0.0, seed=2)), linear_videos(50, 4, 0.0, 2).scores)[0, 1] > 0.9


def test_clip_scores_average_to_the_score():
    model, _ = fitted(random_videos(30, 5))
    features, mask = padded_batch([4, 1, 7], 5, pad_value=9.0)
    prediction = model(features, mask)
    clip_scores = prediction.parts["clip_scores"]
    torch.testing.assert_close(clip_scores.nanmean(dim=1), prediction.score, atol=1e-4, rtol=0)
    assert torch.isnan(clip_scores[1, 1:]).all()


def test_tiny_training_sets_take_the_middle_penalty_and_one_clip_videos_work():
    videos = VideoSet(["a", "b", "c"], [np.ones((1, 3), np.float32) * k for k in (0, 1, 2)], np.array([1.0, 2.0, 3.0]))
    model, fit = fitted(videos)
    assert fit["cv_folds"] == 0 and fit["alpha"] == model.alphas[len(model.alphas) // 2]
    assert np.all(np.diff(predict_videos(model, videos)) > 0)


def test_an_unfitted_model_and_bad_settings_are_clear_errors():
    model = create_model("ridge", in_dim=4, score_scale=SCALE)
    with pytest.raises(ConfigError, match="not fitted"):
        model(torch.randn(1, 2, 4))
    for bad, message in [({"pooling": ["median"]}, "pooling"), ({"alphas": [0.0]}, "alphas"),
                         ({"cv_folds": 1}, "cv_folds"), ({"cv_metric": "r2"}, "cv_metric")]:
        with pytest.raises(ConfigError, match=message):
            create_model("ridge", in_dim=4, score_scale=SCALE, **bad)


def test_a_checkpoint_round_trip_keeps_every_prediction(tmp_path):
    videos = random_videos(25, 6)
    model, _ = fitted(videos, pooling=["mean", "std"])
    save_checkpoint(model, tmp_path / "ckpt")
    loaded, _ = load_checkpoint(tmp_path / "ckpt")
    np.testing.assert_array_equal(predict_videos(loaded, videos), predict_videos(model, videos))


def test_aqakit_train_fits_ridge_on_each_seeds_training_part(tmp_path):
    config = build_config("ridge", "synthetic", {
        "benchmark_args": {"n_train": 60, "n_test": 30, "dim": 8}, "train.select": "best-val"})
    summary = train_run(config, tmp_path / "run", [0, 1])
    seeds = summary["per_seed"]
    assert [s["selected_epoch"] for s in seeds] == [0, 0] and summary["epochs"] == 1
    assert all(s["closed_form_fit"]["alpha"] > 0 for s in seeds)
    assert seeds[0]["test"]["spearman"] != seeds[1]["test"]["spearman"]  # other validation carve, other fit
    rows = (tmp_path / "run" / "seed-0" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and "val_spearman" in rows[0]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["model"] == "ridge"


def test_ridge_refuses_epochs_and_ensembles():
    with pytest.raises(ConfigError, match="closed form"):
        build_config("ridge", "synthetic", {"train.epochs": 5})
    with pytest.raises(ConfigError, match="closed form"):
        build_config("ridge", "synthetic", {"train.ensemble": True})
