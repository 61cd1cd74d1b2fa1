"""``aqakit bench``: how fast each model runs on this machine, and how close that is to its limit.

For every model (its preset for the benchmark, exactly as ``aqakit train`` builds it) one run measures
the figures below. With no benchmark named, each model runs on its built-in synthetic benchmark
(``synthetic``; FineCausal, which reads two streams and stage transitions, ``synthetic-confounded``),
and there is one result per benchmark.

- **parameters** and **FLOPs per video** at the benchmark's median length (``torch.utils.flop_counter``:
  matrix products and attention, 2 FLOPs per multiply-add; element-wise work is not counted); a
  pair model (TPT, FineCausal) is measured as it scores at test time, against its ``n_exemplars`` exemplars;
- **inference latency** per video: batch 1, every clip of the median-length video, the median and
  95th percentile of ``repeats`` timed calls after warm-up, at the stated thread count;
- **batched inference throughput**: the whole test split scored as the engine scores it (videos
  grouped by length, padded batches with masks), videos per second;
- **training throughput** and **epoch time**: a few epochs of the real training engine (the preset's
  batch size and crop length; the first epoch is warm-up and left out), with and without the
  per-epoch test pass;
- **peak memory** of each phase: the process's resident set (RSS, sampled) on CPU — data and
  Python included — or the largest allocation on a GPU;
- the **machine's matmul peak** (fp32 and bf16, square matrix products timed in the same run) and
  the fraction of the fp32 peak that each phase achieves (counted FLOPs / measured seconds).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from aqakit.data.batches import TrainBatches
from aqakit.data.exemplars import ExemplarBatches, Exemplars
from aqakit.errors import ConfigError
from aqakit.models import AQAModel, create_model, is_closed_form, model_class
from aqakit.train.config import RunConfig, build_config
from aqakit.train.data import Splits, read_data
from aqakit.train.evaluate import predict_bank
from aqakit.train.runner import seed_batches, train_run
from aqakit.train.step import batch_loss

DEVICES = ("cpu", "cuda")
MIB = 2**20


@dataclass
class BenchSettings:
    """What to measure and how often.

    Attributes:
        benchmark: benchmark adapter name; None: each model on its built-in synthetic benchmark
            (:func:`benchmark_groups`; no data needed).
        data_root: the benchmark's folder (None for synthetic).
        device: ``cpu`` or ``cuda``.
        threads: torch intra-op threads (None = torch's default).
        repeats: timed calls per latency and throughput figure (after warm-up).
        train_epochs: epochs of the training measurement; the first is warm-up.
        clips: video length of the FLOP and latency figures (None = the benchmark's median).
        overrides: settings applied to every model's preset (``--set``).
    """

    benchmark: str | None = None
    data_root: Path | None = None
    device: str = "cpu"
    threads: int | None = None
    repeats: int = 20
    train_epochs: int = 3
    clips: int | None = None
    overrides: dict[str, Any] | None = None

    def check(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"--device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda: torch sees no CUDA GPU on this machine")
        if self.data_root is not None and self.benchmark is None:
            raise ConfigError(f"--data-root {self.data_root} needs --benchmark: the folder of which benchmark?")
        for name in ("repeats", "train_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.train_epochs < 2:
            raise ConfigError("train_epochs must be at least 2 (the first epoch is warm-up)")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {self.threads}")
        if self.clips is not None and self.clips < 1:
            raise ConfigError(f"--clips must be at least 1, got {self.clips}")


# --- measuring tools -----------------------------------------------------------------------------
def append_result(path: Path, result: dict[str, Any]) -> None:
    """Append ``result`` as one JSON line to ``path`` (a ``benchmarks/results`` file), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(result) + "\n")


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(call: Callable[[], Any], repeats: int, device: str, warmup: int = 2) -> np.ndarray:
    """Seconds of each of ``repeats`` calls of ``call`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    synchronise(device)
    seconds = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        synchronise(device)
        seconds[i] = time.perf_counter() - start
    return seconds


def count_flops(call: Callable[[], Any]) -> int:
    """FLOPs of one call of ``call`` as torch's flop counter sees them (forward and backward).

    Call it with gradients enabled (the counter's module tracker needs autograd; it also keeps
    torch's fused inference kernels, which it would not see inside, out of the way).
    """
    with FlopCounterMode(display=False) as counter:
        call()
    return int(counter.get_total_flops())


def matmul_peak_gflops(dtype: torch.dtype, device: str, min_call_seconds: float = 0.05) -> dict[str, float]:
    """The best GFLOP/s of square ``dtype`` matrix products on ``device``.

    The size doubles from 256 until one product takes ``min_call_seconds`` (so a slow bf16 path
    on a CPU without native bf16 costs a fraction of a second, a fast GPU gets large matrices);
    the rate is the best of a few products at that size.
    """
    size, limit = 256, 16384 if device == "cuda" else 4096
    generator = torch.Generator().manual_seed(0)
    while True:
        left = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
        right = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
        seconds = time_calls(lambda: left @ right, repeats=3, device=device, warmup=1)
        if seconds.min() >= min_call_seconds or size * 2 > limit:
            return {"size": size, "gflops": 2 * size**3 / float(seconds.min()) / 1e9}
        size *= 2


def resident_bytes() -> int | None:
    """This process's resident set size now (Linux /proc), or None where it cannot be read."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """Peak memory over a ``with`` block: sampled RSS on CPU, the allocator's maximum on a GPU.

    Where /proc is unavailable the CPU figure is the process's lifetime maximum (``ru_maxrss``).
    """

    def __init__(self, device: str, interval: float = 0.002) -> None:
        self.device, self.interval = device, interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, resident_bytes() or 0)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        elif resident_bytes() is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated()
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, resident_bytes() or 0)
        else:  # ru_maxrss is in KiB on Linux, bytes on macOS
            scale = 1 if platform.system() == "Darwin" else 1024
            self.peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    @property
    def mib(self) -> float:
        return self.peak_bytes / MIB


# --- one model -------------------------------------------------------------------------------------
def median_video(splits: Splits, clips: int | None) -> tuple[torch.Tensor, str]:
    """(1, L, D) features of the test video of median length (or ``clips`` generated clips) and its name."""
    lengths = np.concatenate([splits.train.lengths, splits.test.lengths])
    if clips is not None:
        generator = torch.Generator().manual_seed(0)
        return torch.randn(1, clips, splits.test.feature_dim, generator=generator), f"{clips} generated clips"
    target = float(np.median(lengths))
    index = int(np.argmin(np.abs(splits.test.lengths - target)))
    return torch.from_numpy(splits.test.features[index]).float()[None], f"test video {splits.test.ids[index]}"


def rate(flops: float, seconds: float, peak_gflops: float) -> dict[str, float]:
    """Achieved GFLOP/s and its fraction of the machine's fp32 matmul peak."""
    gflops = flops / seconds / 1e9
    return {"gflops": gflops, "fraction_of_fp32_peak": gflops / peak_gflops}


def bench_model(config: RunConfig, splits: Splits, settings: BenchSettings, peak_gflops: float) -> dict[str, Any]:
    """Every figure of one model (see the module docstring); ``config`` is its preset."""
    device = settings.device
    torch.manual_seed(0)
    model: AQAModel = create_model(
        config.model.name, in_dim=splits.train.feature_dim, score_scale=splits.scale, **config.model.args
    ).to(device)
    if model.closed_form:  # fitted first, so that it has weights to score with
        model.fit_closed_form(splits.train)
    fitted = model.buffers() if model.closed_form else model.parameters()  # ridge's weights are buffers
    result: dict[str, Any] = {"model": config.model.name, "parameters": sum(p.numel() for p in fitted)}

    model.prepare(splits.train)
    train_batches, held_out, _, pool = seed_batches(model, splits, config.train, seed=0)
    test_batches = held_out["test"][0]

    # Inference: one video, batch 1, every clip (a pair model with its n_exemplars exemplars).
    features, video = median_video(splits, settings.clips)
    features = features.to(device)
    exemplars = None
    if pool is not None:  # the exemplars the first test video is scored with
        exemplars = Exemplars.from_batch(test_batches.attach(test_batches.test_exemplars[:1], torch.Generator()))
        exemplars = exemplars.to(device)
    model.eval()
    flops = count_flops(lambda: model(features, exemplars=exemplars))
    with torch.inference_mode():
        with PeakMemory(device) as memory:
            seconds = time_calls(lambda: model(features, exemplars=exemplars), settings.repeats, device)
    latency = float(np.median(seconds))
    result["inference"] = {
        "video": video, "clips": features.shape[1], "flops": flops,
        "latency_ms_median": 1e3 * latency, "latency_ms_p95": 1e3 * float(np.percentile(seconds, 95)),
        "peak_memory_mib": memory.mib, **rate(flops, latency, peak_gflops),
    }  # fmt: skip

    # Batched inference: the test split as the engine scores it.
    def scored_pass() -> None:
        for batch in test_batches:
            batch = {key: value.to(device) for key, value in batch.items()}
            model(batch["features"], batch["mask"], Exemplars.from_batch(batch))

    pass_flops = count_flops(scored_pass)
    with PeakMemory(device) as memory:
        seconds = time_calls(lambda: predict_bank(model, test_batches, device), max(1, settings.repeats // 4), device,
                             warmup=1)
    pass_seconds = float(np.median(seconds))
    result["batched_inference"] = {
        "videos": len(splits.test), "batch_size": config.train.eval_batch_size,
        "videos_per_second": len(splits.test) / pass_seconds, "peak_memory_mib": memory.mib,
        **rate(pass_flops, pass_seconds, peak_gflops),
    }  # fmt: skip

    # Training: FLOPs of one step (forward, loss, backward) on a real batch, then the engine itself.
    # A closed-form fit (ridge: numpy's SVD) is timed but its FLOPs are not counted.
    flops_per_sample = None if model.closed_form else training_step_flops(model, train_batches, device)
    del model
    with PeakMemory(device) as memory, tempfile.TemporaryDirectory() as folder:
        seed_summary = train_run(config, Path(folder) / "run", [0], device=device)["per_seed"][0]
    timing = seed_summary["timing"]
    samples_per_second = timing["train_samples_per_second"]
    result["training"] = {
        "videos": len(splits.train), "batch_size": config.train.batch_size, "crop_len": config.train.crop_len,
        "precision": seed_summary["precision"], "epochs_measured": timing["epochs_measured"],
        "samples_per_second": samples_per_second,
        "epoch_seconds": timing["train_seconds_per_epoch"],
        "epoch_seconds_with_test_pass": timing["epoch_seconds_with_eval"],
        "flops_per_sample": flops_per_sample, "peak_memory_mib": memory.mib,
        **(rate(flops_per_sample * samples_per_second, 1.0, peak_gflops) if flops_per_sample is not None else {}),
    }  # fmt: skip
    return result


def training_step_flops(model: AQAModel, train_batches: TrainBatches | ExemplarBatches, device: str) -> float:
    """Counted FLOPs per training sample of one step (forward, loss, backward) on a real batch."""
    train_batch = {key: value.to(device) for key, value in next(iter(train_batches)).items()}
    model.train()

    def training_step() -> None:
        batch_loss(model, train_batch)[1].backward()

    return count_flops(training_step) / len(train_batch["score"])


# --- the whole run ---------------------------------------------------------------------------------
def benchmark_groups(models: list[str], benchmark: str | None) -> dict[str, list[str]]:
    """The models measured on each benchmark, in order: every one on ``benchmark``, or (None) each on
    its built-in synthetic benchmark (``AQAModel.synthetic_benchmark``: FineCausal's needs two
    streams and stage transitions, so it is ``synthetic-confounded``).

    Raises:
        ConfigError: an unknown model.
    """
    groups: dict[str, list[str]] = {}
    for name in models:
        groups.setdefault(benchmark or model_class(name).synthetic_benchmark, []).append(name)
    return groups


def run_bench(models: list[str], settings: BenchSettings) -> list[dict[str, Any]]:
    """Measure the machine's matmul peak, then every model in ``models``: one JSON-ready dict per
    benchmark measured on (:func:`benchmark_groups`), each with the models measured on it. Torch's
    thread count is what it was before when it returns (``settings.threads`` holds only meanwhile)."""
    settings.check()
    groups = benchmark_groups(models, settings.benchmark)
    previous = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        peak = {"fp32": matmul_peak_gflops(torch.float32, settings.device),
                "bf16": matmul_peak_gflops(torch.bfloat16, settings.device)}  # fmt: skip
        return [bench_on(benchmark, names, settings, peak) for benchmark, names in groups.items()]
    finally:
        torch.set_num_threads(previous)


def bench_on(benchmark: str, models: list[str], settings: BenchSettings, peak: dict[str, Any]) -> dict[str, Any]:
    """Every model of ``models`` measured on ``benchmark`` (the machine's ``peak`` measured already)."""
    overrides = dict(settings.overrides or {})
    overrides["train.epochs"] = settings.train_epochs
    overrides["train.select"] = "final"
    if settings.data_root is not None:
        overrides["data_root"] = str(Path(settings.data_root).resolve())
    configs = [build_config(name, benchmark, {**overrides, "train.epochs": 1} if is_closed_form(name) else overrides)
               for name in models]
    splits = read_data(configs[0], with_test=True)  # every preset reads the same benchmark
    lengths = np.concatenate([splits.train.lengths, splits.test.lengths])
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    model_results = [bench_model(config, splits, settings, peak["fp32"]["gflops"]) for config in configs]
    return {
        "kind": "aqakit-bench",
        "date": time.strftime("%Y-%m-%d"),
        "machine": describe_machine(settings.device),
        "device": settings.device,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "benchmark": benchmark,
        "videos": {"train": len(splits.train), "test": len(splits.test)},
        "clips": {"median": float(np.median(lengths)), "min": int(lengths.min()), "max": int(lengths.max())},
        "repeats": settings.repeats,
        "matmul_peak": peak,
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0] if load_before is not None else None},
        "models": model_results,
    }


def describe_machine(device: str) -> str:
    """The CPU model (and GPU name) in words."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render_bench(result: dict[str, Any]) -> Table:
    """A rich table of :func:`run_bench`'s result: one column per model."""
    peak = result["matmul_peak"]
    clips = result["clips"]
    table = Table(
        title=f"aqakit bench on {result['benchmark']} — {result['machine']} ({result['device']}, "
        f"{result['torch_threads']} threads, torch {result['torch']})",
        caption=f"matmul peak measured now: fp32 {peak['fp32']['gflops']:.1f} GFLOP/s, bf16 "
        f"{peak['bf16']['gflops']:.1f} GFLOP/s; clips per video: median {clips['median']:g} "
        f"(min {clips['min']}, max {clips['max']}); % = achieved fraction of the fp32 peak; "
        f"1-min load average {_load(result)}",
    )
    table.add_column("")
    for model in result["models"]:
        table.add_column(model["model"], justify="right")

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> None:
        table.add_row(label, *(fmt(model) for model in result["models"]))

    row("parameters (M)", lambda m: f"{m['parameters'] / 1e6:.3f}")
    row("GFLOPs / video", lambda m: f"{m['inference']['flops'] / 1e9:.4f} ({m['inference']['clips']} clips)")
    row("latency, batch 1 (ms)", lambda m: f"{m['inference']['latency_ms_median']:.2f} (p95 {m['inference']['latency_ms_p95']:.2f})")
    row("  GFLOP/s, % of peak", lambda m: _achieved(m["inference"]))
    row("batched inference (videos/s)", lambda m: f"{m['batched_inference']['videos_per_second']:.0f}")
    row("  GFLOP/s, % of peak", lambda m: _achieved(m["batched_inference"]))
    row("training (samples/s)", lambda m: f"{m['training']['samples_per_second']:.0f}")
    row("  GFLOP/s, % of peak", lambda m: _achieved(m["training"]))
    row("epoch (s), + test pass", lambda m: f"{m['training']['epoch_seconds']:.3f}, {m['training']['epoch_seconds_with_test_pass']:.3f}")
    row("  batch, crop, precision", lambda m: f"{m['training']['batch_size']}, {m['training']['crop_len']}, {m['training']['precision']}")
    memory = "RSS" if result["device"] == "cpu" else "max allocated"
    row(f"peak {memory} (MiB): infer, train", lambda m: f"{m['batched_inference']['peak_memory_mib']:.0f}, {m['training']['peak_memory_mib']:.0f}")
    return table


def _achieved(phase: dict[str, Any]) -> str:
    if "gflops" not in phase:
        return "not counted (closed form)"
    return f"{phase['gflops']:.1f}, {100 * phase['fraction_of_fp32_peak']:.1f} %"


def _load(result: dict[str, Any]) -> str:
    load = result["load_average_1min"]
    return "unknown" if load["before"] is None else f"{load['before']:.1f} before, {load['after']:.1f} after"
