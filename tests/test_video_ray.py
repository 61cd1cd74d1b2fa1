"""Extraction on Ray workers (`aqakit extract --workers N`, :mod:`aqakit.video.distributed`) on Ray's
local mode: the folder is byte for byte the one single-process extraction writes, a video whose
worker dies is retried on a new worker (and fails alone after every try), Ctrl-C leaves a folder
the same command finishes, an address where no cluster answers fails in one line, and a missing Ray
names the extra to install."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'aqakit[ray]')")

from conftest import run_cli  # noqa: E402
from videos import write_video  # noqa: E402

from aqakit.errors import ConfigError  # noqa: E402
from aqakit.video.distributed import ATTEMPTS, RayWorkers, ray_runner  # noqa: E402
from aqakit.video.extract import extract_folder, find_videos  # noqa: E402
from aqakit.video.i3d import I3DBackbone  # noqa: E402
from aqakit.video.manifest import read_manifest  # noqa: E402

IDS = ["a", "b", "c", "d"]
CLIP_LEN = 4


class DyingBackbone(I3DBackbone):
    """I3D whose worker process exits (as if the out-of-memory killer struck) when it encodes a batch
    of ``clips`` clips, the first ``deaths`` times (counted by files in ``record``, shared by all workers)."""

    def configure(self, clips: int, deaths: int, record: Path) -> "DyingBackbone":
        self.dying_clips, self.deaths, self.record = clips, deaths, record
        return self

    def encode(self, clips: np.ndarray) -> np.ndarray:
        if len(clips) == self.dying_clips and len(list(self.record.iterdir())) < self.deaths:
            (self.record / f"death-{os.getpid()}").touch()
            os._exit(1)
        return super().encode(clips)


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for vid, frames in zip(IDS, (8, 12, 9, 16)):  # 2, 3, 2, 4 clips: only d makes a batch of 4
        write_video(folder / f"{vid}.mp4", frames)
    return folder


@pytest.fixture(scope="module")
def options(backbone):
    return backbone.weights.transform.decode_options(size=32)


@pytest.fixture(scope="module")
def reference(videos, backbone, options, tmp_path_factory) -> dict[str, bytes]:
    """Every file of the folder a single-process extraction writes, by name."""
    out = tmp_path_factory.mktemp("reference") / "features"
    report = extract_folder(find_videos([videos]), backbone, out, CLIP_LEN, options)
    assert report.written == IDS
    return folder_files(out)


def folder_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module", autouse=True)
def one_thread_like_the_workers():
    """Extraction in this process on one torch thread, as each worker (``cpus_per_worker`` 1) runs:
    the folders are then the same bit for bit. On other thread counts the arrays differ by float
    rounding only (docs/video.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def stop_ray_at_the_end():
    yield
    ray.shutdown()


@pytest.fixture
def local_ray():
    """Ray on this machine, started once for the tests that share it (the runner uses a running session)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")


@pytest.fixture
def no_ray():
    """No Ray session in this process: the runner starts (or attaches) its own."""
    ray.shutdown()


def on_two_workers(backbone, options, videos, out, **kwargs):
    runner = ray_runner(backbone, CLIP_LEN, options, 8, RayWorkers(workers=2))
    return extract_folder(find_videos([videos]), backbone, out, CLIP_LEN, options, runner=runner, **kwargs)


def test_two_workers_write_the_folder_one_process_writes(local_ray, videos, backbone, options, reference, tmp_path):
    out = tmp_path / "features"
    statuses: list[tuple[str, str]] = []
    report = on_two_workers(backbone, options, videos, out, on_video=lambda path, status: statuses.append((path.stem, status)))
    assert sorted(report.written) == IDS and not report.failed
    assert report.timing.clips == 2 + 3 + 2 + 4
    assert folder_files(out) == reference  # every array bit for bit, and manifest.json byte for byte
    assert sorted(statuses) == sorted([(vid, "extracting") for vid in IDS] + [(vid, "written") for vid in IDS])
    again = on_two_workers(backbone, options, videos, out)
    assert again.skipped == IDS and not again.written


def test_a_video_whose_worker_dies_is_extracted_again_on_a_new_worker(local_ray, videos, weights_file, options,
                                                                      reference, tmp_path):
    record = tmp_path / "deaths"
    record.mkdir()
    dying = DyingBackbone.from_weights(weights_file, "cpu").configure(clips=4, deaths=1, record=record)
    report = on_two_workers(dying, options, videos, tmp_path / "features")
    assert len(list(record.iterdir())) == 1  # d's first worker did die
    assert sorted(report.written) == IDS and not report.failed
    assert folder_files(tmp_path / "features") == reference


def test_a_video_that_kills_every_worker_fails_alone(local_ray, videos, weights_file, options, reference, tmp_path):
    record = tmp_path / "deaths"
    record.mkdir()
    dying = DyingBackbone.from_weights(weights_file, "cpu").configure(clips=4, deaths=ATTEMPTS, record=record)
    out = tmp_path / "features"
    report = on_two_workers(dying, options, videos, out)
    assert len(list(record.iterdir())) == ATTEMPTS
    assert sorted(report.written) == ["a", "b", "c"]
    [(path, reason)] = report.failed.items()
    assert path.endswith("d.mp4") and f"the extraction worker died {ATTEMPTS} times" in reason and "\n" not in reason
    assert read_manifest(out)["failed"]["d"]["reason"] == reason
    for vid in ["a", "b", "c"]:
        assert (out / f"{vid}.npy").read_bytes() == reference[f"{vid}.npy"]


#: `aqakit extract ARGS` in which the driver takes a second over each feature file after the first,
#: so that a signal sent once the first video is recorded lands in the middle of the run.
SLOW_DRIVER = """
import sys, time
import numpy as np
from aqakit.cli import main

save, saved = np.save, []

def slow_save(file, array):
    if saved:
        time.sleep(1.0)
    save(file, array)
    saved.append(file)

np.save = slow_save
sys.argv = ["aqakit", *sys.argv[1:]]
main()
"""


def extract_args(videos: Path, weights: Path, out: Path, *more: str) -> list[str]:
    return ["extract", str(videos), "--weights", str(weights), "--out", str(out), "--clip-len", str(CLIP_LEN),
            "--size", "32", *more]


def test_ctrl_c_leaves_a_folder_the_same_command_finishes(local_ray, videos, weights_file, backbone, options, reference, tmp_path):
    out = tmp_path / "features"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen([sys.executable, "-c", SLOW_DRIVER, *extract_args(videos, weights_file, out, "--workers", "2")],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (out.is_dir() and (read_manifest(out) or {}).get("videos")) and child.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr  # the status of an interrupted command
    manifest = read_manifest(out)
    done = sorted(manifest["videos"])
    assert done and len(done) < len(IDS)  # stopped in the middle
    assert not [p for p in out.iterdir() if ".partial" in p.name]
    for vid in done:
        assert (out / f"{vid}.npy").read_bytes() == reference[f"{vid}.npy"]
    report = on_two_workers(backbone, options, videos, out)  # the same extraction again, here
    assert report.skipped == done and sorted(report.written) == sorted(set(IDS) - set(done))
    assert folder_files(out) == reference


def test_an_address_where_nothing_listens_fails_in_one_line(no_ray, videos, weights_file, tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:  # a free port, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, _, err = run_cli(monkeypatch, capsys,
                             *extract_args(videos, weights_file, tmp_path / "features", "--ray-address", f"127.0.0.1:{port}"))
    assert status == 2 and f"no Ray cluster answered at 127.0.0.1:{port} within 10 s" in err
    assert len(err.strip().splitlines()) == 1 and "ray start --head" in err
    assert not ray.is_initialized()


def test_an_address_that_never_answers_fails_within_the_timeout(no_ray, backbone, options):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(ConfigError, match=f"no Ray cluster answered at {address} within 0.5 s"):
            ray_runner(backbone, CLIP_LEN, options, 8, RayWorkers(2, address, connect_timeout=0.5))
    assert time.monotonic() - start < 5  # bounded by the timeout, not by Ray's minutes of retries


def test_a_malformed_address_is_refused_before_any_work(backbone, options):
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        ray_runner(backbone, CLIP_LEN, options, 8, RayWorkers(2, "head-node"))


def test_without_ray_workers_name_the_extra_and_one_worker_needs_no_ray(videos, weights_file, reference, tmp_path,
                                                                        monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    status, _, err = run_cli(monkeypatch, capsys, *extract_args(videos, weights_file, tmp_path / "a", "--workers", "2"))
    assert status == 2 and "pip install 'aqakit[ray]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()
    status, out, err = run_cli(monkeypatch, capsys, *extract_args(videos, weights_file, tmp_path / "b", "--workers", "1"))
    assert status == 0, err
    assert folder_files(tmp_path / "b") == reference


def test_the_command_line_does_not_import_ray():
    code = "import sys, aqakit.cli, aqakit.video.extract; print('ray' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert run.stdout.strip() == "False", run.stderr


def test_the_foreground_stream_on_two_workers_is_the_one_process_stream(local_ray, videos, backbone, options, tmp_path):
    from aqakit.video.masks import mask_folder
    from test_video_masks import box_masks

    files = find_videos([videos])
    mask_folder(files, tmp_path / "masks", options, make=box_masks, settings={"masks": "left half (test)"})
    alone = extract_folder(files, backbone, tmp_path / "alone", CLIP_LEN, options, masks_dir=tmp_path / "masks")
    runner = ray_runner(backbone, CLIP_LEN, options, 8, RayWorkers(workers=2), masks_dir=tmp_path / "masks")
    spread = extract_folder(files, backbone, tmp_path / "spread", CLIP_LEN, options, masks_dir=tmp_path / "masks",
                            runner=runner)
    assert alone.written == IDS and sorted(spread.written) == IDS
    assert folder_files(tmp_path / "spread") == folder_files(tmp_path / "alone")
