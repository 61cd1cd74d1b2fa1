"""`aqakit suite run` / `suite table`: variants trained on suite sets, records that let a later session continue."""

import json

import pytest
import yaml

from aqakit.errors import ConfigError, DataError
from aqakit.robustness import Variant, record_complete, run_suite, suite_curves, suite_table
from conftest import run_cli

SMALL = {"benchmark_args": {"n_train": 40, "n_test": 20, "dim": 8}}


@pytest.fixture
def tiny_gdlt(tmp_path):
    preset = tmp_path / "gdlt-tiny.yaml"
    preset.write_text(yaml.safe_dump({"base": "gdlt", "model": {"args": {"hidden_dim": 16, "n_heads": 2}},
                                      "train": {"epochs": 5, "crop_len": 12, "batch_size": 16}}))
    return Variant.parse(f"gdlt@{preset}")


def test_variants_are_a_model_its_generic_preset_or_another_and_auto():
    assert Variant.parse("gdlt") == Variant("gdlt", "gdlt", "gdlt")
    assert Variant.parse("gdlt@my/gdlt-small.yaml") == Variant("gdlt@gdlt-small", "gdlt", "my/gdlt-small.yaml")
    assert Variant.parse("auto") == Variant("auto", "auto", None)
    with pytest.raises(ConfigError, match="auto chooses its own presets"):
        Variant.parse("auto@x")


def test_a_suite_run_writes_records_and_skips_what_is_recorded(tmp_path, tiny_gdlt):
    variants = [Variant.parse("ridge"), tiny_gdlt]
    done = run_suite(variants, tmp_path / "runs", tmp_path / "records", set_names=["synthetic"], overrides=SMALL, seeds=2)
    assert done == [("synthetic", "ridge", "trained"), ("synthetic", "gdlt@gdlt-tiny", "trained")]
    record = tmp_path / "records" / "synthetic--gdlt@gdlt-tiny"
    assert record_complete(record) and (record / "seed-1" / "metrics.csv").is_file()
    assert not list(record.rglob("*.safetensors"))  # records are small: no checkpoints
    again = run_suite(variants, tmp_path / "elsewhere", tmp_path / "records", set_names=["synthetic"], overrides=SMALL)
    assert [status for *_, status in again] == ["recorded before", "recorded before"]
    table = suite_table(tmp_path / "records")
    header, _, row = table.splitlines()
    assert header == "| set | ridge | gdlt@gdlt-tiny |" and row.startswith("| synthetic | ")
    summary = json.loads((record / "summary.json").read_text())
    assert f"{summary['test']['spearman']['mean']:.3f} ± " in row
    curves = suite_curves(tmp_path / "records").splitlines()
    assert len(curves) == 3 and curves[2].startswith("| synthetic--gdlt@gdlt-tiny | test | 2 | ")  # ridge: one epoch, no curve


def test_auto_records_its_choice_beside_ridge(tmp_path, monkeypatch, capsys):
    status, out, err = run_cli(monkeypatch, capsys, "suite", "run", "ridge,auto", "--sets", "synthetic",
                               "--set", "benchmark_args.n_train=40", "--set", "benchmark_args.n_test=20",
                               "--set", "benchmark_args.dim=8", "--budget-minutes", "0.0001",
                               "--runs-dir", tmp_path / "runs", "--records", tmp_path / "records")
    assert status == 0, err
    assert "synthetic / auto: trained" in out
    assert (tmp_path / "records" / "synthetic--auto" / "final" / "summary.json").is_file()
    status, out, err = run_cli(monkeypatch, capsys, "suite", "table", tmp_path / "records")
    assert status == 0, err
    assert "| set | ridge | auto: choice | auto: validation | auto: test | auto − ridge (test) |" in out
    assert "| ridge-mean-max-std |" in out or "| ridge |" in out


def test_a_folder_without_records_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no suite records"):
        suite_table(tmp_path)
