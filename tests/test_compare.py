"""Paired bootstrap of two models over shared test videos (`aqakit compare`)."""

import numpy as np
import pytest
import yaml
from runs import write_run

from aqakit import compare as compare_module
from aqakit.compare import AVERAGE_LABEL, compare_runs, data_source, read_test_predictions, render_comparison
from aqakit.errors import DataError
from aqakit.metrics import spearman
from aqakit.results import read_run, variant_averages

IDS = [f"v{i:03d}" for i in range(40)]


def rows_for(true, predicted, ids=IDS):
    """predictions.csv rows: the test videos, plus a validation row that must be ignored."""
    return [("val", "x", 1.0, 9.0)] + [("test", i, t, p) for i, t, p in zip(ids, true, predicted)]


def model_run(tmp_path, name, benchmark, true, noise, seeds=3, ids=IDS):
    """A finished run whose seed k predicts ``true`` plus Gaussian noise of scale ``noise`` (seeded by k)."""
    predicted = [true + noise * np.random.default_rng(100 * seeds + k).normal(size=true.size) for k in range(seeds)]
    rhos = [spearman(p, true) for p in predicted]
    return write_run(tmp_path, name, benchmark, rhos, predictions=[rows_for(true, p, ids) for p in predicted])


@pytest.fixture
def truth():
    rng = np.random.default_rng(0)
    return {"fisv-tes": rng.uniform(20, 60, size=len(IDS)), "fisv-pcs": rng.uniform(10, 40, size=len(IDS))}


def test_a_model_against_itself_differs_by_nothing(tmp_path, truth):
    run = read_test_predictions(model_run(tmp_path, "m-fisv-tes", "fisv-tes", truth["fisv-tes"], 5.0))
    result = compare_runs([run], [run], n_boot=200)
    (row,) = result.rows
    assert row.difference == 0.0 and row.low == 0.0 and row.high == 0.0 and row.a_ahead == 0.0


def test_observed_figures_are_those_of_aqakit_results(tmp_path, truth):
    runs = [model_run(tmp_path, f"a-{b}", b, truth[b], 4.0) for b in ("fisv-tes", "fisv-pcs")]
    others = [model_run(tmp_path, f"b-{b}", b, truth[b], 9.0) for b in ("fisv-tes", "fisv-pcs")]
    result = compare_runs([read_test_predictions(r) for r in runs], [read_test_predictions(r) for r in others],
                          n_boot=50)
    by_label = {row.label: row for row in result.rows}
    assert list(by_label) == ["fisv-pcs", "fisv-tes", AVERAGE_LABEL]
    for run in runs:
        row = read_run(run)
        assert by_label[row.benchmark].a == pytest.approx(np.mean(row.spearman))
    (average,) = variant_averages([read_run(r) for r in runs])
    assert by_label[AVERAGE_LABEL].a == pytest.approx(average.final)
    assert result.videos_shared and result.n_videos == {"fisv-pcs": 40, "fisv-tes": 40}


def test_a_clearly_better_model_wins_nearly_every_resample(tmp_path, truth):
    good = read_test_predictions(model_run(tmp_path, "good-fisv-tes", "fisv-tes", truth["fisv-tes"], 1.0))
    poor = read_test_predictions(model_run(tmp_path, "poor-fisv-tes", "fisv-tes", truth["fisv-tes"], 15.0))
    result = compare_runs([good], [poor], n_boot=500)
    (row,) = result.rows
    assert row.difference > 0.2 and 0.0 < row.low < row.difference < row.high and row.a_ahead > 0.99
    (reverse,) = compare_runs([poor], [good], n_boot=500).rows
    assert reverse.difference == pytest.approx(-row.difference) and reverse.a_ahead < 0.01


def test_resampling_is_reproducible_and_independent_of_chunking(tmp_path, truth, monkeypatch):
    a = read_test_predictions(model_run(tmp_path, "a-fisv-tes", "fisv-tes", truth["fisv-tes"], 6.0))
    b = read_test_predictions(model_run(tmp_path, "b-fisv-tes", "fisv-tes", truth["fisv-tes"], 8.0))
    first = compare_runs([a], [b], n_boot=300, seed=3)
    assert compare_runs([a], [b], n_boot=300, seed=3) == first
    assert compare_runs([a], [b], n_boot=300, seed=4).rows[0].low != first.rows[0].low
    monkeypatch.setattr(compare_module, "_CHUNK_ELEMENTS", 500)  # about two resamples a chunk
    assert compare_runs([a], [b], n_boot=300, seed=3) == first


def test_benchmarks_on_different_videos_are_resampled_separately(tmp_path, truth):
    other_ids = [f"w{i:03d}" for i in range(40)]
    sides = []
    for name, noise in (("a", 3.0), ("b", 6.0)):
        sides.append([read_test_predictions(model_run(tmp_path, f"{name}-rg-ball", "rg-ball", truth["fisv-tes"], noise)),
                      read_test_predictions(model_run(tmp_path, f"{name}-rg-hoop", "rg-hoop", truth["fisv-pcs"], noise,
                                                      ids=other_ids))])
    result = compare_runs(*sides, n_boot=100)
    assert not result.videos_shared and [row.label for row in result.rows] == ["rg-ball", "rg-hoop", AVERAGE_LABEL]
    assert "drawn per benchmark" in render_comparison(result)


def test_the_report_names_the_runs_and_every_figure(tmp_path, truth):
    a = read_test_predictions(model_run(tmp_path, "a-fisv-tes", "fisv-tes", truth["fisv-tes"], 2.0))
    b = read_test_predictions(model_run(tmp_path, "b-fisv-tes", "fisv-tes", truth["fisv-tes"], 9.0))
    result = compare_runs([a], [b], n_boot=100, level=0.9)
    (row,) = result.rows
    text = render_comparison(result)
    assert str(a.run) in text and str(b.run) in text and "100 resamples, seed 0" in text
    assert f"| fisv-tes | {row.a:.3f} | {row.b:.3f} | {row.difference:+.3f} | [{row.low:+.3f}, {row.high:+.3f}] |" in text
    assert "90 % interval" in text
    data = result.as_dict()
    assert data["rows"][0]["a_minus_b"] == pytest.approx(row.difference) and data["n_boot"] == 100


def test_resamples_with_an_undefined_spearman_are_left_out_and_counted(tmp_path):
    true = np.array([1.0, 1.0, 1.0, 2.0])  # a quarter of the draws of 4 videos has every truth equal
    ids = ["a", "b", "c", "d"]
    a = read_test_predictions(model_run(tmp_path, "a-x", "x", true, 0.5, ids=ids))
    b = read_test_predictions(model_run(tmp_path, "b-x", "x", true, 2.0, ids=ids))
    result = compare_runs([a], [b], n_boot=400)
    assert 0 < result.n_undefined < 400 and "left out" in render_comparison(result)


@pytest.mark.parametrize("problem, message", [
    ("other videos", "different test videos or true scores"),
    ("other benchmark", "cover different benchmarks"),
    ("two tes runs", "are both fisv-tes runs"),
])
def test_runs_that_cannot_be_paired_are_refused(tmp_path, truth, problem, message):
    a = read_test_predictions(model_run(tmp_path, "a-fisv-tes", "fisv-tes", truth["fisv-tes"], 3.0))
    if problem == "other videos":
        b = [read_test_predictions(model_run(tmp_path, "b-fisv-tes", "fisv-tes", truth["fisv-tes"] + 1, 3.0))]
    elif problem == "other benchmark":
        b = [read_test_predictions(model_run(tmp_path, "b-fisv-pcs", "fisv-pcs", truth["fisv-pcs"], 3.0))]
    else:
        b = [read_test_predictions(model_run(tmp_path, f"b{k}-fisv-tes", "fisv-tes", truth["fisv-tes"], 3.0))
             for k in range(2)]
    with pytest.raises(DataError, match=message):
        compare_runs([a], b, n_boot=10)


def test_bad_prediction_files_are_named(tmp_path, truth):
    run = model_run(tmp_path, "a-fisv-tes", "fisv-tes", truth["fisv-tes"], 3.0)
    path = run / "seed-1" / "predictions.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5] + [lines[5].rsplit(",", 1)[0] + ",oops"] + lines[6:]) + "\n")
    with pytest.raises(DataError, match=r"seed-1/predictions.csv, line 6"):
        read_test_predictions(run)
    path.write_text("\n".join(lines + [lines[4]]) + "\n")
    with pytest.raises(DataError, match=rf"seed-1/predictions.csv, line {len(lines) + 1}: test video 'v002' appears twice"):
        read_test_predictions(run)
    path.write_text("\n".join(lines[:1] + [f"test,{i},{t},7.0" for i, t in zip(IDS, truth["fisv-tes"])]) + "\n")
    with pytest.raises(DataError, match=r"seed-1/predictions.csv: the predictions are not finite or all equal"):
        read_test_predictions(run)
    path.write_text("\n".join(lines[:1] + lines[2:-1]) + "\n")  # the last test video missing
    with pytest.raises(DataError, match=r"seed-1/predictions.csv: its test videos or true scores differ from .*seed-0"):
        read_test_predictions(run)
    path.unlink()
    with pytest.raises(DataError, match=r"seed-1/predictions.csv: missing"):
        read_test_predictions(run)


def test_bad_settings_are_value_errors(tmp_path, truth):
    run = read_test_predictions(model_run(tmp_path, "a-fisv-tes", "fisv-tes", truth["fisv-tes"], 3.0))
    with pytest.raises(ValueError, match="n_boot"):
        compare_runs([run], [run], n_boot=0)
    with pytest.raises(ValueError, match="level"):
        compare_runs([run], [run], level=1.0)


def csv_run(tmp_path, name, data, true, noise, ids=IDS):
    """A run of the generic csv benchmark whose config.yaml records ``data`` as its data root."""
    run = model_run(tmp_path, name, "csv", true, noise, ids=ids)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data_root"] = data
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return read_test_predictions(run)


def test_runs_of_one_benchmark_on_different_data_pair_by_data_source(tmp_path, truth):
    other_ids = [f"w{i:03d}" for i in range(40)]
    x, y = (truth["fisv-tes"], IDS), (truth["fisv-pcs"], other_ids)
    a = [csv_run(tmp_path, "a-x", "/d/x", x[0], 3.0, x[1]), csv_run(tmp_path, "a-y", "/d/y", y[0], 3.0, y[1])]
    b = [csv_run(tmp_path, "b-y", "/d/y", y[0], 9.0, y[1]), csv_run(tmp_path, "b-x", "/d/x", x[0], 9.0, x[1])]
    result = compare_runs(a, b, n_boot=50)
    assert [row.label for row in result.rows] == ["csv (/d/x)", "csv (/d/y)", AVERAGE_LABEL]
    assert result.b_runs == (tmp_path / "b-x", tmp_path / "b-y")
    assert result.rows[1].a == pytest.approx(np.mean([spearman(p, a[1].true) for p in a[1].predicted]))
    assert result.n_videos == {"csv (/d/x)": 40, "csv (/d/y)": 40} and not result.videos_shared
    (single,) = compare_runs([a[0]], [csv_run(tmp_path, "moved", "/elsewhere/x", x[0], 9.0, x[1])], n_boot=50).rows
    assert single.label == "csv"  # one run a side: the name alone pairs them, wherever the data lay
    with pytest.raises(DataError, match=r"cover different benchmarks: A csv \(/d/x\), csv \(/d/y\); "
                                        r"B csv \(/d/x\), csv \(/d/z\)"):
        compare_runs(a, [b[1], csv_run(tmp_path, "b-z", "/d/z", y[0], 9.0, y[1])], n_boot=10)
    with pytest.raises(DataError, match=r"a-x and .*a-x2 are both csv \(/d/x\) runs; give one run per benchmark and data set"):
        compare_runs([a[0], csv_run(tmp_path, "a-x2", "/d/x", x[0], 3.0, x[1])], b, n_boot=10)


def test_the_data_source_is_the_root_and_the_options_that_choose_the_labels():
    config = {"data_root": "/d", "benchmark_args": {"labels": "l.csv", "features_dir": "f", "score_type": None}}
    assert data_source(config) == "/d, labels=l.csv"
    assert data_source({"benchmark_args": {"n_test": 50}}) == "n_test=50" and data_source({}) == ""
