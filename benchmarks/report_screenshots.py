"""Screenshots of the reports in docs/reports/, made in headless Chromium from small models trained
on the built-in synthetic benchmark (1024-d features, so they score I3D and Fis-V features):

    PYTHONPATH=src python benchmarks/report_screenshots.py [--data ../shared/data] [--out docs/reports]

- ``video-1-clip.png``: MTL-AQA's 21-frame diving sample (one 16-frame I3D clip) scored by a CoFInAl;
- ``video-4-clips.png``: the 79-frame I3D check clip (four clips) scored by a 3-seed GDLT run;
- ``features-fisv-length.png``: one real Fis-V feature file (Video Swin, 1024-d) scored by a
  query decoder, through the same page (``aqakit score FILE.npy``);
- ``run.png``: ``aqakit report`` of a 3-seed GDLT run on the built-in synthetic benchmark as
  ``aqakit train`` runs it (16-d features, which it learns; the 1024-d models barely do).

The models learn the synthetic data, not these videos: the video pages show what the report draws,
not a meaningful score. Nothing of the real data is written under ``--out``, only the screenshots (and
the pages, with ``--keep-html``). Needs PyAV, the I3D weights and Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from aqakit.atomic import atomic_write, atomic_write_text
from aqakit.explain import read_run, render_html, render_run_report
from aqakit.pipeline.score_video import score_features, score_video
from aqakit.train.config import build_config
from aqakit.train.runner import train_run

#: Small runs on the synthetic benchmark: (model, seeds, overrides).
RUNS = {
    "cofinal": (1, {"model.args.n_procedures": 4, "train.epochs": 30}),
    "gdlt": (3, {}),
    "query-decoder": (1, {"model.args.width": 64, "model.args.n_queries": 8, "model.args.n_heads": 2}),
}
#: The synthetic benchmark at the features' dimension; each model's synthetic preset otherwise.
SYNTHETIC = {"benchmark_args.dim": 1024, "benchmark_args.n_train": 200, "benchmark_args.n_test": 60}
#: The window each screenshot is taken in (width, height): tall enough for the whole page.
WINDOWS = {"video-1-clip": (1280, 1480), "video-4-clips": (1280, 1520), "features-fisv-length": (1280, 1400),
           "run": (1280, 1540)}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
                  "--force-device-scale-factor=1"]


def screenshot(page: Path, png: Path, window: tuple[int, int], profile: Path) -> None:
    """Open ``page`` in headless Chromium and save the window as ``png`` (replaced atomically)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    with atomic_write(png, ".png") as partial:
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
                   f"--screenshot={partial.resolve()}", page.resolve().as_uri()]
        subprocess.run(command, check=True, capture_output=True, timeout=180)
    print(f"{png} ({png.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/reports"))
    parser.add_argument("--keep-html", action="store_true", help="Also write the HTML pages under --out.")
    args = parser.parse_args()
    weights = args.data / "i3d" / "i3d_kinetics400_rgb.npz"
    fisv = sorted((args.data / "fisv" / "features").glob("*.npy"))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for model, (seeds, overrides) in RUNS.items():
            train_run(build_config(model, "synthetic", {**SYNTHETIC, **overrides}), work / model, list(range(seeds)))
        fisv_length = fisv[len(fisv) // 2]  # any one file: Fis-V lengths are 124 to 302 clips
        reports = {
            "video-1-clip": score_video(args.data / "mtl-aqa" / "diving_sample.gif", work / "cofinal", weights, backbone="i3d"),
            "video-4-clips": score_video(args.data / "i3d" / "v_CricketShot_g04_c01_rgb.gif", work / "gdlt", weights,
                                         backbone="i3d"),
            "features-fisv-length": score_features(fisv_length, work / "query-decoder"),
        }
        pages = {name: render_html(report) for name, report in reports.items()}
        train_run(build_config("gdlt", "synthetic"), work / "gdlt-demo", [0, 1, 2])
        pages["run"] = render_run_report(read_run(work / "gdlt-demo"))
        for name, html in pages.items():
            page = (args.out if args.keep_html else work) / f"{name}.html"
            atomic_write_text(page, html)
            screenshot(page, args.out / f"{name}.png", WINDOWS[name], work / "chromium-profile")


if __name__ == "__main__":
    main()
