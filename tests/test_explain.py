"""The report's building blocks: part views by shape, leave-one-clip-out influence, PNG thumbnails, HTML."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from aqakit.data.scale import ScoreScale
from aqakit.explain import PartView, ScoreReport, clip_influence, render_html, view_parts
from aqakit.explain.images import png_bytes
from aqakit.explain.parts import classify
from aqakit.models import create_model
from conftest import scoring_exemplars
from test_model_contract import TINY_HPARAMS, tiny_model


@pytest.mark.parametrize(
    ("shape", "kind"),
    [((), "scalar"), ((7,), "timeline"), ((4,), "bars"), ((136,), "bars"), ((300,), "hidden"), ((3, 7), "clip_map"),
     ((136, 7), "clip_map"), ((4, 5), "matrix"), ((4, 300), "hidden"), ((2, 3, 4), "hidden")],
)
def test_parts_are_shown_by_shape(shape, kind):
    assert classify(shape, n_clips=7) == kind


def test_a_map_over_thousands_of_clips_is_drawn_in_runs():
    from aqakit.explain import svg

    matrix = np.zeros((3, 5000))
    matrix[1, 4990:] = 1.0
    labels = [f"{i * 0.5:.1f}s" for i in range(5000)]
    drawn = svg.heatmap(matrix, ["a", "b", "c"], labels)
    assert drawn.count("<rect") == 3 * 320 and "b, 2492.0s to 2499.5s: 0.625<" in drawn  # the last 16 clips, 10 of them 1
    assert svg.heatmap(np.zeros((2, 5)), ["a", "b"], labels[:5]).count("<rect") == 10


def test_a_line_chart_breaks_at_missing_values_and_rings_marked_points():
    from aqakit.explain import svg

    gappy = svg.Series("seed 0", np.arange(5), np.array([1.0, 0.8, np.nan, 0.5, 0.4]), marked=(3,))
    whole = svg.Series("seed 1", np.arange(5), np.array([1.1, 0.9, 0.7, 0.6, 0.55]), svg.PALETTE[1])
    drawn = svg.line_chart([gappy, whole], "epoch", "loss", "selected epoch")
    assert drawn.count("<polyline") == 1 + 2 + 1  # the axes, seed 0 in two pieces, seed 1
    assert drawn.count('class="marked"') == 1 and "seed 0, selected epoch (epoch 3): 0.5<" in drawn
    assert re.findall(r'class="axis-title"[^>]*>([^<]*)<', drawn) == ["epoch", "loss"]
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


def test_view_parts_drops_the_batch_axis():
    parts = {"grade_weights": torch.tensor([[0.1, 0.9], [0.5, 0.5]]), "weights": torch.rand(2, 5)}
    views = view_parts(parts, n_clips=5, index=1)
    assert [(v.name, v.kind) for v in views] == [("grade_weights", "bars"), ("weights", "timeline")]
    np.testing.assert_allclose(views[0].values, [0.5, 0.5])


def test_clip_influence_is_the_score_drop_when_a_clip_is_hidden():
    torch.manual_seed(0)
    model = create_model("gdlt", in_dim=6, score_scale=ScoreScale(0.0, 10.0), hidden_dim=16).eval()
    features = torch.randn(5, 6)
    influence = clip_influence(model, features, chunk=2)
    with torch.no_grad():
        full = float(model(features[None]).score[0])
        without_3 = float(model(features[None, [0, 1, 2, 4]]).score[0])
    assert influence.shape == (5,)
    assert influence[3] == pytest.approx(full - without_3, abs=1e-4)
    assert clip_influence(model, features[:1]).size == 0


def test_png_thumbnails_decode_to_the_same_pixels():
    av = pytest.importorskip("av", reason="PyAV is not installed")
    import io

    image = np.random.default_rng(0).integers(0, 256, size=(9, 13, 3), dtype=np.uint8)
    with av.open(io.BytesIO(png_bytes(image)), format="png_pipe") as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(decoded, image)


def test_report_renders_every_shape_and_stays_self_contained():
    n_clips = 6
    rng = np.random.default_rng(0)
    report = ScoreReport(
        video="dive <1>.mp4", score=71.25, model="cofinal", checkpoint="runs/x/seed-0/checkpoint",
        score_range=(20.0, 100.0), extraction={"backbone": "i3d", "clip_len": 16},
        parts=[
            PartView("grade_index", "scalar", np.array(2.0)),
            PartView("grade_probs", "bars", np.array([0.1, 0.2, 0.6, 0.1])),
            PartView("clip_weights", "timeline", rng.random(n_clips)),
            PartView("procedure_attention", "clip_map", rng.random((3, n_clips))),
            PartView("grade_attention", "matrix", rng.random((4, 3))),
            PartView("fine_feature", "hidden", rng.random(256)),
        ],
        n_clips=n_clips, clip_seconds=[i * 0.64 for i in range(n_clips)],
        thumbnails={i: np.full((224, 224, 3), 40 * i, np.uint8) for i in range(n_clips)},
    )
    html = render_html(report)
    assert ">71.25<" in html and "dive &lt;1&gt;.mp4" in html
    assert html.count("<svg") == 4 and html.count("data:image/png;base64,") == n_clips
    assert "grade_index" in html and "fine_feature (256,)" in html and "3.2s" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "<script" not in html
    assert report.to_json()["parts"]["grade_probs"] == [0.1, 0.2, 0.6, 0.1]


@pytest.mark.parametrize("name", sorted(TINY_HPARAMS))
def test_every_registered_models_parts_render(name):
    """Any model's parts become views and an HTML page without report code written for that model."""
    torch.manual_seed(0)
    model = tiny_model(name, score_scale=ScoreScale(0.0, 10.0)).eval()
    features = torch.randn(7, 8)
    exemplars = scoring_exemplars(model, 1)
    with torch.no_grad():
        prediction = model(features[None], exemplars=exemplars)
    views = view_parts(prediction.parts, n_clips=7)
    assert [v.name for v in views] == list(prediction.parts)
    influence = PartView("clip_influence", "timeline", clip_influence(model, features, exemplars=exemplars))
    report = ScoreReport(video="v.mp4", score=float(prediction.score[0]), model=name, checkpoint="-",
                         score_range=(0.0, 10.0), extraction={}, parts=[*views, influence], n_clips=7)
    html = render_html(report)
    assert html.count("<svg") >= 1 + sum(v.kind in ("bars", "timeline", "clip_map", "matrix") for v in views)
