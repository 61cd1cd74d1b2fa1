"""The one results table: rendered from run records and a spec; the README's copy is the generated one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from aqakit.errors import ConfigError, DataError
from aqakit.results_table import END_MARKER, START_MARKER, read_table, write_into
from runs import write_run

ROOT = Path(__file__).resolve().parents[1]


def _spec(tmp_path, rows, average="average"):
    spec = {"records": "runs", "columns": {"fisv-tes": "TES", "fisv-pcs": "PCS"}, "rows": rows}
    if average:
        spec["average"] = average
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_cells_are_seed_means_with_the_fisher_z_average_and_the_paper_apart(tmp_path):
    (tmp_path / "runs").mkdir()
    write_run(tmp_path / "runs", "a-tes", "fisv-tes", [0.5, 0.7], epochs=100)
    write_run(tmp_path / "runs", "a-pcs", "fisv-pcs", [0.8, 0.8], epochs=100)
    spec = _spec(tmp_path, [{"label": "model a", "runs": {"fisv-tes": "a-tes", "fisv-pcs": "a-pcs"},
                             "paper": {"fisv-tes": 0.9, "fisv-pcs": 0.95, "source": "A, 2024"}}])
    table = read_table(spec).render()
    row = next(line for line in table.splitlines() if line.startswith("| model a"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    expected_average = np.tanh(np.mean([np.mean(np.arctanh([0.5, 0.7])), np.arctanh(0.8)]))
    paper_average = np.tanh(np.mean(np.arctanh([0.9, 0.95])))
    assert cells == ["model a", "0.600 ± 0.141", "0.800 ± 0.000", f"{expected_average:.3f}", "2 × 100",
                     f"0.900 / 0.950 / {paper_average:.3f} (A, 2024)"]


def test_the_papers_own_average_is_shown_when_the_spec_gives_it(tmp_path):
    (tmp_path / "runs").mkdir()
    write_run(tmp_path / "runs", "a-tes", "fisv-tes", [0.5])
    write_run(tmp_path / "runs", "a-pcs", "fisv-pcs", [0.8])
    spec = _spec(tmp_path, [{"label": "a", "runs": {"fisv-tes": "a-tes", "fisv-pcs": "a-pcs"},
                             "paper": {"fisv-tes": 0.712, "fisv-pcs": 0.759, "average": 0.763}}])
    row = next(line for line in read_table(spec).render().splitlines() if line.startswith("| a "))
    assert row.rstrip(" |").endswith("0.712 / 0.759 / 0.763")  # the paper's, not the 0.737 its columns give


def test_a_missing_column_shows_a_dash_and_no_average(tmp_path):
    (tmp_path / "runs").mkdir()
    write_run(tmp_path / "runs", "b-tes", "fisv-tes", [0.4])
    table = read_table(_spec(tmp_path, [{"label": "b", "runs": {"fisv-tes": "b-tes"}}])).render()
    row = next(line for line in table.splitlines() if line.startswith("| b "))
    assert [cell.strip() for cell in row.strip("|").split("|")][1:4] == ["0.400 (one seed)", "–", "–"]


def test_bad_specs_name_the_row(tmp_path):
    (tmp_path / "runs").mkdir()
    write_run(tmp_path / "runs", "c-pcs", "fisv-pcs", [0.4])
    with pytest.raises(DataError, match=r"row 1: .* is a fisv-pcs run, listed under fisv-tes"):
        read_table(_spec(tmp_path, [{"label": "c", "runs": {"fisv-tes": "c-pcs"}}]))
    with pytest.raises(DataError, match=r"row 1: run for unknown column 'rg-ball'"):
        read_table(_spec(tmp_path, [{"label": "c", "runs": {"rg-ball": "c-pcs"}}]))
    with pytest.raises(DataError, match=r"not an aqakit run directory"):
        read_table(_spec(tmp_path, [{"label": "c", "runs": {"fisv-tes": "missing"}}]))


def test_write_into_replaces_only_the_marked_table(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"before\n{START_MARKER}\nold\n{END_MARKER}\nafter\n")
    write_into(page, "| new |")
    assert page.read_text() == f"before\n{START_MARKER}\n| new |\n{END_MARKER}\nafter\n"
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(DataError, match="no results-table markers"):
        write_into(tmp_path / "plain.md", "| new |")


@pytest.mark.parametrize(("spec", "page"), [
    ("docs/results/table.yaml", "README.md"),
    ("docs/results/table.yaml", "docs/results/index.md"),
    ("docs/results/cofinal-ablations.yaml", "docs/results/cofinal-fisv.md"),
])
def test_the_committed_tables_are_the_generated_one(spec, page):
    """The README's and the docs' tables equal what the committed records render (never typed by hand)."""
    generated = read_table(ROOT / spec).render()
    text = (ROOT / page).read_text()
    found = re.search(re.escape(START_MARKER) + r"\n(.*?)\n" + re.escape(END_MARKER), text, re.DOTALL)
    assert found is not None, f"{page} has no generated results table"
    assert found.group(1) == generated


def test_the_command_line_writes_the_table_between_the_markers(tmp_path):
    from typer.testing import CliRunner

    from aqakit.cli import app

    (tmp_path / "runs").mkdir()
    write_run(tmp_path / "runs", "d-tes", "fisv-tes", [0.3])
    spec = _spec(tmp_path, [{"label": "d", "runs": {"fisv-tes": "d-tes"}}], average=None)
    page = tmp_path / "page.md"
    page.write_text(f"{START_MARKER}\n{END_MARKER}\n")
    result = CliRunner().invoke(app, ["results", "--table", str(spec), "--write", str(page)])
    assert result.exit_code == 0, result.output
    assert "| d | 0.300 (one seed) | – | 1 × 200 | – |" in page.read_text()
    refused = CliRunner().invoke(app, ["results", str(tmp_path / "runs"), "--table", str(spec)])
    assert isinstance(refused.exception, ConfigError) and "give no RUNS" in str(refused.exception)


def test_each_row_with_a_paper_figure_says_where_it_stands_against_it(tmp_path):
    (tmp_path / "runs").mkdir()
    write_run(tmp_path / "runs", "a-tes", "fisv-tes", [0.5, 0.7], best=[0.6, 0.8], epochs=100)
    write_run(tmp_path / "runs", "b-pcs", "fisv-pcs", [0.9], epochs=100)  # no per-epoch test curve
    spec = _spec(tmp_path, [
        {"label": "model a", "runs": {"fisv-tes": "a-tes"}, "paper": {"fisv-tes": 0.65, "fisv-pcs": 0.8}},
        {"label": "model b", "runs": {"fisv-pcs": "b-pcs"}, "paper": {"fisv-pcs": 0.85}},
        {"label": "model c", "runs": {"fisv-pcs": "b-pcs"}},
    ])
    lines = read_table(spec).against_the_papers()
    assert lines == [
        "- model a: TES 0.600 honest, 0.700 by the papers' rule, 0.650 published (0.050 below it); "
        "PCS not run here (published 0.800).",
        "- model b: PCS 0.900 honest, 0.850 published (0.050 above it).",
    ]
    assert "\n".join(lines) in read_table(spec).render()
