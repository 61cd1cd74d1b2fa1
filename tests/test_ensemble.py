"""Many seeds at once: a batched ensemble trains each seed as a separate run would."""

import csv

import numpy as np
import torch
import pytest

from aqakit.errors import ConfigError, RunDirectoryError
from aqakit.models import is_closed_form, list_models, model_class
from aqakit.train.config import build_config
from aqakit.train.runner import train_run
from test_model_contract import TINY_HPARAMS

SEEDS = [0, 1, 2]


def tiny_config(name: str, **overrides):
    settings = {
        "benchmark_args": {"n_train": 40, "n_test": 16, "dim": 8},
        "model.args": {**TINY_HPARAMS[name], "dropout": 0.0},
        "train.epochs": 3, "train.batch_size": 16, "train.crop_len": 24,
        # float32 on every host: "auto" is bf16 on a CPU with native bf16, where the batched and the
        # separate matrix products round differently and three epochs carry it past the tolerance
        "train.precision": "32-true",
        **overrides,
    }  # fmt: skip
    return build_config(name, "synthetic", settings)


def read_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


#: Trained by gradient steps without exemplars: what the batched ensemble trains.
ENSEMBLED = [name for name in list_models() if not is_closed_form(name) and not model_class(name).needs_exemplars]


def test_a_pair_model_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="tpt scores videos against exemplars, which the batched ensemble does not draw"):
        train_run(tiny_config("tpt", **{"train.ensemble": True}), tmp_path / "ensemble", SEEDS)
    assert not (tmp_path / "ensemble").exists()


#: Settings whose training step takes another code path under vmap (two-hot grade targets).
VARIANTS = {"cofinal-two-hot": ("cofinal", {"model.args.grade_targets": "two-hot", "model.args.use_fgs": False})}


@pytest.mark.parametrize("name", ENSEMBLED + sorted(VARIANTS))
def test_ensemble_equals_separate_runs(tmp_path, name):
    """Same init, data order, crops, BatchNorm statistics and updates per seed (dropout 0)."""
    name, settings = VARIANTS.get(name, (name, {}))
    separate = train_run(tiny_config(name, **settings), tmp_path / "separate", SEEDS)
    together = train_run(tiny_config(name, **settings, **{"train.ensemble": True}), tmp_path / "ensemble", SEEDS)
    for seed, alone, member in zip(SEEDS, separate["per_seed"], together["per_seed"]):
        assert member["seed"] == seed and "ensemble" in member and "ensemble" not in alone
        assert member["test"]["spearman"] == pytest.approx(alone["test"]["spearman"], abs=1e-4)
        for file, column in (("predictions.csv", "predicted_score"), ("metrics.csv", "train_loss")):
            expected = [float(r[column]) for r in read_rows(tmp_path / "separate" / f"seed-{seed}" / file)]
            got = [float(r[column]) for r in read_rows(tmp_path / "ensemble" / f"seed-{seed}" / file)]
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    spearmans = [s["test"]["spearman"] for s in together["per_seed"]]
    assert len(set(spearmans)) == len(SEEDS)  # the members really are different seeds


def test_ensemble_with_dropout_trains_distinct_members(tmp_path):
    config = tiny_config("gdlt", **{"train.ensemble": True, "model.args": {"dropout": 0.3}, "train.epochs": 2})
    summary = train_run(config, tmp_path / "run", [0, 1])
    assert all(np.isfinite(s["test"]["mae"]) for s in summary["per_seed"])
    assert summary["per_seed"][0]["test"] != summary["per_seed"][1]["test"]


def test_ensemble_refuses_what_it_cannot_do_like_separate_runs(tmp_path):
    with pytest.raises(ConfigError, match="best-val"):
        train_run(tiny_config("gdlt", **{"train.ensemble": True, "train.select": "best-val"}), tmp_path / "a", SEEDS)
    with pytest.raises(ConfigError, match="val_folds"):
        train_run(tiny_config("gdlt", **{"train.ensemble": True, "train.val_folds": 2}), tmp_path / "f", SEEDS)
    with pytest.raises(ConfigError, match="train_fraction"):
        train_run(tiny_config("gdlt", **{"train.ensemble": True, "train.train_fraction": 0.5}), tmp_path / "t", SEEDS)
    with pytest.raises(ConfigError, match="grad_clip"):
        train_run(tiny_config("gdlt", **{"train.ensemble": True, "train.grad_clip": 1.0}), tmp_path / "b", SEEDS)
    with pytest.raises(ConfigError, match="ema_decay"):
        train_run(tiny_config("gdlt", **{"train.ensemble": True, "train.ema_decay": 0.9}), tmp_path / "d", SEEDS)
    with pytest.raises(ConfigError, match="scheduler_interval"):
        train_run(tiny_config("gdlt", **{"train.ensemble": True, "optim.scheduler_interval": "step"}), tmp_path / "e", SEEDS)
    train_run(tiny_config("gdlt", **{"train.ensemble": True, "train.epochs": 1}), tmp_path / "c", [0])
    with pytest.raises(RunDirectoryError, match="cannot be resumed"):
        train_run(tiny_config("gdlt", **{"train.ensemble": True, "train.epochs": 1}), tmp_path / "c", [0], resume=True)


def test_on_cuda_the_members_attention_uses_the_math_kernel_alone():
    """The memory-efficient kernel's backward fails on vmap-ed inputs on CUDA (docs/performance.md)."""
    from aqakit.train.ensemble import member_attention_kernels

    with member_attention_kernels("cuda"):
        assert torch.backends.cuda.math_sdp_enabled()
        assert not torch.backends.cuda.mem_efficient_sdp_enabled() and not torch.backends.cuda.flash_sdp_enabled()
    assert torch.backends.cuda.mem_efficient_sdp_enabled()  # restored afterwards
