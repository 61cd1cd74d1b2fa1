"""Batches of short videos padded to their longest video train exactly as batches padded to the crop.

Every model masks its padding, so the extra padding of the old batches (to ``crop_len``) changed
nothing but the time spent; with dropout off a fixed seed gives the same run either way. (With
dropout on, the random masks are drawn over the batch's shape, so a seed's figures change by chance.)
"""

import pytest
import torch

from aqakit.data.batches import ClipBank
from aqakit.models import list_models, is_closed_form
from aqakit.train.config import build_config
from aqakit.train.runner import train_run

NO_DROPOUT = {"gdlt": {"dropout": 0.0, "hidden_dim": 16, "n_heads": 2},
              "cofinal": {"dropout": 0.0, "proj_dim": 12, "hidden_dim": 16, "n_procedures": 3},
              "cofinal-official": {"dropout": 0.0, "hidden_dim": 16, "n_heads": 2, "digit_hidden_dim": 12},
              "query-decoder": {"dropout": 0.0, "width": 16, "n_heads": 2, "n_queries": 4},
              "tpt": {"dropout": 0.0, "hidden_dim": 16, "n_heads": 2, "n_parts": 2, "ffn_dim": 16, "n_intervals": 4,
                      "n_exemplars": 3},
              "finecausal": {"dropout": 0.0, "hidden_dim": 16, "attention_dim": 8, "n_exemplars": 3,
                             "transition_weight": 0.0}}  # the synthetic videos have no annotated stages


def test_every_model_trained_by_gradient_steps_is_covered():
    assert sorted(NO_DROPOUT) == [name for name in list_models() if not is_closed_form(name)]


def padded_to_the_crop(self, indices, crop_len, generator):
    """The batches before: every batch padded to ``crop_len`` clips."""
    room = (self.lengths[indices] - crop_len).clamp(min=0)
    starts = (torch.rand(len(indices), generator=generator) * (room + 1)).long().clamp(max=room)
    return self.gather(indices, starts, crop_len)


@pytest.mark.parametrize("model", sorted(NO_DROPOUT))
def test_short_videos_train_to_the_same_metrics_whatever_the_padding(tmp_path, monkeypatch, model):
    args = {f"model.args.{key}": value for key, value in NO_DROPOUT[model].items()}
    config = build_config(model, "synthetic", {
        "benchmark_args": {"n_train": 40, "n_test": 20, "dim": 8, "min_clips": 1, "max_clips": 3, "n_procedures": 1},
        "train.epochs": 2, "train.batch_size": 16, "train.crop_len": 24, "train.precision": "32-true", **args})
    summaries = [train_run(config, tmp_path / "short", [0])]
    monkeypatch.setattr(ClipBank, "crop", padded_to_the_crop)
    summaries.append(train_run(config, tmp_path / "to-crop", [0]))
    short, to_crop = (s["per_seed"][0]["test"] for s in summaries)
    assert short == pytest.approx(to_crop, rel=1e-4, abs=1e-5)
