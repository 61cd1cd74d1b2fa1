"""Results tables from run directories: rows, unfinished seeds, Fisher-z averages, errors."""

import json

import numpy as np
import pytest
import yaml

from runs import write_run

from aqakit.errors import DataError
from aqakit.results import read_run, read_runs, render_markdown, results_json, run_directories, variant_averages


def test_row_statistics_are_over_finished_seeds_only(tmp_path):
    run = write_run(tmp_path, "cofinal-fisv-tes", "fisv-tes", [0.6, 0.7], best=[0.65, 0.75], unfinished=[2])
    row = read_run(run)
    assert row.seeds == (0, 1) and row.unfinished == (2,)
    stats = results_json([row])["runs"][0]
    assert stats["test_spearman"]["mean"] == pytest.approx(0.65)
    assert stats["test_spearman"]["std"] == pytest.approx(np.std([0.6, 0.7], ddof=1))
    assert stats["best_test_epoch_spearman"]["mean"] == pytest.approx(0.70)
    table = render_markdown([row])
    assert "| 2 (0, 1) (unfinished: 2) |" in table and "0.650 ± 0.071" in table and "0.600, 0.700" in table


def test_runs_differing_only_by_benchmark_are_fisher_z_averaged(tmp_path):
    tes, pcs = [0.60, 0.62, 0.64], [0.80, 0.82, 0.78]
    rows = [read_run(write_run(tmp_path, "cofinal-fisv-tes", "fisv-tes", tes)),
            read_run(write_run(tmp_path, "cofinal-fisv-pcs", "fisv-pcs", pcs)),
            read_run(write_run(tmp_path, "gdlt-fisv-tes", "fisv-tes", [0.5], model="gdlt"))]
    averages = variant_averages(rows)
    assert [a.variant for a in averages] == ["cofinal"]  # gdlt has TES only: no average
    z_tes, z_pcs = np.mean(np.arctanh(tes)), np.mean(np.arctanh(pcs))
    assert averages[0].final == pytest.approx(np.tanh((z_tes + z_pcs) / 2))
    assert averages[0].best_test is None  # these runs logged no per-epoch test metric
    assert "| cofinal | fisv-pcs, fisv-tes |" in render_markdown(rows)


def test_a_diverged_seed_makes_its_average_nan_not_a_crash(tmp_path):
    rows = [read_run(write_run(tmp_path, "v-fisv-tes", "fisv-tes", [0.6, float("nan")])),
            read_run(write_run(tmp_path, "v-fisv-pcs", "fisv-pcs", [0.8, 0.7]))]
    assert np.isnan(variant_averages(rows)[0].final)
    table = render_markdown(rows)
    assert "0.600, nan" in table and "| v | fisv-pcs, fisv-tes | NaN (a seed's Spearman is NaN) | – |" in table


def test_best_test_column_is_empty_unless_every_seed_has_it(tmp_path):
    run = write_run(tmp_path, "r-fisv-tes", "fisv-tes", [0.6, 0.7], best=[0.65, 0.75])
    (run / "seed-1" / "summary.json").write_text(json.dumps({"seed": 1, "test": {"spearman": 0.7, "rl2": 1.0}}))
    assert read_run(run).best_test == ()


def test_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not an aqakit run directory"):
        read_run(tmp_path)
    run = write_run(tmp_path, "broken", "fisv-tes", [0.6])
    (run / "seed-0" / "summary.json").write_text("{not json")
    with pytest.raises(DataError, match=r"seed-0/summary.json: not valid JSON"):
        read_run(run)


def test_a_folder_of_runs_stands_for_the_runs_inside_it(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    pcs = write_run(runs_dir, "v-fisv-pcs", "fisv-pcs", [0.8])
    tes = write_run(runs_dir, "v-fisv-tes", "fisv-tes", [0.6])
    (runs_dir / "v-fisv-tes.log").write_text("a log beside the runs\n")
    (runs_dir / "notes").mkdir()
    other = write_run(tmp_path, "gdlt-fisv-tes", "fisv-tes", [0.5], model="gdlt")
    assert run_directories([runs_dir, other]) == [pcs, tes, other]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: not an aqakit run directory \(no config.yaml\), and no run directory inside it"):
        run_directories([tmp_path / "empty"])
    with pytest.raises(DataError, match=r"v-fisv-tes.log: not an aqakit run directory"):
        run_directories([runs_dir / "v-fisv-tes.log"])


def test_the_precision_of_each_run_is_shown_and_a_mix_is_flagged(tmp_path):
    fp32 = read_run(write_run(tmp_path, "a-fisv-tes", "fisv-tes", [0.6, 0.7], precisions=["32-true", "32-true"]))
    assert "| a-fisv-tes | cofinal | fisv-tes | final | 2 (0, 1) | 200 | 32-true |" in render_markdown([fp32])
    assert "different precisions" not in render_markdown([fp32])
    mixed = read_run(write_run(tmp_path, "b-fisv-tes", "fisv-tes", [0.6, 0.7], precisions=["32-true", "bf16-mixed"]))
    assert mixed.precision == "32-true, bf16-mixed"
    assert results_json([mixed])["runs"][0]["precision_per_seed"] == ["32-true", "bf16-mixed"]
    old = read_run(write_run(tmp_path, "c-fisv-tes", "fisv-tes", [0.6]))
    assert old.precision == "not recorded"
    table = render_markdown([fp32, old])
    assert "Note: these seeds trained in different precisions (32-true, not recorded)" in table


def tuning_run(root, name):
    """A run trained with train.evaluate_test=false: validation figures only."""
    run = write_run(root, name, "fisv-tes", [0.6])
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["train"].update(select="best-val", evaluate_test=False)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "seed-0" / "summary.json").write_text(json.dumps({"seed": 0, "val": {"spearman": 0.5, "rl2": 1.0}}))
    return run


def test_tuning_runs_in_a_folder_of_runs_are_named_under_the_table(tmp_path):
    tested = write_run(tmp_path, "v-fisv-tes", "fisv-tes", [0.6])
    tune = tuning_run(tmp_path, "tune-fisv-tes")
    rows, tuning = read_runs([tmp_path])
    assert [row.name for row in rows] == ["v-fisv-tes"] and tuning == ["tune-fisv-tes"]
    table = render_markdown(rows, tuning)
    assert "| v-fisv-tes |" in table and "| tune-fisv-tes |" not in table
    assert "\n\nNot shown (no test figures: trained with train.evaluate_test=false): tune-fisv-tes\n" in table
    assert table.endswith("(docs/protocol.md#terms).")
    assert results_json(rows, tuning)["tuning_runs_not_shown"] == ["tune-fisv-tes"]
    assert "Not shown" not in render_markdown(*read_runs([tested]))
    with pytest.raises(DataError, match=r"tune-fisv-tes: a tuning run \(trained with train.evaluate_test=false: "
                                        r"its test split was never scored\), so it has no test figures; leave it out"):
        read_runs([tmp_path, tune])


def test_seed_ids_are_counted_and_compact():
    from aqakit.results import seed_ids

    assert seed_ids([2, 0, 1, 3, 4]) == "0-4" and seed_ids([0, 3]) == "0, 3" and seed_ids([0, 1]) == "0, 1"
    assert seed_ids([5, 7, 6]) == "5-7" and seed_ids([0, 2, 3]) == "0, 2, 3"
