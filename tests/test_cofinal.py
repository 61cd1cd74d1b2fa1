"""Tests of CoFInAl as the paper describes it (Zhou et al., IJCAI 2024)."""

from __future__ import annotations

import math

import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import Prediction, create_model, list_models
from aqakit.models.blocks import masked_mean, masked_softmax
from aqakit.models.cofinal import CoFInAl, GradeScheme, align_features, quality_graph_loss
from aqakit.models.etf import simplex_etf
from conftest import learnable_batch, overfit, padded_batch

SCALE = ScoreScale(10.0, 30.0)
TINY = dict(proj_dim=12, hidden_dim=16, n_procedures=3)
FULL_PARTS = {
    "procedure_attention", "grade_attention", "grade_mask", "grade_logits", "grade_probs", "grade_index",
    "subgrade_logits", "subgrade_probs", "subgrade_index", "fine_feature", "expected_score",
}  # fmt: skip


def tiny_cofinal(**overrides) -> CoFInAl:
    model = create_model("cofinal", in_dim=8, score_scale=SCALE, **{**TINY, **overrides})
    assert isinstance(model, CoFInAl)
    return model


def warmed_up(model: CoFInAl) -> CoFInAl:
    """A few training-mode passes (moves any running statistics), then eval mode."""
    for _ in range(3):
        model(*padded_batch([9, 6, 4], 8))
    return model.eval()


# ---------------------------------------------------------------- registry and checkpoints


def test_registered_and_rebuildable_from_hparams() -> None:
    torch.manual_seed(0)
    assert "cofinal" in list_models()
    model = tiny_cofinal(grade_width=0.2, subgrade_width=0.05, etf_seed=3)
    assert model.scheme.n_grades == 5 and model.scheme.n_subgrades == 4
    assert model.hparams["etf_seed"] == 3 and model.hparams["decode"] == "expected"
    rebuilt = create_model("cofinal", in_dim=8, score_scale=SCALE, **model.hparams)
    rebuilt.load_state_dict(model.state_dict())  # same architecture, strict
    model.eval(), rebuilt.eval()
    features, mask = padded_batch([5, 3], 8)
    torch.testing.assert_close(rebuilt(features, mask).score, model(features, mask).score)


def test_etf_is_a_fixed_seeded_buffer_saved_in_the_state_dict() -> None:
    torch.manual_seed(0)
    model = tiny_cofinal(etf_seed=5)
    etf = model.subgrade_etf.vectors
    assert etf.shape == (16, 10)  # (D_S, G')
    assert "subgrade_etf.vectors" in model.state_dict()
    assert all(param is not etf for param in model.parameters())
    torch.testing.assert_close(etf, simplex_etf(16, 10, seed=5), atol=0, rtol=0)
    torch.manual_seed(1)  # other weights change with the global seed, the frame does not
    torch.testing.assert_close(tiny_cofinal(etf_seed=5).subgrade_etf.vectors, etf, atol=0, rtol=0)


# ---------------------------------------------------------------- shapes, masks, padding


@pytest.mark.parametrize("projection", ["batchnorm", "none"])
@pytest.mark.parametrize("lengths", [[7, 3, 5], [1, 4], [1], [6, 1, 1, 2]])
def test_shapes_probabilities_and_masks(lengths: list[int], projection: str) -> None:
    torch.manual_seed(0)
    model = tiny_cofinal(input_projection=projection)
    features, mask = padded_batch(lengths, 8, pad_value=7.0)
    batch, clips = mask.shape
    # BatchNorm cannot train on a batch holding a single clip (as in GDLT)
    modes = (model.train, model.eval) if projection == "none" or sum(lengths) > 1 else (model.eval,)
    for mode in modes:
        mode()
        prediction = model(features, mask)
        assert isinstance(prediction, Prediction)
        parts = prediction.parts
        assert set(parts) == FULL_PARTS
        assert prediction.score.shape == prediction.normalised_score.shape == (batch,)
        assert parts["procedure_attention"].shape == (batch, 3, clips)
        assert parts["grade_attention"].shape == (batch, 4, 3)
        for name in ("grade_mask", "grade_logits", "grade_probs"):
            assert parts[name].shape == (batch, 4), name
        assert parts["subgrade_probs"].shape == parts["subgrade_logits"].shape == (batch, 10)
        assert parts["fine_feature"].shape == (batch, 16)
        assert parts["grade_index"].shape == parts["subgrade_index"].shape == (batch,)
        assert parts["grade_index"].dtype == parts["subgrade_index"].dtype == torch.long
        for name in ("grade_mask", "grade_probs", "subgrade_probs"):
            torch.testing.assert_close(parts[name].sum(-1), torch.ones(batch), msg=name)
        attention = parts["procedure_attention"]  # each procedure's weights over the clips
        torch.testing.assert_close(attention.sum(-1), torch.ones(batch, 3))
        assert torch.all(attention.masked_select(~mask.unsqueeze(1)) == 0)  # exactly 0 on padding
        assert torch.all(attention.masked_select(mask.unsqueeze(1)) > 0)
        top = model.scheme.couple(3, 9)
        assert torch.all((prediction.normalised_score >= 0) & (prediction.normalised_score <= top))
        torch.testing.assert_close(prediction.normalised_score, parts["expected_score"])
        torch.testing.assert_close(prediction.score, SCALE.denormalise(prediction.normalised_score))


def test_no_mask_means_all_clips_real() -> None:
    torch.manual_seed(0)
    model = warmed_up(tiny_cofinal())
    features = torch.randn(2, 6, 8)
    all_real = torch.ones(2, 6, dtype=torch.bool)
    torch.testing.assert_close(model(features).score, model(features, all_real).score)


@pytest.mark.parametrize(
    "flags", [{}, {"use_tfm": False}, {"use_gpm": False}, {"feature_alignment": 0}, {"input_projection": "none"}]
)
def test_padding_invariance_in_eval(flags: dict) -> None:
    torch.manual_seed(0)
    model = warmed_up(tiny_cofinal(**flags))
    long_video = torch.randn(1, 9, 8)
    short_video = torch.randn(1, 4, 8)
    batch = torch.cat([long_video, torch.cat([short_video, torch.full((1, 5, 8), 50.0)], dim=1)])
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 4:] = False
    alone, batched = model(short_video), model(batch, mask)
    torch.testing.assert_close(batched.score[1], alone.score[0], atol=1e-5, rtol=0)
    for name, value in alone.parts.items():
        if name == "procedure_attention":
            torch.testing.assert_close(batched.parts[name][1, :, :4], value[0], atol=1e-5, rtol=0)
            assert torch.all(batched.parts[name][1, :, 4:] == 0)
        elif name == "grade_attention" and flags.get("use_tfm") is False:  # over clips
            torch.testing.assert_close(batched.parts[name][1, :, :4], value[0], atol=1e-5, rtol=0)
        else:
            torch.testing.assert_close(batched.parts[name][1], value[0], atol=1e-5, rtol=0, msg=name)


def test_masked_helpers() -> None:
    values = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])  # (2, 3, 1)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(masked_mean(values, mask), torch.tensor([[2.0], [4.0]]))
    weights = masked_softmax(torch.zeros(2, 3), mask)
    torch.testing.assert_close(weights, torch.tensor([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]]))


def test_feature_alignment_ranges() -> None:
    features = torch.randn(2, 5, 8) * 4 + 1
    bounds = {0: (0.0, 8.0), 1: (-1.0, 1.0), 2: (0.0, 1.0)}  # mode 0 reaches D_C = 8
    for mode, (low, high) in bounds.items():
        aligned = align_features(features, mode)
        torch.testing.assert_close(aligned.amin(-1), torch.full((2, 5), low), atol=1e-5, rtol=0)
        torch.testing.assert_close(aligned.amax(-1), torch.full((2, 5), high), atol=1e-5, rtol=0)
    assert align_features(features, None) is features
    assert torch.isfinite(align_features(torch.ones(1, 2, 8), 1)).all()  # a constant clip


# ---------------------------------------------------------------- grades and sub-grades


@pytest.mark.parametrize(
    "grade_width, subgrade_width, n_grades, n_subgrades",
    [(0.25, 0.025, 4, 10), (0.2, 0.05, 5, 4), (0.3, 0.07, 4, 5), (0.1, 0.01, 10, 10), (0.5, 0.2, 2, 3)],
)
def test_decomposition_round_trips_every_score(
    grade_width: float, subgrade_width: float, n_grades: int, n_subgrades: int
) -> None:
    scheme = GradeScheme(grade_width, subgrade_width)
    assert (scheme.n_grades, scheme.n_subgrades) == (n_grades, n_subgrades)
    scores = torch.cat([torch.linspace(0, 1, 20001), torch.tensor([1.0, 0.0, 0.5, 1 - 1e-7])])
    grade, subgrade, residual = scheme.decompose(scores)
    assert grade.dtype == subgrade.dtype == torch.long
    assert grade.min() >= 0 and grade.max() == n_grades - 1
    assert subgrade.min() >= 0 and subgrade.max() <= n_subgrades - 1
    assert residual.min() >= -1e-6 and residual.max() <= subgrade_width + 1e-6
    torch.testing.assert_close(scheme.couple(grade, subgrade) + residual, scores, atol=1e-6, rtol=0)
    # the labels are the paper's floors: grade = floor(s / S_C), sub-grade = floor(rest / S_F)
    inside = scores < 1
    torch.testing.assert_close(grade[inside], torch.floor(scores[inside].double() / grade_width).long())
    # the top of the range is the last grade and the last sub-grade, not outside
    top_grade, top_subgrade, _ = scheme.decompose(torch.tensor([1.0]))
    assert top_grade.item() == n_grades - 1
    rest_at_top = 1 - (n_grades - 1) * grade_width
    assert top_subgrade.item() == min(n_subgrades - 1, math.floor(rest_at_top / subgrade_width + 1e-9))


def test_decomposition_clamps_scores_outside_the_training_range() -> None:
    scheme = GradeScheme(0.25, 0.025)
    grade, subgrade, _ = scheme.decompose(torch.tensor([-0.3, 1.4, 0.999]))
    assert grade.tolist() == [0, 3, 3] and subgrade.tolist() == [0, 9, 9]


@pytest.mark.parametrize("placement", ["centres", "range"])
@pytest.mark.parametrize("grade_width, subgrade_width", [(0.25, 0.025), (0.125, 0.025), (0.2, 0.05), (0.5, 0.2)])
def test_two_hot_grade_targets_are_distributions_whose_expectation_is_the_score(
    grade_width: float, subgrade_width: float, placement: str
) -> None:
    scheme = GradeScheme(grade_width, subgrade_width)
    places = scheme.place(torch.arange(scheme.n_grades, dtype=torch.float64), placement)
    scores = torch.cat([torch.linspace(-0.2, 1.2, 1401), places, torch.tensor([0.0, 1.0])]).double()
    targets = scheme.two_hot(scores, placement)
    assert targets.shape == (len(scores), scheme.n_grades) and targets.min() >= 0
    torch.testing.assert_close(targets.sum(1), torch.ones(len(scores), dtype=torch.float64))
    support = targets > 0
    assert support.sum(1).max() <= 2
    pairs = support[support.sum(1) == 2].nonzero()[:, 1].view(-1, 2)  # grades of the two-grade rows
    assert len(pairs) > 0 and torch.all(pairs[:, 1] - pairs[:, 0] == 1)  # neighbours
    expected = scheme.place(targets @ torch.arange(scheme.n_grades, dtype=torch.float64), placement)
    torch.testing.assert_close(expected, scores.clamp(places[0], places[-1]))  # the score, clamped
    at_places = scheme.two_hot(places, placement)
    torch.testing.assert_close(at_places, torch.eye(scheme.n_grades, dtype=torch.float64))  # one-hot there


@pytest.mark.parametrize("grade_width, subgrade_width", [(0.25, 0.025), (0.2, 0.05), (0.3, 0.1)])
def test_grades_sit_at_their_middle_sub_grade_or_span_the_whole_range(
    grade_width: float, subgrade_width: float
) -> None:
    scheme = GradeScheme(grade_width, subgrade_width)
    grades = torch.arange(scheme.n_grades, dtype=torch.float64)
    centres = scheme.place(grades, "centres")
    torch.testing.assert_close(centres, grades * grade_width + (scheme.n_subgrades - 1) / 2 * subgrade_width)
    assert 0.0 < centres[0] and centres[-1] < 1.0  # the ends of the range are out of reach
    torch.testing.assert_close(scheme.place(grades, "range"), torch.linspace(0, 1, scheme.n_grades).double())
    with pytest.raises(ConfigError, match="grade positions must be one of"):
        scheme.two_hot(grades, "ends")


@pytest.mark.parametrize("decode", ["expected", "argmax"])
def test_range_positions_let_the_score_reach_both_ends_and_centres_do_not(decode: str) -> None:
    features, mask = padded_batch([5, 2], 8)
    scores = {}
    for placement in ("centres", "range"):
        torch.manual_seed(0)
        model = tiny_cofinal(use_fgs=False, grade_targets="two-hot", grade_positions=placement, decode=decode).eval()
        with torch.no_grad():  # a classifier certain of the first grade for every video, then of the last
            model.grade_classifier[-1].weight.zero_()
            model.grade_classifier[-1].bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
            bottom = model(features, mask).normalised_score
            model.grade_classifier[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 50.0]))
            top = model(features, mask).normalised_score
        scores[placement] = (bottom, top)
    torch.testing.assert_close(scores["range"][0], torch.zeros(2))
    torch.testing.assert_close(scores["range"][1], torch.ones(2))
    torch.testing.assert_close(scores["centres"][0], torch.full((2,), 4.5 * 0.025))
    torch.testing.assert_close(scores["centres"][1], torch.full((2,), 0.75 + 4.5 * 0.025))


def test_argmax_decoding_is_the_papers_formula() -> None:
    torch.manual_seed(0)
    model = tiny_cofinal(decode="argmax").eval()
    prediction = model(*padded_batch([5, 2, 7], 8))
    parts = prediction.parts
    expected = parts["grade_index"] * 0.25 + parts["subgrade_index"] * 0.025
    torch.testing.assert_close(prediction.normalised_score, expected.float())
    torch.testing.assert_close(parts["grade_index"], parts["grade_probs"].argmax(-1))
    torch.testing.assert_close(parts["subgrade_index"], parts["subgrade_logits"].argmax(-1))
    torch.testing.assert_close(
        parts["subgrade_logits"], parts["fine_feature"] @ model.subgrade_etf.vectors
    )  # <h_F, e_j>


# ---------------------------------------------------------------- the graph regulariser


def arc_prototypes(n: int, dim: int = 6) -> torch.Tensor:
    """Unit prototypes on a great-circle arc: angle(i, j) proportional to |i - j|."""
    angles = torch.arange(n, dtype=torch.float32) * (math.pi / 2) / (n - 1)
    prototypes = torch.zeros(n, dim)
    prototypes[:, 0], prototypes[:, 1] = torch.cos(angles), torch.sin(angles)
    return prototypes * 3.0  # the length plays no part


def test_graph_loss_is_zero_for_prototypes_ordered_like_the_grades_and_higher_shuffled() -> None:
    ordered = arc_prototypes(5)
    assert quality_graph_loss(ordered).item() == pytest.approx(0.0, abs=1e-5)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        permutation = torch.randperm(5, generator=generator)
        if torch.equal(permutation, torch.arange(5)) or torch.equal(permutation, torch.arange(4, -1, -1)):
            continue  # the reversed order is as good as the order
        assert quality_graph_loss(ordered[permutation]).item() > quality_graph_loss(ordered).item() + 0.01
    noisy = ordered + 0.05 * torch.randn(5, 6, generator=generator)
    assert quality_graph_loss(noisy) < quality_graph_loss(noisy[torch.tensor([2, 0, 4, 1, 3])])


@pytest.mark.parametrize(
    "prototypes",
    [
        torch.ones(4, 6),  # identical
        torch.ones(4, 6) * torch.tensor([[1.0], [2.0], [0.5], [3.0]]),  # parallel, different lengths
        torch.cat([torch.ones(2, 6), -torch.ones(2, 6)]),  # parallel and anti-parallel
        torch.zeros(4, 6),  # degenerate
    ],
)
def test_graph_loss_and_its_gradient_stay_finite(prototypes: torch.Tensor) -> None:
    prototypes = prototypes.clone().requires_grad_(True)
    loss = quality_graph_loss(prototypes)
    loss.backward()
    assert torch.isfinite(loss) and loss >= 0
    assert torch.isfinite(prototypes.grad).all()


def test_graph_loss_pulls_prototypes_into_order() -> None:
    torch.manual_seed(0)
    prototypes = torch.randn(4, 8, requires_grad=True)
    optimiser = torch.optim.Adam([prototypes], lr=0.05)
    before = quality_graph_loss(prototypes).item()
    for _ in range(200):
        optimiser.zero_grad()
        quality_graph_loss(prototypes).backward()
        optimiser.step()
    assert quality_graph_loss(prototypes).item() < before / 5


# ---------------------------------------------------------------- losses


def labelled_batch(lengths: list[int], scores: list[float]):
    features, mask = padded_batch(lengths, 8)
    return features, mask, {"features": features, "mask": mask, "score": torch.tensor(scores)}


def test_loss_terms_match_their_formulas_and_backpropagate_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = tiny_cofinal().train()
    features, mask, batch = labelled_batch([6, 3, 5, 4], [10.0, 18.0, 26.0, 30.0])
    prediction = model(features, mask)
    losses = model.loss(prediction, batch)
    assert set(losses) == {"score", "grade", "subgrade", "graph"}
    for value in losses.values():
        assert value.shape == () and torch.isfinite(value)
    target = SCALE.normalise(batch["score"])  # [0, 0.4, 0.8, 1]
    grade, subgrade, _ = model.scheme.decompose(target)
    assert grade.tolist() == [0, 1, 3, 3] and subgrade.tolist() == [0, 6, 2, 9]
    parts = prediction.parts
    torch.testing.assert_close(losses["score"], 0.5 * ((parts["expected_score"] - target) ** 2).mean())
    torch.testing.assert_close(losses["grade"], torch.nn.functional.cross_entropy(parts["grade_logits"], grade))
    unit = parts["fine_feature"] / parts["fine_feature"].norm(dim=-1, keepdim=True)
    cosine = (unit * model.subgrade_etf.vectors[:, subgrade].T).sum(-1)
    torch.testing.assert_close(losses["subgrade"], 0.5 * ((cosine - 1) ** 2).mean())
    torch.testing.assert_close(losses["graph"], quality_graph_loss(model.gpm.grade_prototypes))
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_argmax_decoding_still_trains_on_the_expected_score() -> None:
    torch.manual_seed(0)
    model = tiny_cofinal(decode="argmax").train()
    features, mask, batch = labelled_batch([6, 3], [12.0, 27.0])
    losses = model.loss(model(features, mask), batch)
    losses["score"].backward()
    assert model.grade_classifier[-1].weight.grad.abs().sum() > 0


def test_lambdas_scale_their_terms() -> None:
    features, mask, batch = labelled_batch([6, 3], [12.0, 27.0])
    torch.manual_seed(0)
    base_model = tiny_cofinal().eval()
    base = base_model.loss(base_model(features, mask), batch)
    torch.manual_seed(0)
    scaled_model = tiny_cofinal(lambda_score=4.0, lambda_grade=2.0, lambda_subgrade=0.5, lambda_graph=3.0).eval()
    scaled = scaled_model.loss(scaled_model(features, mask), batch)
    torch.testing.assert_close(scaled["score"], 4.0 * base["score"])
    torch.testing.assert_close(scaled["grade"], 2.0 * base["grade"])
    torch.testing.assert_close(scaled["subgrade"], 0.5 * base["subgrade"])
    torch.testing.assert_close(scaled["graph"], 3.0 * base["graph"])


def test_two_hot_grade_targets_change_the_grade_loss_and_nothing_else() -> None:
    features, mask, batch = labelled_batch([6, 3, 5], [12.0, 20.0, 29.0])
    torch.manual_seed(0)
    hard = tiny_cofinal(use_fgs=False).eval()
    torch.manual_seed(0)
    two_hot = tiny_cofinal(use_fgs=False, grade_targets="two-hot").eval()
    hard_prediction, prediction = hard(features, mask), two_hot(features, mask)
    torch.testing.assert_close(prediction.score, hard_prediction.score)  # same forward
    hard_losses, losses = hard.loss(hard_prediction, batch), two_hot.loss(prediction, batch)
    torch.testing.assert_close(losses["score"], hard_losses["score"])
    target = SCALE.normalise(batch["score"])  # [0.1, 0.5, 0.95]
    soft = two_hot.scheme.two_hot(target, "centres")  # grade centres at 0.1125 + 0.25 g
    torch.testing.assert_close(soft[1], torch.tensor([0.0, 0.45, 0.55, 0.0]))
    cross_entropy = torch.nn.functional.cross_entropy(prediction.parts["grade_logits"], soft)
    torch.testing.assert_close(losses["grade"], cross_entropy)
    assert not torch.allclose(losses["grade"], hard_losses["grade"])


# ---------------------------------------------------------------- ablations


def ablation_outputs(**flags):
    torch.manual_seed(0)
    model = tiny_cofinal(**flags).eval()
    features, mask, batch = labelled_batch([6, 3, 5], [12.0, 20.0, 29.0])
    torch.manual_seed(1)
    prediction = model(features, mask)
    return model, prediction, model.loss(prediction, batch)


def test_each_ablation_flag_changes_the_computation() -> None:
    _, full, full_losses = ablation_outputs()

    model, no_tfm, losses = ablation_outputs(use_tfm=False)  # clips straight to the GPM
    assert model.tfm is None and "procedure_attention" not in no_tfm.parts
    assert no_tfm.parts["grade_attention"].shape == (3, 4, 6)  # grades over clips, masked
    assert torch.all(no_tfm.parts["grade_attention"][1, :, 3:] == 0)
    assert not torch.allclose(no_tfm.score, full.score)

    model, no_gpm, losses = ablation_outputs(use_gpm=False)  # a pooled feature feeds both heads
    assert model.gpm is None and set(losses) == {"score", "grade", "subgrade"}
    assert not {"grade_mask", "grade_attention"} & set(no_gpm.parts)
    assert not torch.allclose(no_gpm.score, full.score)

    model, no_fgs, losses = ablation_outputs(use_fgs=False)  # coarse grade + the middle sub-grade
    assert model.subgrade_etf is None and set(losses) == {"score", "grade", "graph"}
    assert not {"subgrade_probs", "subgrade_index", "fine_feature"} & set(no_fgs.parts)
    expected_grade = no_fgs.parts["grade_probs"] @ torch.arange(4.0)
    torch.testing.assert_close(no_fgs.normalised_score, expected_grade * 0.25 + 4.5 * 0.025)
    assert not torch.allclose(no_fgs.score, full.score)

    model, no_graph, losses = ablation_outputs(use_graph_loss=False)  # same forward, no L_R
    assert set(losses) == {"score", "grade", "subgrade"}
    torch.testing.assert_close(no_graph.score, full.score)
    torch.testing.assert_close(losses["grade"], full_losses["grade"])

    _, all_off, losses = ablation_outputs(use_tfm=False, use_gpm=False, use_fgs=False)
    assert set(losses) == {"score", "grade"} and set(all_off.parts) == {
        "grade_logits", "grade_probs", "grade_index", "expected_score"
    }  # fmt: skip


# ---------------------------------------------------------------- hyper-parameters


@pytest.mark.parametrize(
    "hparams, message",
    [
        ({"n_layers": 3}, "n_layers"),
        ({"proj_dim": 0}, "proj_dim"),
        ({"hidden_dim": "16"}, "hidden_dim"),
        ({"n_procedures": 2.5}, "n_procedures"),
        ({"grade_width": 1.0}, "grade_width"),
        ({"grade_width": 0.0}, "grade_width"),
        ({"subgrade_width": 0.25}, "subgrade_width"),
        ({"subgrade_width": -0.1}, "subgrade_width"),
        ({"hidden_dim": 8}, "at least the number of sub-grades"),
        ({"dropout": 1.0}, "dropout"),
        ({"lambda_graph": -1.0}, "lambda_graph"),
        ({"lambda_grade": float("nan")}, "lambda_grade"),
        ({"lambda_score": -1.0}, "lambda_score"),
        ({"decode": "mode"}, "decode"),
        ({"grade_targets": "soft", "use_fgs": False}, "grade_targets"),
        ({"grade_targets": "two-hot"}, "use_fgs=false"),
        ({"grade_positions": "ends", "grade_targets": "two-hot", "use_fgs": False}, "grade_positions must be"),
        ({"grade_positions": "range", "use_fgs": False}, "grade_targets='two-hot'"),
        ({"input_projection": "linear"}, "input_projection"),
        ({"feature_alignment": 3}, "feature_alignment"),
        ({"feature_alignment": True}, "feature_alignment"),
        ({"final_activation": "tanh"}, "final_activation"),
        ({"use_tfm": "no"}, "use_tfm"),
        ({"etf_seed": -1}, "etf_seed"),
    ],
)
def test_bad_hparams_are_config_errors(hparams: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_cofinal(**hparams)


def test_hidden_dim_may_be_small_without_the_etf() -> None:
    model = tiny_cofinal(hidden_dim=4, use_fgs=False)
    assert model(*padded_batch([3], 8)).score.shape == (1,)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "relu-k0.5", "leaky-relu"])
def test_final_activations(activation: str) -> None:
    torch.manual_seed(0)
    model = tiny_cofinal(final_activation=activation).eval()
    hidden = model.grade_classifier[1](torch.tensor([-2.0, 0.0, 2.0]))
    expected = {
        "sigmoid": torch.sigmoid(torch.tensor([-2.0, 0.0, 2.0])),
        "relu": torch.tensor([0.0, 0.0, 2.0]),
        "relu-k0.5": torch.tensor([0.0, 0.0, 1.0]),
        "leaky-relu": torch.tensor([-0.02, 0.0, 2.0]),
    }[activation]
    torch.testing.assert_close(hidden, expected)


# ---------------------------------------------------------------- learning


def test_tiny_cofinal_overfits_a_tiny_dataset() -> None:
    torch.manual_seed(0)
    before, after = overfit(tiny_cofinal(dropout=0.0), learnable_batch(3, 8), steps=300)
    assert after < before / 10, (before, after)


def test_input_projection_choice() -> None:
    stem = tiny_cofinal()  # Linear D_C -> D_P + BatchNorm over real clips, then the TFM in D_P
    assert stem.clip_projection is not None and stem.tfm.key.in_features == 12
    literal = tiny_cofinal(input_projection="none")  # the TFM's Linear maps read D_C directly
    assert literal.clip_projection is None and literal.tfm.key.in_features == 8
    no_tfm = tiny_cofinal(input_projection="none", use_tfm=False)  # the GPM then reads D_C clips
    assert no_tfm.gpm.key.in_features == 8
