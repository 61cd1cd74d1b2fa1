"""Tests of ``cofinal-official``: CoFInAl as its released code behaves (GDLT + revert branch + digit ETF head)."""

from __future__ import annotations

import warnings

import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import Prediction, create_model
from aqakit.models.cofinal_official import (
    CoFInAlOfficial,
    decimal_scores,
    decode_label,
    released_anchors,
    split_digits,
)
from conftest import learnable_batch, overfit, padded_batch

SCALE = ScoreScale(10.0, 30.0)
TINY = dict(hidden_dim=16, n_heads=2, digit_hidden_dim=12)


def tiny_model(**overrides) -> CoFInAlOfficial:
    model = create_model("cofinal-official", in_dim=8, score_scale=SCALE, **{**TINY, **overrides})
    assert isinstance(model, CoFInAlOfficial)
    return model


def same_weights(model: CoFInAlOfficial, **overrides) -> CoFInAlOfficial:
    """A model with ``model``'s weights and some settings changed (the flags add no parameters)."""
    other = tiny_model(**overrides)
    other.load_state_dict(model.state_dict())
    return other.eval()


def test_registered_and_rebuildable_from_hparams() -> None:
    torch.manual_seed(0)
    model = tiny_model(anchor_mode=1, legacy_batch_argmax=True)
    assert model.hparams["anchor_mode"] == 1 and model.hparams["n_heads"] == 2
    rebuilt = create_model("cofinal-official", in_dim=8, score_scale=SCALE, **model.hparams)
    rebuilt.load_state_dict(model.state_dict())  # same architecture, strict
    assert rebuilt.legacy_batch_argmax
    assert "digit_etf.vectors" in model.state_dict()  # the fixed ETF travels with checkpoints
    assert all(param is not model.digit_etf.vectors for param in model.parameters())


@pytest.mark.parametrize(
    "mode, coarse, revert",
    [
        (0, [0.0, 1 / 3, 2 / 3, 1.0], [1.0, 2 / 3, 1 / 3, 0.0]),
        (1, [0.25, 0.5, 0.75, 1.0], [1.0, 0.75, 0.5, 0.25]),
        (2, [0.1, 0.2, 0.8, 1.0], [1.0, 1.0, -1.0, -1.0]),
        (3, [-1.0, -0.8, 0.8, 1.0], [1.0, 0.8, -0.8, -1.0]),
    ],
)
def test_anchor_modes_are_the_released_ones(mode: int, coarse: list, revert: list) -> None:
    coarse_anchors, revert_anchors = released_anchors(mode, 4)
    torch.testing.assert_close(coarse_anchors, torch.tensor(coarse))
    torch.testing.assert_close(revert_anchors, torch.tensor(revert))
    model = tiny_model(anchor_mode=mode)
    torch.testing.assert_close(model.grade_anchors, torch.tensor(coarse))
    torch.testing.assert_close(model.revert_anchors, torch.tensor(revert))


def test_digits_round_trip_every_two_decimal_score() -> None:
    """Every score 0.00..100.00 (float32, as batches carry them) / 25 splits into its exact digits."""
    cents = torch.arange(0, 10_001)
    labels = decimal_scores((cents.double() / 100).float()) / 25  # label * 10^4 = 4 * cents exactly
    coarse, digit = split_digits(labels)
    assert digit.dtype == torch.long and digit.min() >= 0 and digit.max() < 100
    assert torch.equal(torch.round(coarse * 100).long(), 4 * cents // 100)
    assert torch.equal(digit, 4 * cents % 100)
    # the released float32 truncation gets some of them one unit low
    legacy_coarse, legacy_digit = split_digits(labels, legacy_float32=True)
    legacy_units = torch.round(legacy_coarse * 100).long() * 100 + legacy_digit
    wrong = legacy_units != 4 * cents
    assert wrong.any() and torch.equal(legacy_units[wrong], 4 * cents[wrong] - 1)


def test_digits_of_arbitrary_labels_truncate_to_four_decimals() -> None:
    torch.manual_seed(0)
    labels = torch.rand(500, dtype=torch.float64) * 6 - 2  # also negative and above 1
    coarse, digit = split_digits(labels)
    assert digit.min() >= 0 and digit.max() < 100
    truncated = coarse + digit / 10_000
    assert torch.all(truncated <= labels + 1e-6) and torch.all(labels < truncated + 1e-4)
    torch.testing.assert_close(coarse * 100, torch.round(coarse * 100))  # two decimals


def test_decimal_scores_recovers_the_label_file_decimals() -> None:
    scores = torch.tensor([28.71, 7.25, 0.1]).float()
    assert scores[0].item() != 28.71  # float32 is 28.7099991
    assert decimal_scores(scores).tolist() == [28.71, 7.25, 0.1]
    wide = torch.tensor([28.123456789], dtype=torch.float64)
    assert decimal_scores(wide).tolist() == [28.123456789]  # float64 is kept as is


def test_each_digit_target_decodes_back_to_its_digit() -> None:
    model = tiny_model()
    vectors = model.digit_etf.vectors  # (100, 100)
    assert vectors.shape == (100, 100)
    logits = model.digit_etf(vectors.T)  # row d: e_d . E
    assert torch.equal(logits.argmax(-1), torch.arange(100))
    # ideal branches plus ideal digit give the label back, truncated to four decimals
    labels = torch.tensor([0.0, 0.2937, 1.1484, 1.712, 0.99999], dtype=torch.float64)
    coarse, digit = split_digits(labels)
    decoded = decode_label(coarse, 1.0 - coarse, model.digit_etf(vectors.T[digit]).argmax(-1))
    torch.testing.assert_close(decoded, torch.tensor([0.0, 0.2937, 1.1484, 1.712, 0.9999], dtype=torch.float64))


def test_decode_formula_on_hand_made_values() -> None:
    coarse = torch.tensor([0.8, -1.0, 1.0, 0.5])
    revert = torch.tensor([0.3, 1.0, -1.0, 0.5])
    digit = torch.tensor([42, 0, 99, 7])
    expected = torch.tensor([0.7542, -0.5, 1.5099, 0.5007])  # (c + 1 - r) / 2 + d / 10^4
    torch.testing.assert_close(decode_label(coarse, revert, digit), expected)


@pytest.mark.parametrize("divisor", [25.0, None])
def test_prediction_is_the_decoded_label_on_the_original_scale(divisor: float | None) -> None:
    torch.manual_seed(0)
    model = tiny_model(score_divisor=divisor).eval()
    features, mask = padded_batch([7, 3, 5], 8)
    prediction = model(features, mask)
    parts = prediction.parts
    assert parts["grade_weights"].shape == parts["revert_weights"].shape == (3, 4)
    assert parts["digit_embedding"].shape == parts["digit_logits"].shape == (3, 100)
    torch.testing.assert_close(parts["digit_embedding"].norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(parts["coarse_score"], parts["grade_weights"] @ model.grade_anchors)
    torch.testing.assert_close(parts["revert_score"], parts["revert_weights"] @ model.revert_anchors)
    assert torch.equal(parts["digit"], parts["digit_logits"].argmax(-1))  # per video
    label = decode_label(parts["coarse_score"], parts["revert_score"], parts["digit"])
    torch.testing.assert_close(parts["label"], label)
    original = label * 25 if divisor else SCALE.denormalise(label)
    torch.testing.assert_close(prediction.score, original)


def test_perfect_branches_have_zero_loss_and_the_targets_are_the_released_ones() -> None:
    model = tiny_model().eval()
    scores = torch.tensor([28.71, 12.5, 17.51])  # labels 1.1484, 0.5, 0.7004
    coarse = torch.tensor([1.14, 0.5, 0.70])
    digit = torch.tensor([84, 0, 4])
    parts = {
        "coarse_score": coarse, "revert_score": 1 - coarse,
        "digit_embedding": model.digit_etf.vectors.T[digit], "query_embeddings": torch.randn(3, 4, 16),
    }  # fmt: skip
    prediction = Prediction(torch.zeros(3), torch.zeros(3), parts)
    terms = model.loss(prediction, {"score": scores})
    assert set(terms) == {"coarse", "revert", "digit", "triplet"}
    for name in ("coarse", "revert", "digit"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-7), name
    shifted = dict(parts, digit_embedding=model.digit_etf.vectors.T[digit + 1])
    assert model.loss(Prediction(torch.zeros(3), torch.zeros(3), shifted), {"score": scores})["digit"] > 0.01


def test_legacy_batch_argmax_adds_one_flat_index_to_every_video() -> None:
    torch.manual_seed(0)
    model = tiny_model().eval()
    legacy = same_weights(model, legacy_batch_argmax=True)
    features, mask = padded_batch([6, 4, 5, 6], 8)
    # put the video holding the batch's largest digit logit last: its flat index is then >= 300
    top_video = int(model(features, mask).parts["digit_logits"].max(-1).values.argmax())
    order = [i for i in range(4) if i != top_video] + [top_video]
    features, mask = features[order], mask[order]
    fixed, released = model(features, mask), legacy(features, mask)
    logits = fixed.parts["digit_logits"]
    assert torch.equal(fixed.parts["digit"], logits.argmax(-1))  # default: per video, < 100
    assert torch.equal(released.parts["digit"], logits.flatten().argmax().expand(4))
    assert torch.all(released.parts["digit"] >= 300)
    torch.testing.assert_close(released.parts["label"] - fixed.parts["label"], (released.parts["digit"] - fixed.parts["digit"]) / 1e4)
    torch.testing.assert_close(fixed.parts["coarse_score"], released.parts["coarse_score"])


def test_legacy_batch_attention_mixes_videos_and_the_default_does_not() -> None:
    torch.manual_seed(0)
    model = tiny_model()
    for _ in range(2):  # move BatchNorm running statistics away from their initial values
        model(*padded_batch([6, 4, 5], 8))
    model.eval()
    legacy = same_weights(model, legacy_batch_attention=True)
    features, mask = padded_batch([6, 4, 5], 8)
    for net, mixes in ((model, False), (legacy, True)):
        batched = net(features, mask).parts["digit_embedding"][:1]
        alone = net(features[:1], mask[:1]).parts["digit_embedding"]
        assert torch.allclose(batched, alone, atol=1e-5) != mixes
    # the two read the same weights differently even for one video
    one = (features[:1], mask[:1])
    assert not torch.allclose(model(*one).parts["digit_embedding"], legacy(*one).parts["digit_embedding"])


def test_legacy_float32_digits_changes_the_digit_target() -> None:
    torch.manual_seed(0)
    model = tiny_model().eval()
    legacy = same_weights(model, legacy_float32_digits=True)
    features, mask = padded_batch([5, 5], 8)
    batch = {"score": torch.tensor([28.71, 10.5])}  # 28.71 / 25 = 1.1484: released float32 says 1.1483
    assert split_digits(torch.tensor([1.1484], dtype=torch.float64), legacy_float32=True)[1].item() == 83
    prediction = model(features, mask)
    fixed_terms, legacy_terms = model.loss(prediction, batch), legacy.loss(prediction, batch)
    assert fixed_terms["digit"] != legacy_terms["digit"]
    torch.testing.assert_close(fixed_terms["coarse"], legacy_terms["coarse"])


def test_score_divisor_picks_the_label_space() -> None:
    released, normalised = tiny_model(), tiny_model(score_divisor=None)
    scores = torch.tensor([10.0, 20.0, 30.0])
    torch.testing.assert_close(released.label_of_scores(scores), torch.tensor([0.4, 0.8, 1.2], dtype=torch.float64))
    torch.testing.assert_close(normalised.label_of_scores(scores), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))


def test_released_divisor_only_for_the_released_data_and_a_warning_when_scores_are_out_of_reach() -> None:
    from aqakit.train.config import build_config

    assert build_config("cofinal-official", "csv").model.args["score_divisor"] is None
    assert build_config("cofinal-official", "fisv-tes").model.args["score_divisor"] == 25.0
    assert build_config("cofinal-official", "rg-ball").model.args["score_divisor"] == 25.0
    with pytest.warns(UserWarning, match=r"only scores in \[-12\.5, 37\.75\] can be predicted, .* \[0, 1000\]"):
        create_model("cofinal-official", in_dim=8, score_scale=ScoreScale(0.0, 1000.0), **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_model("cofinal-official", in_dim=8, score_scale=ScoreScale(0.0, 1000.0), **{**TINY, "score_divisor": None})
        create_model("cofinal-official", in_dim=8, score_scale=ScoreScale(5.0, 30.0), **TINY)


def test_triplet_labels_modes_differ() -> None:
    torch.manual_seed(0)
    model = tiny_model().eval()
    features, mask = padded_batch([5, 6, 4], 8)
    batch = {"score": torch.tensor([12.0, 18.0, 25.0])}
    prediction = model(features, mask)
    per_query = model.loss(prediction, batch)["triplet"]
    model.triplet_labels = "embedding"
    per_embedding = model.loss(prediction, batch)["triplet"]
    assert torch.isfinite(per_embedding) and per_query != per_embedding


def test_loss_backpropagates_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = tiny_model().train()
    features, mask = padded_batch([6, 3, 5, 4], 8)
    batch = {"features": features, "mask": mask, "score": torch.tensor([12.0, 18.0, 25.0, 29.0])}
    terms = model.loss(model(features, mask), batch)
    assert all(value.shape == () and torch.isfinite(value) for value in terms.values())
    sum(terms.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "hparams, message",
    [
        ({"anchor_mode": 4}, "anchor_mode must be 0, 1, 2 or 3"),
        ({"anchor_mode": True}, "anchor_mode"),
        ({"anchor_mode": 3, "n_queries": 5}, "n_queries must be 4"),
        ({"triplet_labels": "grade"}, "triplet_labels"),
        ({"digit_attention_heads": 3}, "divisible by digit_attention_heads"),
        ({"digit_hidden_dim": 0}, "digit_hidden_dim"),
        ({"score_divisor": 0}, "score_divisor"),
        ({"etf_seed": -1}, "etf_seed"),
        ({"legacy_batch_argmax": "yes"}, "legacy_batch_argmax"),
        ({"hidden_dim": 16, "n_heads": 3}, "cofinal-official: hidden_dim .16. must be divisible by n_heads"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_hparams_are_config_errors(hparams: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("cofinal-official", in_dim=8, score_scale=SCALE, **{**TINY, **hparams})


def test_anchor_modes_0_and_1_work_with_other_query_counts() -> None:
    model = tiny_model(anchor_mode=1, n_queries=5).eval()
    assert model(*padded_batch([4, 6], 8)).parts["grade_weights"].shape == (2, 5)


def test_tiny_model_overfits_a_tiny_dataset() -> None:
    torch.manual_seed(0)
    model = tiny_model(dropout=0.0)
    before, after = overfit(model, learnable_batch(4, 8), steps=200)
    assert after < before / 10, (before, after)
