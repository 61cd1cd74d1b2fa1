"""Tests of the GDLT model (Xu et al., CVPR 2022) as aqakit implements it."""

from __future__ import annotations

import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import Prediction, create_model, list_models
from aqakit.models.gdlt import GDLT
from conftest import learnable_batch, overfit, padded_batch

SCALE = ScoreScale(10.0, 30.0)
TINY = dict(hidden_dim=16, n_heads=2)


def tiny_gdlt(**overrides) -> GDLT:
    model = create_model("gdlt", in_dim=8, score_scale=SCALE, **{**TINY, **overrides})
    assert isinstance(model, GDLT)
    return model


def test_registered_and_rebuildable_from_hparams() -> None:
    torch.manual_seed(0)
    assert "gdlt" in list_models()
    model = tiny_gdlt(n_queries=5)
    assert model.hparams["proj_dim"] is None and model.hparams["n_queries"] == 5
    rebuilt = create_model("gdlt", in_dim=8, score_scale=SCALE, **model.hparams)
    rebuilt.load_state_dict(model.state_dict())  # same architecture, strict
    assert model.clip_projection.net[0].out_features == 4  # proj_dim None -> in_dim // 2
    torch.testing.assert_close(model.grade_anchors, torch.linspace(0, 1, 5))


def test_shapes_weights_and_score_range_with_masks() -> None:
    torch.manual_seed(0)
    model = tiny_gdlt()
    features, mask = padded_batch([7, 3, 5], 8)
    for mode in (model.train, model.eval):
        mode()
        prediction = model(features, mask)
        assert isinstance(prediction, Prediction)
        assert prediction.score.shape == prediction.normalised_score.shape == (3,)
        weights = prediction.parts["grade_weights"]
        assert weights.shape == (3, 4)
        assert prediction.parts["query_embeddings"].shape == (3, 4, 16)
        assert torch.all(weights > 0)
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
        assert torch.all((prediction.normalised_score >= 0) & (prediction.normalised_score <= 1))
        torch.testing.assert_close(prediction.score, SCALE.denormalise(prediction.normalised_score))
        torch.testing.assert_close(prediction.normalised_score, weights @ model.grade_anchors)


def test_no_mask_means_all_clips_real() -> None:
    torch.manual_seed(0)
    model = tiny_gdlt().eval()
    features = torch.randn(2, 6, 8)
    all_real = torch.ones(2, 6, dtype=torch.bool)
    torch.testing.assert_close(model(features).score, model(features, all_real).score)


@pytest.mark.parametrize("grad", [False, True])  # no_grad takes torch's fast encoder path in eval
def test_padding_invariance_in_eval(grad: bool) -> None:
    torch.manual_seed(0)
    model = tiny_gdlt()
    for _ in range(3):  # move BatchNorm running statistics away from their initial values
        model(*padded_batch([9, 6, 4], 8))
    model.eval()
    long_video = torch.randn(1, 9, 8)
    short_video = torch.randn(1, 4, 8)
    batch = torch.cat([long_video, torch.cat([short_video, torch.full((1, 5, 8), 50.0)], dim=1)])
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 4:] = False
    with torch.set_grad_enabled(grad):
        alone = model(short_video)
        batched = model(batch, mask)
    torch.testing.assert_close(batched.score[1], alone.score[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        batched.parts["grade_weights"][1], alone.parts["grade_weights"][0], atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(
    "hparams, message",
    [
        ({"n_layers": 3}, "n_layers"),
        ({"hidden_dim": 16, "n_heads": 3}, "divisible by n_heads"),
        ({"n_queries": 1}, "n_queries must be at least 2"),
        ({"dropout": 1.0}, "dropout"),
        ({"proj_dim": 0}, "proj_dim"),
        ({"triplet_margin": -1.0}, "triplet_margin"),
        ({"hidden_dim": "16"}, "hidden_dim"),
    ],
)
def test_bad_hparams_are_config_errors(hparams: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("gdlt", in_dim=8, score_scale=SCALE, **hparams)


def test_loss_terms_finite_and_backpropagate_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = tiny_gdlt().train()
    features, mask = padded_batch([6, 3, 5, 4], 8)
    batch = {"features": features, "mask": mask, "score": torch.tensor([12.0, 18.0, 25.0, 29.0])}
    prediction = model(features, mask)
    losses = model.loss(prediction, batch)
    assert set(losses) == {"mse", "triplet"}
    for value in losses.values():
        assert value.shape == () and torch.isfinite(value)
    target = SCALE.normalise(batch["score"])
    torch.testing.assert_close(losses["mse"], ((prediction.normalised_score - target) ** 2).mean())
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_triplet_weight_scales_the_triplet_term() -> None:
    torch.manual_seed(0)
    model = tiny_gdlt().eval()
    features, mask = padded_batch([6, 3], 8)
    batch = {"score": torch.tensor([12.0, 18.0])}
    prediction = model(features, mask)
    base = model.loss(prediction, batch)
    model.triplet_weight = 2.5
    scaled = model.loss(prediction, batch)
    torch.testing.assert_close(scaled["triplet"], 2.5 * base["triplet"])
    torch.testing.assert_close(scaled["mse"], base["mse"])


def test_transformer_matrices_are_xavier_initialised() -> None:
    torch.manual_seed(0)
    model = tiny_gdlt()
    linear1 = model.encoder.layers[0].linear1.weight  # (48, 16)
    bound = (6 / (linear1.shape[0] + linear1.shape[1])) ** 0.5
    assert linear1.abs().max() <= bound
    assert linear1.abs().max() > 0.9 * bound  # torch's default (kaiming, 1/sqrt(16)) would stay below
    assert model.encoder.layers[0].self_attn.batch_first and model.decoder.layers[0].norm_first is False
    assert len(model.encoder.layers) == 1 and len(model.decoder.layers) == 2


def test_tiny_gdlt_overfits_a_tiny_dataset() -> None:
    torch.manual_seed(0)
    before, after = overfit(tiny_gdlt(dropout=0.0), learnable_batch(4, 8), steps=200)
    assert after < before / 10, (before, after)
