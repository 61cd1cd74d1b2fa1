"""`aqakit bench`: every figure is produced, consistent and counted (tiny synthetic runs)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from aqakit.bench import BenchSettings, benchmark_groups, count_flops, matmul_peak_gflops, run_bench
from aqakit.cli import app
from aqakit.errors import ConfigError
from aqakit.models import is_closed_form, list_models
from aqakit.train.config import build_config

TINY = {"benchmark_args.n_train": 40, "benchmark_args.n_test": 12, "benchmark_args.dim": 16}


def test_flop_counter_counts_a_linear_layer_exactly():
    layer = torch.nn.Linear(16, 8)
    assert count_flops(lambda: layer(torch.randn(5, 16))) == 2 * 5 * 16 * 8


def test_matmul_peak_is_a_positive_rate():
    peak = matmul_peak_gflops(torch.float32, "cpu", min_call_seconds=0.0)
    assert peak["size"] == 256 and peak["gflops"] > 0


@pytest.fixture(scope="module")
def results():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        measured = run_bench(list_models(), BenchSettings(repeats=2, train_epochs=2, threads=1, overrides=TINY))
        assert torch.get_num_threads() == 2  # --threads held while measuring only
    finally:
        torch.set_num_threads(before)
    return measured


def test_each_model_runs_on_its_synthetic_benchmark(results):
    """FineCausal reads two streams and stage transitions: it is measured on synthetic-confounded,
    every other model on synthetic, each benchmark its own result."""
    on = {result["benchmark"]: [m["model"] for m in result["models"]] for result in results}
    assert on == {"synthetic": [name for name in list_models() if name != "finecausal"],
                  "synthetic-confounded": ["finecausal"]}
    assert results[0]["matmul_peak"] == results[1]["matmul_peak"]  # the machine is measured once
    assert benchmark_groups(["gdlt", "finecausal"], "fisv-pcs") == {"fisv-pcs": ["gdlt", "finecausal"]}


def test_every_model_gets_every_figure(results):
    for result in results:
        assert result["torch_threads"] == 1 and result["videos"] == {"train": 40, "test": 12}
        fp32 = result["matmul_peak"]["fp32"]["gflops"]
        for model in result["models"]:
            inference, batched, training = model["inference"], model["batched_inference"], model["training"]
            assert model["parameters"] > 0 and inference["flops"] > 0
            assert inference["clips"] == pytest.approx(result["clips"]["median"], abs=1)
            assert 0 < inference["latency_ms_median"] <= inference["latency_ms_p95"]
            assert batched["videos"] == 12 and batched["videos_per_second"] > 0
            preset = build_config(model["model"], result["benchmark"])
            assert training["epochs_measured"] == 1 and training["batch_size"] == preset.train.batch_size
            assert training["epoch_seconds"] <= training["epoch_seconds_with_test_pass"]
            if is_closed_form(model["model"]):  # a numpy fit: timed, its FLOPs not counted
                assert training["flops_per_sample"] is None and "gflops" not in training
            else:
                crop = preset.train.crop_len
                assert training["crop_len"] == crop
                # backward costs too; a pair model is scored against n_exemplars exemplars, trained on pairs
                videos_scored = preset.model.args.get("n_exemplars", 0) + 1
                trained_clips = min(crop, result["clips"]["max"])  # a batch is padded to its longest video
                assert training["flops_per_sample"] > inference["flops"] / videos_scored * trained_clips / inference["clips"]
            for phase in (inference, batched) if is_closed_form(model["model"]) else (inference, batched, training):
                assert phase["fraction_of_fp32_peak"] == pytest.approx(phase["gflops"] / fp32)
                assert phase["peak_memory_mib"] > 0


def test_cli_prints_json_and_appends_a_record(tmp_path):
    record = tmp_path / "results.jsonl"
    args = ["bench", "gdlt", "--repeats", "1", "--train-epochs", "2", "--threads", "1", "--record", str(record), "--json"]
    args += [f"--set={key}={value}" for key, value in TINY.items()]
    output = CliRunner().invoke(app, args)
    assert output.exit_code == 0, output.output
    printed = json.loads(output.output)
    assert [m["model"] for m in printed["models"]] == ["gdlt"]
    assert json.loads(record.read_text().splitlines()[-1])["models"][0]["parameters"] == printed["models"][0]["parameters"]


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="--device 'tpu'"):
        run_bench(["gdlt"], BenchSettings(device="tpu"))
    with pytest.raises(ConfigError, match="needs --benchmark"):
        run_bench(["gdlt"], BenchSettings(data_root="somewhere"))
    with pytest.raises(ConfigError, match="unknown model"):
        run_bench(["nope"], BenchSettings(repeats=1, train_epochs=2, overrides=TINY))
