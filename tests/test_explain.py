"""The score report: each model's declared explanations, grade bands, clip influence over any length,
PNG thumbnails, and the page's structure for 1-clip, 4-clip and long inputs (sections present, no
'None'/'nan' text, every plot with axis titles) scored through `aqakit score`."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.explain import clip_influence, render_html, view_parts
from aqakit.explain.images import png_bytes
from aqakit.explain.parts import grade_view, influence_runs
from aqakit.models import create_model, save_checkpoint
from aqakit.pipeline.score_video import score_features
from conftest import run_cli, scoring_exemplars
from test_model_contract import TINY_HPARAMS, tiny_model

#: The number of dimensions each plot kind needs of a part (batch axis removed).
KIND_DIMS = {"bars": 1, "clips": 1, "clip_map": 2, "matrix": 2}


def visible_text(html: str) -> str:
    """The page's text as a reader sees it (tags and the style sheet removed, entities decoded)."""
    text = unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", html, flags=re.S)))
    return re.sub(r"\s+", " ", text)


def section(html: str, name: str) -> str:
    found = re.search(rf'<section id="{name}"[^>]*>(.*?)</section>', html, re.S)
    assert found, f"no section {name}"
    return found.group(1)


def axis_titles(chart: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<text class="axis-title"[^>]*>(.*?)</text>', chart)]


def check_page(html: str) -> str:
    """What every score page must be: self-contained, no None/nan text, two axis titles on every plot;
    returns the visible text."""
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "<script" not in html
    text = visible_text(html)
    assert not re.search(r"\b(None|nan|NaN|inf)\b", text), re.search(r".{40}\b(None|nan|NaN|inf)\b.{40}", text)
    plots = re.findall(r"<svg.*?</svg>", html, re.S)
    for plot in plots:
        titles = axis_titles(plot)
        assert len(titles) == 2 and all(titles), plot[:300]
    return text


@pytest.mark.parametrize("name", sorted(TINY_HPARAMS))
def test_every_model_declares_explanations_that_fit_its_parts(name):
    torch.manual_seed(0)
    model = tiny_model(name, score_scale=ScoreScale(0.0, 10.0)).eval()
    with torch.no_grad():
        prediction = model(torch.randn(1, 7, 8), exemplars=scoring_exemplars(model, 1))
    assert model.explanations, f"{name} declares no explanation"
    for spec in model.explanations:
        assert spec.title and spec.caption and spec.value, spec
        assert spec.item or spec.kind == "clips", spec
        assert spec.part in prediction.parts, f"{name} declares {spec.part}, which its prediction lacks"
        shape = prediction.parts[spec.part].shape[1:]
        assert len(shape) == KIND_DIMS[spec.kind], (spec.part, shape)
        if spec.kind in ("clips", "clip_map"):
            assert shape[-1] == 7, (spec.part, shape)  # over the clips
    views = view_parts(model, prediction)
    assert [v.name for v in views] == [s.part for s in model.explanations]
    drawn = {v.name for v in views}  # never embeddings or loss terms
    assert not drawn & {"query_embeddings", "fine_feature", "attention_kl", "digit_embedding", "interval_logits"}


def test_a_normalised_part_is_shown_on_the_original_scale():
    torch.manual_seed(0)
    model = tiny_model("query-decoder", score_scale=ScoreScale(20.0, 100.0)).eval()
    with torch.no_grad():
        prediction = model(torch.randn(1, 5, 8))
    scores = {v.name: v.values for v in view_parts(model, prediction)}["query_scores"]
    np.testing.assert_allclose(scores, 20.0 + 80.0 * prediction.parts["query_scores"][0].numpy(), rtol=1e-5)


def test_cofinal_without_procedures_draws_grade_attention_over_the_clips():
    model = create_model("cofinal", in_dim=8, score_scale=ScoreScale(0.0, 10.0), use_tfm=False, **TINY_HPARAMS["cofinal"])
    kinds = {spec.part: spec.kind for spec in model.explanations}
    assert kinds["grade_attention"] == "clip_map" and "procedure_attention" in kinds
    assert {s.part: s.kind for s in type(model).explanations}["grade_attention"] == "matrix"  # the class keeps its own


@pytest.mark.parametrize("name", ["gdlt", "cofinal"])
def test_a_grade_models_grade_is_a_band_of_original_scale_scores(name):
    torch.manual_seed(1)
    model = tiny_model(name, score_scale=ScoreScale(20.0, 100.0)).eval()
    with torch.no_grad():
        prediction = model(torch.randn(3, 6, 8))
    for index in range(3):
        grade = grade_view(model, prediction, index)
        assert 0 <= grade.index < grade.count and 20.0 <= grade.low < grade.high <= 100.0
        if name == "gdlt":  # the Likert grade the score rounds to: its band holds the score
            assert grade.low - 1e-4 <= float(prediction.score[index]) <= grade.high + 1e-4
        else:  # the classifier's grade, an equal band of the range
            assert grade.index == int(prediction.parts["grade_index"][index])
            assert grade.high - grade.low == pytest.approx(80.0 * model.config.grade_width, rel=1e-6)


def test_models_without_grades_have_no_band():
    for name in ("query-decoder", "ridge", "cofinal-official"):
        model = tiny_model(name).eval()
        with torch.no_grad():
            prediction = model(torch.randn(1, 6, 8))
        assert grade_view(model, prediction) is None, name


def test_clip_influence_is_the_score_drop_when_a_clip_is_hidden():
    torch.manual_seed(0)
    model = create_model("gdlt", in_dim=6, score_scale=ScoreScale(0.0, 10.0), hidden_dim=16).eval()
    features = torch.randn(5, 6)
    influence = clip_influence(model, features, chunk=2)
    with torch.no_grad():
        full = float(model(features[None]).score[0])
        without_3 = float(model(features[None, [0, 1, 2, 4]]).score[0])
    assert influence.drop.shape == (5,) and list(influence.starts) == [0, 1, 2, 3, 4]
    assert influence.drop[3] == pytest.approx(full - without_3, abs=1e-4)
    assert clip_influence(model, features[:1]) is None  # hiding the only clip leaves nothing to score


def test_a_long_videos_influence_hides_runs_of_clips_covering_every_clip():
    starts, ends = influence_runs(5000, most=96)
    assert len(starts) == 96 and starts[0] == 0 and ends[-1] == 5000 and np.array_equal(starts[1:], ends[:-1])
    assert set(ends - starts) <= {52, 53}
    torch.manual_seed(0)
    model = tiny_model("cofinal", score_scale=ScoreScale(0.0, 10.0)).eval()
    features = torch.randn(300, 8)
    influence = clip_influence(model, features, most=40)
    a, b = int(influence.starts[7]), int(influence.ends[7])
    with torch.no_grad():
        full = float(model(features[None]).score[0])
        hidden = float(model(torch.cat([features[:a], features[b:]])[None]).score[0])
    assert len(influence.drop) == 40 and influence.drop[7] == pytest.approx(full - hidden, abs=1e-4)


def test_a_map_over_thousands_of_clips_is_drawn_in_runs():
    from aqakit.explain import svg

    matrix = np.zeros((3, 5000))
    matrix[1, 4990:] = 1.0
    labels = [f"{i * 0.5:.1f}s" for i in range(5000)]
    drawn = svg.heatmap(matrix, ["a", "b", "c"], labels, "row", "time (s)", "attention")
    cells = re.findall(r"<rect[^>]*><title>([^<]*)</title></rect>", drawn)
    assert len(cells) == 3 * 120
    first = 4958  # the last of 120 runs: clips round(5000 * 119 / 120) to 4999, 10 of them 1
    assert f"b, {labels[first]} to 2499.5s: {10 / (5000 - first):.4g}" in cells
    assert axis_titles(drawn) == ["time (s)", "row"]
    many_rows = svg.heatmap(np.eye(136), [f"query {k + 1}" for k in range(136)], [str(k) for k in range(136)],
                            "query", "query", "similarity")
    assert len(re.findall(r"<rect[^>]*><title>", many_rows)) == 48 * 120  # rows averaged in runs too


def test_a_line_chart_breaks_at_missing_values_and_rings_marked_points():
    from aqakit.explain import svg

    gappy = svg.Series("seed 0", np.arange(5), np.array([1.0, 0.8, np.nan, 0.5, 0.4]), marked=(3,))
    whole = svg.Series("seed 1", np.arange(5), np.array([1.1, 0.9, 0.7, 0.6, 0.55]), svg.PALETTE[1])
    drawn = svg.line_chart([gappy, whole], "epoch", "loss", "selected epoch")
    assert drawn.count("<polyline") == 1 + 2 + 1  # the axes, seed 0 in two pieces, seed 1
    assert drawn.count('class="marked"') == 1 and "seed 0, selected epoch (epoch 3): 0.5<" in drawn
    assert axis_titles(drawn) == ["epoch", "loss"]
    ticks = re.findall(r'text-anchor="middle">([^<]*)</text>', drawn.split('class="axis-title"')[0])
    assert ticks == ["0", "1", "2", "3", "4"]  # whole epochs only
    many = [svg.Series(f"seed {k}", np.arange(3), np.ones(3)) for k in range(12)]
    assert len(set(re.findall(r'<text x="[0-9.]+" y="([0-9.]+)">seed', svg.line_chart(many, "epoch", "loss")))) == 2


def test_an_identity_scatter_shares_one_range_on_both_axes():
    from aqakit.explain import svg

    drawn = svg.scatter([svg.Series("seed 0", np.array([10.0, 20.0]), np.array([40.0, 30.0]))], "true", "predicted", "identity")
    x1, y1, x2, y2 = map(float, re.search(r'class="guide" x1="([-0-9.]+)" y1="([-0-9.]+)" x2="([-0-9.]+)" y2="([-0-9.]+)"',
                                          drawn).groups())
    corners = re.search(r'<polyline points="([0-9.]+),([0-9.]+) [0-9.]+,([0-9.]+) ([0-9.]+),', drawn).groups()
    left, top, bottom, right = map(float, corners)  # the axes' lines
    assert (x1, y1, x2, y2) == (left, bottom, right, top)  # y = x runs corner to corner: one range on both axes
    assert drawn.count("<circle") == 2 and "seed 0: 10, 40<" in drawn


def test_bars_go_up_and_down_from_zero_and_carry_thumbnails():
    from aqakit.explain import svg

    drawn = svg.bars(np.array([0.5, -0.25, 1.0]), ["0.0s", "0.6s", "1.3s"], "time (s)", "score change",
                     images={0: "data:image/png;base64,AA==", 2: "data:image/png;base64,AA=="})
    heights = {t: float(h) for h, t in re.findall(r'height="([0-9.]+)" fill="#[0-9a-f]+"><title>([^<]*)</title>', drawn)}
    assert heights["0.0s: 0.5"] == pytest.approx(heights["0.6s: -0.25"] * 2, rel=0.02)
    assert drawn.count("<image ") == 2 and axis_titles(drawn) == ["time (s)", "score change"]
    assert 'fill="#dc2626"><title>0.6s: -0.25' in drawn  # a negative bar is red


def test_png_thumbnails_decode_to_the_same_pixels():
    av = pytest.importorskip("av", reason="PyAV is not installed")
    import io

    image = np.random.default_rng(0).integers(0, 256, size=(9, 13, 3), dtype=np.uint8)
    with av.open(io.BytesIO(png_bytes(image)), format="png_pipe") as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(decoded, image)


TRAINING_SCORES = [24.0, 31.5, 40.0, 52.0, 60.25, 71.0, 88.0, 95.5]


@pytest.fixture(scope="module")
def scored_runs(tmp_path_factory):
    """Two-seed runs of a tiny GDLT and a tiny CoFInAl (checkpoints recording their training scores)
    and feature files of 1, 4 and 1500 clips."""
    root = tmp_path_factory.mktemp("score")
    for name in ("gdlt", "cofinal"):
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = create_model(name, in_dim=8, score_scale=ScoreScale(20.0, 100.0), **TINY_HPARAMS[name]).eval()
            seed_dir = root / name / f"seed-{seed}"
            save_checkpoint(model, seed_dir / "checkpoint", {"seed": seed, "training_scores": TRAINING_SCORES})
            (seed_dir / "summary.json").write_text("{}")  # finished
    rng = np.random.default_rng(0)
    for clips in (1, 4, 1500):
        np.save(root / f"clips-{clips}.npy", rng.normal(size=(clips, 8)).astype(np.float16))
    return root


@pytest.mark.parametrize(("name", "clips"), [("gdlt", 1), ("gdlt", 4), ("cofinal", 1), ("cofinal", 1500)])
def test_the_page_has_its_sections_and_titled_plots_for_any_length(scored_runs, name, clips):
    report = score_features(scored_runs / f"clips-{clips}.npy", scored_runs / name)
    html = render_html(report)
    text = check_page(html)
    assert re.search(r"<h1>clips-\d+\.npy</h1>", html) and str(scored_runs) not in html.split("<h1>")[1].split("</h1>")[0]
    assert len(report.seed_scores) == 2 and report.seed_scores[0] != report.seed_scores[1]
    lead = visible_text(section(html, "lead"))
    assert f"{report.score:.2f}" in lead and "mean of 2 seeds" in lead
    below = sum(s < report.score for s in TRAINING_SCORES)
    assert f"higher than {100 * below / len(TRAINING_SCORES):.0f} % of the 8 training scores" in lead
    g = report.grade
    assert f"grade is {g.index + 1} of {g.count} , the band of scores {g.low:.4g} to {g.high:.4g}" in lead
    assert len(re.findall(r'class="marker"', section(html, "lead"))) == 2  # each seed's score on the histogram
    influence = section(html, "influence")
    if clips == 1:
        assert "one clip" in visible_text(influence) and "<svg" not in influence
    else:
        bars = re.findall(r"<rect[^>]*><title>([^<]*)</title>", influence)
        assert len(bars) == min(clips, 96)
        assert (bars[0].startswith("clip 1: ") if clips == 4 else bars[0].startswith("clip 1 to clip 16: "))
    parts = section(html, "parts")
    assert parts.count('<figure class="part"') == len(report.parts) > 0
    assert "query_embeddings" not in html and "fine_feature" not in html
    assert "the video's own frame rate" not in text and "read from the file as they are" in text


def test_aqakit_score_takes_a_feature_file_and_writes_the_page(scored_runs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "report.html"
    status, printed, err = run_cli(monkeypatch, capsys, "score", scored_runs / "clips-4.npy", "--checkpoint",
                                   scored_runs / "gdlt", "--report", out)
    assert status == 0, err
    assert "mean of 2 seeds" in printed and "grade" in printed and "report written to" in printed
    check_page(out.read_text())
    status, _, err = run_cli(monkeypatch, capsys, "score", scored_runs / "missing.npy", "--checkpoint", scored_runs / "gdlt")
    assert status != 0 and "missing.npy" in err and "Traceback" not in err
    status, _, err = run_cli(monkeypatch, capsys, "score", scored_runs / "clips-4.npy", "--checkpoint", scored_runs / "gdlt",
                             "--masks", tmp_path)
    assert status == 2 and err.count("\n") == 1 and "is a feature file, scored as it is" in err  # not silently ignored


def test_an_old_checkpoint_without_training_scores_says_so(tmp_path):
    model = create_model("gdlt", in_dim=8, score_scale=ScoreScale(0.0, 10.0), **TINY_HPARAMS["gdlt"]).eval()
    save_checkpoint(model, tmp_path / "checkpoint", {"seed": 0})
    np.save(tmp_path / "v.npy", np.ones((3, 8), np.float32))
    html = render_html(score_features(tmp_path / "v.npy", tmp_path / "checkpoint"))
    lead = visible_text(section(html, "lead"))
    assert "does not record its training scores" in lead and "<svg" not in section(html, "lead")
    check_page(html)


def test_training_stores_the_sorted_training_scores_with_each_checkpoint(tmp_path):
    from aqakit.models import load_checkpoint
    from aqakit.train.config import build_config
    from aqakit.train.data import read_data, seed_splits
    from aqakit.train.runner import train_run

    config = build_config("gdlt", "synthetic", {"benchmark_args.n_train": 24, "benchmark_args.n_test": 8,
                                                "benchmark_args.dim": 8, "train.epochs": 1, "train.batch_size": 8,
                                                "train.crop_len": 4, "model.args.hidden_dim": 8, "train.select": "best-val"})
    train_run(config, tmp_path / "run", [0])
    _, meta = load_checkpoint(tmp_path / "run")
    fitted_on = seed_splits(read_data(config), config, 0).train.scores  # the training part, validation carved off
    assert meta["info"]["training_scores"] == sorted(fitted_on.tolist()) and len(fitted_on) < 24
