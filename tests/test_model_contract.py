"""What every registered model promises (DESIGN.md): same input, same Prediction, clear errors.

A new model is covered by adding its tiny hyper-parameters to TINY_HPARAMS. Every call passes
exemplars (padded ones among them): pair models use them, the others must ignore them.
"""

import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.errors import DataError
from aqakit.models import create_model, list_models
from conftest import exemplars_for, padded_batch, random_videos

SCALE = ScoreScale(10.0, 30.0)
TINY_HPARAMS = {
    "gdlt": dict(hidden_dim=16, n_heads=2),
    "cofinal": dict(proj_dim=12, hidden_dim=16, n_procedures=3),
    "cofinal-official": dict(hidden_dim=16, n_heads=2, digit_hidden_dim=12),
    "query-decoder": dict(width=16, n_heads=2, n_queries=5),
    "ridge": dict(cv_folds=3),
    "finecausal": dict(hidden_dim=16, attention_dim=4, n_intervals=4, head_hidden=8, transition_weight=0.0),
    "tpt": dict(hidden_dim=16, n_heads=2, n_parts=3, ffn_dim=16, n_intervals=4, head_hidden=8),
}


def test_every_registered_model_is_covered():
    assert sorted(TINY_HPARAMS) == list_models()


def tiny_model(name, in_dim=8, score_scale=SCALE):
    """Model ``name`` with TINY_HPARAMS, ready to score: a closed-form model is fitted on random videos."""
    model = create_model(name, in_dim=in_dim, score_scale=score_scale, **TINY_HPARAMS[name])
    if model.closed_form:
        model.fit_closed_form(random_videos(12, in_dim))
    model.prepare(random_videos(12, in_dim))
    return model


@pytest.fixture(params=sorted(TINY_HPARAMS))
def model(request):
    torch.manual_seed(0)
    return tiny_model(request.param)


def test_prediction_is_on_the_original_scale_with_batch_first_parts(model):
    features, mask = padded_batch([5, 1, 9], 8)
    prediction = model.eval()(features, mask, exemplars_for(3))
    assert prediction.score.shape == (3,) and torch.isfinite(prediction.score).all()
    torch.testing.assert_close(prediction.score, SCALE.denormalise(prediction.normalised_score))
    assert all(part.shape[0] == 3 for part in prediction.parts.values())


def test_padding_does_not_change_a_score(model):
    model.eval()
    features, mask = padded_batch([4, 11], 8, pad_value=50.0)
    alone = model(features[:1, :4], mask[:1, :4], exemplars_for(1)).score
    batched = model(features, mask, exemplars_for(2)).score
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=0)


def test_loss_terms_are_named_finite_scalars(model):
    features, mask = padded_batch([6, 6, 3, 8], 8)
    exemplars = exemplars_for(4)
    batch = {"features": features, "mask": mask, "score": torch.tensor([12.0, 18.0, 25.0, 29.0]),
             "exemplar_mask": exemplars.mask, "exemplar_score": exemplars.score}
    terms = model.train().loss(model(features, mask, exemplars), batch)
    assert terms and all(value.dim() == 0 and torch.isfinite(value) for value in terms.values())


def test_wrong_feature_dimension_is_a_data_error(model):
    with pytest.raises(DataError, match="feature dimension 7 does not match the model's input dimension 8"):
        model(torch.randn(2, 5, 7), None, exemplars_for(2))


def test_a_video_without_real_clips_is_a_data_error(model):
    features, mask = padded_batch([3, 2], 8)
    mask[1] = False
    with pytest.raises(DataError, match="no real clip"):
        model(features, mask, exemplars_for(2))
