"""Feature extraction on Ray workers (``aqakit extract --workers N [--ray-address ADDR]``).

:func:`ray_runner` gives :func:`aqakit.video.extract.extract_folder` a runner that sends the videos
to a pool of Ray actors, each holding one copy of the backbone, and hands their features back to
this process as they finish. This process (the driver) alone writes the feature folder, through
the same manifest, lock and atomic writes as single-process extraction, so the folder is the same
and stays resumable after Ctrl-C or a kill. The driver ships the backbone it loaded (network and
weights, through Ray's object store): workers need no weights file, only the video paths.

A worker that dies (the out-of-memory killer, a lost node) is replaced and its video retried, up
to :data:`ATTEMPTS` tries; then the video fails like one that cannot be decoded and the others go
on. Without an address Ray starts on this machine for the run (its local mode) and stops after;
an address is checked first and fails in one line within ``connect_timeout`` seconds when no Ray
cluster answers there. The only module of aqakit that imports Ray, when a runner is made.
docs/video.md, "Extraction on several workers / a Ray cluster".
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, Mapping

import torch

from aqakit.errors import AqakitError, ConfigError, DataError, one_line_reason
from aqakit.ray_address import DEFAULT_CONNECT_TIMEOUT, check_ray_address, host_and_port
from aqakit.video.backbone import ClipBackbone
from aqakit.video.decode import DecodeOptions
from aqakit.video.extract import VideoFeatures, VideoOutcome, VideoRunner, extract_stream_video
from aqakit.video.isolated import DEFAULT_DECODE_TIMEOUT

#: Tries per video when its worker dies while extracting it (each on a new worker).
ATTEMPTS = 3



@dataclass(frozen=True)
class RayWorkers:
    """Where and how extraction workers run.

    Attributes:
        workers: Ray actors, each with one copy of the backbone, extracting one video at a time.
        address: a running cluster (``HOST:PORT`` of its head, ``ray://HOST:PORT`` for Ray Client,
            or ``auto``); None starts Ray on this machine with ``workers * cpus_per_worker`` CPUs.
        cpus_per_worker: CPUs each worker reserves, and its torch threads.
        device: the workers' device (``cpu`` when None); ``cuda`` makes each worker reserve one GPU.
        connect_timeout: seconds for the cluster at ``address`` to answer.
    """

    workers: int = 2
    address: str | None = None
    cpus_per_worker: int = 1
    device: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        if self.workers < 1 or self.cpus_per_worker < 1:
            raise ConfigError(f"--workers and --cpus-per-worker must be at least 1, got {self.workers} and "
                              f"{self.cpus_per_worker}")
        if not self.connect_timeout > 0:
            raise ConfigError(f"the Ray connection timeout must be a positive number of seconds, got {self.connect_timeout}")

    @property
    def gpus_per_worker(self) -> int:
        return 1 if (self.device or "cpu").startswith("cuda") else 0


def import_ray() -> ModuleType:
    """The ``ray`` module; ConfigError naming the extra to install when it is missing."""
    try:
        import ray
    except ImportError:
        raise ConfigError("extraction on several workers (--workers, --ray-address) needs Ray: "
                          "pip install 'aqakit[ray]'") from None
    return ray


def ray_runner(
    backbone: ClipBackbone, clip_len: int, options: DecodeOptions, batch_size: int, workers: RayWorkers, *,
    masks_dir: Path | None = None, on_clips: Callable[[int], None] | None = None,
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT,
) -> VideoRunner:
    """A runner for :func:`~aqakit.video.extract.extract_folder` extracting on Ray ``workers`` (the
    foreground stream with ``masks_dir``, which the workers read, like the videos, at its path).

    Ray starts (or is attached to) only when there is a video to extract, and stops when the run
    ends, however it ends; a Ray session the caller already started is used and left running.
    ``backbone`` is moved to the CPU and shipped to the workers; ``on_clips`` is called with a
    video's clip count when its features arrive.

    Raises:
        ConfigError: Ray is not installed, or no Ray cluster answers at the address within its
            timeout; (when the runner starts) the cluster has fewer CPUs or GPUs than the workers need.
    """
    ray = import_ray()
    if workers.address and workers.address != "auto":
        host_and_port(workers.address)
        if not ray.is_initialized():  # (a running session is used as it is)
            check_ray_address(workers.address, workers.connect_timeout)  # before any work

    def run(videos: Mapping[str, Path], started: Callable[[str], None]) -> Iterator[VideoOutcome]:
        if not videos:
            return
        with _ray_session(ray, workers):
            actor_class = ray.remote(num_cpus=workers.cpus_per_worker, num_gpus=workers.gpus_per_worker)(ExtractionWorker)
            shipped = [ray.put(backbone.to("cpu"))]  # in a list: each worker fetches it from the object store

            def start_worker():
                return actor_class.remote(shipped, clip_len, options, batch_size, masks_dir, decode_timeout,
                                          workers.device, workers.cpus_per_worker)

            yield from _spread(ray, videos, start_worker, min(workers.workers, len(videos)), started, on_clips)

    return run


def _spread(ray: ModuleType, videos: Mapping[str, Path], start_worker: Callable[[], object], n_workers: int,
            started: Callable[[str], None], on_clips: Callable[[int], None] | None) -> Iterator[VideoOutcome]:
    """Keep each of ``n_workers`` actors busy with one video, in ``videos``' order, and yield each
    outcome as it arrives (its actor has the next video by then). A video whose actor dies goes to a
    new actor, :data:`ATTEMPTS` times in all; the actors are killed at the end, however it ends."""
    waiting = iter(videos.items())
    running: dict = {}  # the result's object ref -> (video id, its actor)
    tries = dict.fromkeys(videos, 0)
    actors: list = []

    def new_actor():
        actors.append(start_worker())
        return actors[-1]

    def give(actor, vid: str | None = None) -> None:
        """Start ``vid`` (default: the next waiting video, if any) on ``actor``."""
        if vid is None:
            vid = next(waiting, (None, None))[0]
        if vid is not None:
            tries[vid] += 1
            started(vid)
            running[actor.extract.remote(vid, str(videos[vid]))] = (vid, actor)

    try:
        for _ in range(n_workers):
            give(new_actor())
        while running:
            [done], _ = ray.wait(list(running), num_returns=1)
            vid, actor = running.pop(done)
            try:
                result: VideoFeatures | AqakitError = ray.get(done)
            except ray.exceptions.RayActorError as exc:
                ray.kill(actor)
                if tries[vid] < ATTEMPTS:
                    give(new_actor(), vid)
                    continue
                actor = new_actor()
                result = DataError(f"{videos[vid]}: the extraction worker died {ATTEMPTS} times while extracting this "
                                   f"video ({one_line_reason(exc)[:300]}); it may need more memory than a worker has")
            if isinstance(result, VideoFeatures) and on_clips:
                on_clips(result.timing.clips)
            give(actor)
            yield vid, result
    finally:
        for actor in actors:
            ray.kill(actor)


class ExtractionWorker:
    """A Ray actor's state: one backbone on its device; extracts one video per call."""

    def __init__(self, backbone: list, clip_len: int, options: DecodeOptions, batch_size: int,
                 masks_dir: Path | None, decode_timeout: float, device: str | None, threads: int) -> None:
        """``backbone``: ``[object ref of the ClipBackbone]``, the driver's copy in Ray's object store."""
        import ray

        torch.set_num_threads(threads)
        self.backbone: ClipBackbone = ray.get(backbone[0]).to(device or "cpu")
        self.clip_len, self.options, self.batch_size = clip_len, options, batch_size
        self.masks_dir, self.decode_timeout = masks_dir, decode_timeout

    def extract(self, vid: str, path: str) -> VideoFeatures | AqakitError:
        """Video ``vid``'s features, or the error that made it fail (returned, so Ray does not wrap it)."""
        try:
            return extract_stream_video(vid, Path(path), self.backbone, self.clip_len, self.options, self.batch_size,
                                        self.masks_dir, decode_timeout=self.decode_timeout)
        except AqakitError as exc:
            return exc


@contextlib.contextmanager
def _ray_session(ray: ModuleType, workers: RayWorkers) -> Iterator[None]:
    """Ray attached to ``workers.address`` or started locally for the block, then shut down; an
    already started session is used and left as it is."""
    if ray.is_initialized():
        _check_resources(ray, workers)
        yield
        return
    local_cpus = None if workers.address else workers.workers * workers.cpus_per_worker
    try:
        ray.init(address=workers.address or "local", num_cpus=local_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {workers.address}" if workers.address else "a local Ray instance"
        raise ConfigError(f"cannot start or attach to {where}: {one_line_reason(exc)}") from None
    try:
        _check_resources(ray, workers)
        yield
    finally:
        ray.shutdown()


def _check_resources(ray: ModuleType, workers: RayWorkers) -> None:
    """ConfigError when the cluster has fewer CPUs or GPUs than all workers reserve (they would wait forever)."""
    resources = ray.cluster_resources()
    for name, each in (("CPU", workers.cpus_per_worker), ("GPU", workers.gpus_per_worker)):
        if each and resources.get(name, 0) < workers.workers * each:
            raise ConfigError(f"{workers.workers} workers need {workers.workers * each} {name}s, and the Ray cluster "
                              f"has {resources.get(name, 0):g}; use fewer --workers")
