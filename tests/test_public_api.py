"""The top-level API: the package docstring's example runs, ``import aqakit`` stays light, load_model."""

import subprocess
import sys
import textwrap

import pytest
import torch

import aqakit
from aqakit.models import GDLT, GDLTConfig


def docstring_example() -> str:
    """The indented code block of ``aqakit.__doc__`` (after the line ending in ``::``)."""
    lines = aqakit.__doc__.split("::\n", 1)[1].splitlines()[1:]
    block = []
    for line in lines:
        if line and not line.startswith("    "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip()


def test_the_package_docstring_example_runs_in_five_lines(tmp_path, monkeypatch):
    code = docstring_example()
    assert len(code.splitlines()) == 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "aqakit.__doc__", "exec"), namespace)
    model, prediction, same = namespace["model"], namespace["prediction"], namespace["same"]
    assert isinstance(prediction, aqakit.Prediction) and prediction.score.shape == (2,)
    assert isinstance(same, aqakit.AQAModel) and not same.training
    assert (tmp_path / "my-model" / "model.safetensors").is_file()
    features = torch.randn(3, 5, 1024)
    torch.testing.assert_close(same(features).score, model(features).score, rtol=0, atol=0)


def test_the_top_level_names():
    assert set(aqakit.__all__) >= {"create_model", "list_models", "load_model", "ScoreScale", "Prediction", "AQAModel"}
    assert "cofinal" in aqakit.list_models() and "ridge" in aqakit.list_models()
    assert {"create_model", "ScoreScale"} <= set(dir(aqakit))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        aqakit.nope  # noqa: B018


def test_import_aqakit_is_light_and_never_imports_lightning():
    probe = (
        "import sys, aqakit; light = 'torch' not in sys.modules; "
        "m = aqakit.create_model('cofinal', in_dim=1024, score_scale=aqakit.ScoreScale(0, 100)); print(m); "
        "[getattr(aqakit, name) for name in aqakit.__all__]; "
        "print(light, any(n == 'lightning' or n.startswith(('lightning.', 'pytorch_lightning')) for n in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("CoFInAl(")
    assert result.stdout.split()[-2:] == ["True", "False"]  # no torch for a bare import; no Lightning at all


def test_load_model_takes_a_run_a_seed_folder_a_checkpoint_or_its_weights(tmp_path):
    scale = aqakit.ScoreScale(0.0, 10.0)
    models = {}
    for seed in (0, 1):
        torch.manual_seed(seed)
        models[seed] = aqakit.create_model("gdlt", in_dim=6, score_scale=scale, hidden_dim=8, n_heads=2).eval()
        aqakit.save_checkpoint(models[seed], tmp_path / "run" / f"seed-{seed}" / "checkpoint")
    features = torch.randn(2, 4, 6)
    for given, seed in ((tmp_path / "run", 0), (tmp_path / "run" / "seed-1", 1),
                        (str(tmp_path / "run" / "seed-1" / "checkpoint" / "model.safetensors"), 1)):
        loaded = aqakit.load_model(given)
        assert isinstance(loaded, GDLT) and loaded.config == GDLTConfig(hidden_dim=8, n_heads=2)
        torch.testing.assert_close(loaded(features).score, models[seed](features).score, rtol=0, atol=0)
    with pytest.raises(aqakit.RunDirectoryError, match="no checkpoint found"):
        aqakit.load_model(tmp_path)
