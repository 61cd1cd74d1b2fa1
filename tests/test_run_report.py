"""`aqakit report RUN`: one self-contained HTML page per run, read through RunDir from tiny real runs."""

from __future__ import annotations

import csv
import json
import re
import shutil
from html import unescape

import pytest

from conftest import run_cli

from aqakit.errors import RunDirectoryError
from aqakit.explain.run_report import read_run, render_run_report
from aqakit.rundir import RunDir
from aqakit.train.config import build_config
from aqakit.train.runner import train_run

TINY = {"benchmark_args.n_train": 40, "benchmark_args.n_test": 16, "benchmark_args.dim": 8, "train.epochs": 3,
        "train.batch_size": 16, "train.crop_len": 4, "model.args.hidden_dim": 8}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny GDLT runs: ``two`` (seeds 0 and 1, final epoch) and ``val`` (one seed, best-val)."""
    root = tmp_path_factory.mktemp("runs")
    train_run(build_config("gdlt", "synthetic", TINY), root / "two", [0, 1])
    train_run(build_config("gdlt", "synthetic", {**TINY, "train.select": "best-val"}), root / "val", [0])
    return root


@pytest.fixture
def copy_of(runs, tmp_path):
    """A copy of one of the runs, to be changed by a test."""
    return lambda name: shutil.copytree(runs / name, tmp_path / name)


def page_of(path) -> str:
    return render_run_report(read_run(path))


def visible_text(html: str) -> str:
    """The page's text as a reader sees it (tags and the style sheet removed, entities decoded)."""
    return unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", html, flags=re.S)))


def section(html: str, name: str) -> str:
    found = re.search(rf'<(section|header) id="{name}">(.*?)</\1>', html, re.S)
    assert found, f"no section {name}"
    return found.group(2)


def charts(html: str) -> list[tuple[str, str]]:
    """(caption, svg) of every chart."""
    return re.findall(r"<figure><figcaption>(.*?)</figcaption>(<svg.*?</svg>)</figure>", html, re.S)


def axis_titles(chart: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<text class="axis-title"[^>]*>(.*?)</text>', chart)]


def table_rows(html: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", section(html, "seeds"), re.S).group(1)
    return [[unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)] for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]


def table_head(html: str) -> list[str]:
    return [unescape(c) for c in re.findall(r"<th>(.*?)</th>", re.search(r"<thead>(.*?)</thead>", html, re.S).group(1))]


def test_the_header_says_what_was_trained_and_its_test_spearman_as_the_summary_has_it(runs):
    html = page_of(runs / "two")
    summary = RunDir(runs / "two").read_summary()
    header = visible_text(section(html, "run"))
    rho = summary.test["spearman"]
    assert f"{rho['mean']:.3f} ± {rho['std']:.3f}" in header
    for fact in ("gdlt", "synthetic", "2 (0, 1)", "final: the last epoch", summary.per_seed[0].precision):
        assert fact in header
    assert re.search(r"epochs\s+3\b", header)
    assert all(f'id="{name}"' in html for name in ("run", "curves", "predictions", "seeds"))


def test_every_chart_has_axis_titles_with_units_and_the_page_is_self_contained(runs):
    html = page_of(runs / "two")
    drawn = charts(html)
    assert html.count("<svg") == len(drawn) == 6  # mse, triplet, total loss, test Spearman; scatter, residuals
    titles = {unescape(caption): axis_titles(chart) for caption, chart in drawn}
    assert titles["training loss: triplet"] == ["epoch", "loss (triplet)"]
    assert titles["training loss: total"] == ["epoch", "loss (total)"]
    assert [v for k, v in titles.items() if k.startswith("test Spearman")] == [["epoch", "Spearman ρ"]]
    assert titles["predicted against true score"] == ["true score", "predicted score"]
    assert titles["residual against true score"] == ["true score", "residual: predicted − true score"]
    assert "@media print" in html and "<script" not in html and not re.search(r"(src|href)=", html)
    assert "validation Spearman" not in html  # no split carved: no validation chart nor column


def test_the_curves_have_one_line_per_seed_and_ring_each_seeds_selected_epoch(runs):
    html = page_of(runs / "two")
    summaries = {s.seed: s for s in (RunDir(runs / "two").seed(k).read_summary() for k in (0, 1))}
    for caption, chart in charts(section(html, "curves")):
        assert ">seed 0</text>" in chart and ">seed 1</text>" in chart and ">selected epoch</text>" in chart
        rings = re.findall(r'<circle class="marked"[^>]*><title>seed (\d+), selected epoch \(epoch (\d+)\)', chart)
        assert sorted(rings) == [(str(k), str(s.selected_epoch)) for k, s in sorted(summaries.items())], caption
    assert all(s.selected_epoch == 2 for s in summaries.values())  # final: the last of 3 epochs


def test_a_best_val_run_rings_the_epoch_of_best_validation_spearman(runs):
    html = page_of(runs / "val")
    with open(runs / "val" / "seed-0" / "metrics.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    best = max(range(len(history)), key=lambda i: float(history[i]["val_spearman"]))
    captions = {unescape(c): chart for c, chart in charts(html)}
    val_chart = captions["validation Spearman ρ (split carved from the training set)"]
    assert axis_titles(val_chart) == ["epoch", "Spearman ρ"]
    assert f"seed 0, selected epoch (epoch {best})" in val_chart
    assert "best-val: the epoch of best Spearman on the validation split" in visible_text(html)
    assert "validation Spearman ρ" in table_head(html)


def test_the_scatters_hold_every_seeds_test_predictions_and_the_identity_line(runs):
    html = page_of(runs / "two")
    scatter, residuals = (chart for _, chart in charts(section(html, "predictions")))
    with open(runs / "two" / "seed-1" / "predictions.csv", newline="") as handle:
        true, predicted = next((float(r["true_score"]), float(r["predicted_score"])) for r in csv.DictReader(handle))
    assert scatter.count("<title>seed 0: ") == scatter.count("<title>seed 1: ") == TINY["benchmark_args.n_test"]
    assert f"<title>seed 1: {true:.4g}, {predicted:.4g}</title>" in scatter
    assert f"<title>seed 1: {true:.4g}, {predicted - true:.4g}</title>" in residuals
    assert '<line class="guide"' in scatter and "predicted score = true score" in scatter


def test_the_seed_table_has_one_row_per_seed_from_its_summary(runs):
    html = page_of(runs / "two")
    head, rows = table_head(html), table_rows(html)
    assert head == ["seed", "selected epoch", "test Spearman ρ", "95 % interval", "test MAE", "test R-l2 (×100)"]
    assert [row[0] for row in rows] == ["0", "1"]
    for row in rows:
        seed = RunDir(runs / "two").seed(int(row[0])).read_summary()
        low, high = seed.test_spearman_ci95
        assert row[1:] == [str(seed.selected_epoch), f"{seed.test['spearman']:.3f}", f"[{low:.3f}, {high:.3f}]",
                           f"{seed.test['mae']:.3f}", f"{seed.test['rl2']:.3f}"]


def test_missing_values_read_as_a_dash_never_none_or_nan(copy_of):
    run = copy_of("two")
    path = run / "seed-1" / "summary.json"
    summary = json.loads(path.read_text())
    del summary["precision"], summary["selected_epoch"]  # as in summaries written before they were recorded
    summary["test"]["mae"] = float("nan")
    summary["late_swing"] = {"curve": "test_spearman", "last_epochs": 5, "swing": 0.2, "threshold": 0.05, "unstable": True}
    path.write_text(json.dumps(summary))
    (run / "seed-1" / "predictions.csv").unlink()
    html = page_of(run)
    text = visible_text(html)
    assert "None" not in text and not re.search(r"\bnan\b", text, re.I)
    rows = dict(zip(("0", "1"), table_rows(html)))
    head = table_head(html)
    assert rows["1"][head.index("selected epoch")] == rows["1"][head.index("test MAE")] == "–"
    assert rows["0"][head.index("late swing")] == "–"
    assert rows["1"][head.index("late swing")] == "0.200 over the last 5 epochs: unstable (above 0.05)"
    assert '<tr class="unstable"><td>1</td>' in html
    assert "class=\"marked\"" in html and "seed 1, selected epoch" not in html  # only seed 0 has a ring
    precision = RunDir(run).seed(0).read_summary().precision
    assert re.search(rf"precision\s+{precision}, –", visible_text(section(html, "run")))
    assert "<title>seed 1: " not in section(html, "predictions")  # no predictions.csv: no points


def test_a_run_still_training_shows_its_finished_seeds(copy_of):
    run = copy_of("two")
    (run / "summary.json").unlink()
    (run / "seed-1" / "summary.json").unlink()
    html = page_of(run)
    header = visible_text(section(html, "run"))
    assert "1 (0); unfinished, not shown: 1" in header and "(one seed)" in header
    assert [row[0] for row in table_rows(html)] == ["0"]
    (run / "seed-0" / "summary.json").unlink()
    with pytest.raises(RunDirectoryError, match="no finished seed"):
        read_run(run)


def test_the_cli_writes_the_page_into_the_run_and_names_it(runs, copy_of, monkeypatch, capsys):
    run = copy_of("val")
    status, out, err = run_cli(monkeypatch, capsys, "report", run)
    assert status == 0, err
    written = run / "report.html"
    assert str(written) in out
    assert written.read_text(encoding="utf-8") == page_of(run)
    assert sorted(p.name for p in run.iterdir() if "report" in p.name) == ["report.html"]  # no partial file left
    status, _, err = run_cli(monkeypatch, capsys, "report", run)  # its own page is rewritten
    assert status == 0, err
    elsewhere = run.parent / "val.html"
    assert run_cli(monkeypatch, capsys, "report", run, "--out", elsewhere)[0] == 0 and "<svg" in elsewhere.read_text()
    status, _, err = run_cli(monkeypatch, capsys, "report", run, "--out", elsewhere)
    assert status == 2 and "already exists; pass --overwrite" in err


def test_the_cli_names_a_folder_that_is_not_a_run_in_one_line(tmp_path, copy_of, monkeypatch, capsys):
    (tmp_path / "notes").mkdir()
    status, out, err = run_cli(monkeypatch, capsys, "report", tmp_path / "notes")
    assert status == 2 and out == ""
    assert err.strip() == f"error: {tmp_path / 'notes'} is not an aqakit run (no config.yaml)"
    run = copy_of("two")
    for seed in ("seed-0", "seed-1"):
        (run / seed / "summary.json").unlink()
    status, _, err = run_cli(monkeypatch, capsys, "report", run)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "no finished seed" in err
    assert not (run / "report.html").exists()
