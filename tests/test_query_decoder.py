"""Tests of the interpretable long-term query decoder (Dong et al., BMVC 2024) as aqakit implements it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import Prediction, create_model, list_models
from aqakit.models.query_decoder import QueryDecoder, attention_kl
from aqakit.train.config import OptimConfig, build_config
from aqakit.train.task import AQATask
from conftest import learnable_batch, overfit, padded_batch

SCALE = ScoreScale(10.0, 30.0)
TINY = dict(width=16, n_heads=2, n_queries=5)


def tiny_decoder(in_dim: int = 8, **overrides) -> QueryDecoder:
    model = create_model("query-decoder", in_dim=in_dim, score_scale=SCALE, **{**TINY, **overrides})
    assert isinstance(model, QueryDecoder)
    return model


def test_registered_rebuildable_and_projects_only_other_dimensions() -> None:
    torch.manual_seed(0)
    assert "query-decoder" in list_models()
    model = tiny_decoder()
    rebuilt = create_model("query-decoder", in_dim=8, score_scale=SCALE, **model.hparams)
    rebuilt.load_state_dict(model.state_dict())  # same architecture, strict
    assert isinstance(model.input_projection, nn.Linear) and model.input_projection.out_features == 16
    assert isinstance(tiny_decoder(in_dim=16).input_projection, nn.Identity)
    assert len(model.layers) == 2 and model.layers[0].self_attention.num_heads == 2
    assert model.queries.shape == (5, 16)
    assert [m.out_features for m in model.weight_head if isinstance(m, nn.Linear)] == [8, 4, 1]


def test_query_init_variance_sets_the_spread_of_the_queries() -> None:
    torch.manual_seed(0)
    wide = create_model("query-decoder", in_dim=8, score_scale=SCALE, width=64, n_heads=4, n_queries=200,
                        query_init_variance=5.0)  # fmt: skip
    assert abs(float(wide.queries.detach().var()) - 5.0) < 0.2  # 12800 draws: the variance, not the std, is 5


@pytest.mark.parametrize("lengths, n_queries", [([7, 3, 5], 5), ([1, 1], 4), ([2, 12, 9, 1], 3)])
def test_shapes_weights_and_masks_with_variable_lengths(lengths: list[int], n_queries: int) -> None:
    torch.manual_seed(0)
    model = tiny_decoder(n_queries=n_queries)
    features, mask = padded_batch(lengths, 8)
    batch, clips = mask.shape
    for mode in (model.train, model.eval):
        mode()
        prediction = model(features, mask)
        assert isinstance(prediction, Prediction)
        parts = prediction.parts
        weights, scores = parts["query_weights"], parts["query_scores"]
        assert weights.shape == scores.shape == (batch, n_queries)
        assert torch.all(weights > 0)
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))
        torch.testing.assert_close(prediction.normalised_score, (weights * scores).sum(dim=1))
        torch.testing.assert_close(prediction.score, SCALE.denormalise(prediction.normalised_score))
        assert parts["cross_attention"].shape == (batch, n_queries, clips)
        assert parts["cross_attention_layers"].shape == (batch, 2, n_queries, clips)
        torch.testing.assert_close(parts["cross_attention_layers"][:, -1], parts["cross_attention"])
        assert parts["self_similarity"].shape == (batch, n_queries, n_queries)
        assert parts["attention_kl"].shape == (batch,)
    # evaluation: attention rows are distributions over the real clips only
    padded = ~mask[:, None, None, :].expand_as(parts["cross_attention_layers"])
    assert torch.all(parts["cross_attention_layers"][padded] == 0)
    torch.testing.assert_close(parts["cross_attention_layers"].sum(-1), torch.ones(batch, 2, n_queries))


def test_padded_clips_change_no_part() -> None:
    torch.manual_seed(0)
    model = tiny_decoder().eval()
    features, mask = padded_batch([4, 11], 8, pad_value=1e4)
    alone = model(features[:1, :4], mask[:1, :4])
    batched = model(features, mask)
    for name in ("query_weights", "query_scores", "self_similarity", "attention_kl"):
        torch.testing.assert_close(batched.parts[name][:1], alone.parts[name], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.parts["cross_attention"][:1, :, :4], alone.parts["cross_attention"])


def test_attention_kl_matches_a_hand_computation() -> None:
    # A_S = I (2x2): Gram I, rows softmax([1, 0]) = [p, 1 - p], p = e / (1 + e).
    # A_C = [[1, 0], [1, 0]]: Gram all ones, rows uniform [1/2, 1/2].
    self_out = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    cross_out = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    p = math.e / (1 + math.e)
    self_cross = 2 * (p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p)))  # two equal rows, KL(L_S || L_C)
    cross_self = 2 * (0.5 * math.log(0.5 / p) + 0.5 * math.log(0.5 / (1 - p)))  # KL(L_C || L_S)
    assert abs(self_cross - 0.221886) < 1e-5 and abs(cross_self - 0.240229) < 1e-5
    got = attention_kl(self_out, cross_out, gram_scale="none")
    assert got.shape == (1,)
    assert abs(float(got) - self_cross) < 1e-6
    assert abs(float(attention_kl(self_out, cross_out, "none", "cross||self")) - cross_self) < 1e-6
    # gram_scale "dim" divides A A^T by d = 2: rows softmax([1/2, 0])
    q = math.exp(0.5) / (1 + math.exp(0.5))
    by_dim = 2 * (q * math.log(2 * q) + (1 - q) * math.log(2 * (1 - q)))
    assert abs(float(attention_kl(self_out, cross_out, "dim")) - by_dim) < 1e-6
    assert float(attention_kl(self_out, self_out.clone(), "none")) == pytest.approx(0.0, abs=1e-7)


def test_loss_terms_weights_reduction_and_backprop_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = tiny_decoder(lambda_reg=2.0, lambda_att=3.0).train()
    features, mask = padded_batch([6, 3, 5, 4], 8)
    batch = {"features": features, "mask": mask, "score": torch.tensor([12.0, 18.0, 25.0, 29.0])}
    prediction = model(features, mask)
    losses = model.loss(prediction, batch)
    assert set(losses) == {"mse", "attention"}
    target = SCALE.normalise(batch["score"])
    torch.testing.assert_close(losses["mse"], 2.0 * ((prediction.normalised_score - target) ** 2).mean())
    torch.testing.assert_close(losses["attention"], 3.0 * prediction.parts["attention_kl"].mean())
    model.attention_batch_reduction = "sum"  # the released code sums over videos
    torch.testing.assert_close(model.loss(prediction, batch)["attention"], 3.0 * prediction.parts["attention_kl"].sum())
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_attention_kl_part_sums_the_layers() -> None:
    torch.manual_seed(0)
    model = tiny_decoder(n_layers=3).eval()
    features, mask = padded_batch([6, 3], 8)
    captured: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append(out)) for layer in model.layers]
    prediction = model(features, mask)
    for hook in hooks:
        hook.remove()
    expected = sum(attention_kl(out[1], out[2], "dim") for out in captured)
    assert len(captured) == 3
    torch.testing.assert_close(prediction.parts["attention_kl"], expected)


def test_default_evaluation_is_deterministic_and_resampled_queries_are_not() -> None:
    torch.manual_seed(0)
    features, mask = padded_batch([6, 3], 8)
    model = tiny_decoder().eval()
    torch.testing.assert_close(model(features, mask).score, model(features, mask).score, atol=0, rtol=0)
    legacy = tiny_decoder(legacy_resample_queries=True).eval()
    assert not torch.allclose(legacy(features, mask).score, legacy(features, mask).score)


def test_dropping_the_self_attention_residual_changes_the_output() -> None:
    torch.manual_seed(0)
    features, mask = padded_batch([6, 3], 8)
    model = tiny_decoder().eval()
    legacy = tiny_decoder(legacy_drop_self_attention_residual=True).eval()
    legacy.load_state_dict(model.state_dict())  # same weights, different wiring
    # (a tiny untrained head barely reacts to its input: compare the attention, which reads the queries)
    assert not torch.allclose(model(features, mask).parts["cross_attention"], legacy(features, mask).parts["cross_attention"])
    # in eval the legacy sub-layer returns A_S + A_S: the query itself is lost
    layer, queries = legacy.layers[0], torch.randn(2, 5, 16)
    other = queries + 10.0  # LayerNorm removes a constant shift: same A_S, different input
    memory = torch.randn(2, 4, 16)
    padding = torch.zeros(2, 4, dtype=torch.bool)
    out_a = layer(queries, None, memory, memory, padding)[1]
    out_b = layer(other, None, memory, memory, padding)[1]
    torch.testing.assert_close(out_a, out_b)


def test_prediction_noise_changes_only_the_mse() -> None:
    torch.manual_seed(0)
    features, mask = padded_batch([6, 3, 5], 8)
    batch = {"score": torch.tensor([12.0, 18.0, 25.0])}
    model = tiny_decoder().eval()
    prediction = model(features, mask)
    clean = model.loss(prediction, batch)
    assert model.loss(prediction, batch)["mse"] == clean["mse"]  # no noise by default
    model.legacy_prediction_noise_std = 0.05
    noisy = model.loss(prediction, batch)
    assert noisy["mse"] != clean["mse"]
    torch.testing.assert_close(noisy["attention"], clean["attention"])


@pytest.mark.parametrize("option", [{"query_position": "none"}, {"query_position": "input"}, {"clip_position": True}])
def test_position_options_change_the_computation(option: dict) -> None:
    torch.manual_seed(0)
    features, mask = padded_batch([6, 3], 8)
    model = tiny_decoder().eval()
    variant = tiny_decoder(**option).eval()
    variant.load_state_dict(model.state_dict())
    assert not torch.allclose(model(features, mask).parts["cross_attention"], variant(features, mask).parts["cross_attention"])


@pytest.mark.parametrize(
    "hparams, message",
    [
        ({"width": 16, "n_heads": 3}, "divisible by n_heads"),
        ({"n_queries": 0}, "n_queries"),
        ({"dropout": 1.0}, "dropout"),
        ({"query_init_variance": 0.0}, "query_init_variance"),
        ({"lambda_att": -1.0}, "lambda_att"),
        ({"gram_scale": "sqrt"}, "gram_scale"),
        ({"attention_kl": "symmetric"}, "attention_kl"),
        ({"query_position": "memory"}, "query_position"),
        ({"legacy_resample_queries": "yes"}, "legacy_resample_queries"),
        ({"n_encoder_layers": 1}, "n_encoder_layers"),
    ],
)
def test_bad_hparams_are_config_errors(hparams: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_decoder(**hparams)


def test_presets_follow_the_paper() -> None:
    fisv = build_config("query-decoder", "fisv-tes")
    rg = build_config("query-decoder", "rg-ball-total")
    for config in (fisv, rg):
        args = config.model.args
        assert (args["width"], args["n_heads"], args["n_layers"], args["dropout"]) == (1024, 4, 2, 0.7)
        assert (config.optim.name, config.optim.lr) == ("adam", 1e-4)
    assert (fisv.model.args["n_queries"], fisv.train.batch_size, fisv.train.crop_len) == (136, 32, 136)
    assert (rg.model.args["n_queries"], rg.train.batch_size, rg.train.crop_len) == (68, 48, 68)
    synthetic = build_config("query-decoder", "synthetic")
    assert synthetic.model.args["width"] == 64 and synthetic.train.epochs <= 30


def test_released_per_iteration_lr_decay_is_a_step_scheduler() -> None:
    model = tiny_decoder()
    optim = OptimConfig(name="adam", lr=1e-4, scheduler="step", step_size=400, gamma=0.1, scheduler_interval="step")
    task = AQATask(model, optim, epochs=3, train_batches=[0] * 13, eval_sets={}, seed_dir=None)
    config = task.configure_optimizers()
    scheduler = config["lr_scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    assert isinstance(scheduler["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert scheduler["scheduler"].step_size == 400 and scheduler["scheduler"].gamma == 0.1
    cosine = AQATask(model, OptimConfig(scheduler_interval="step"), 3, [0] * 13, {}, None).configure_optimizers()
    assert cosine["lr_scheduler"]["scheduler"].T_max == 39  # 3 epochs x 13 iterations
    with pytest.raises(ConfigError, match="scheduler_interval"):
        OptimConfig(scheduler_interval="batch").check()


def test_tiny_decoder_overfits_a_tiny_dataset() -> None:
    torch.manual_seed(0)
    before, after = overfit(tiny_decoder(dropout=0.0), learnable_batch(4, 8), steps=60)
    assert after < before / 10, (before, after)
