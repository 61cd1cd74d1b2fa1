"""The GPU figures of the results table (docs/results/gpu.md) in two timed steps, for a lent GPU.

    python benchmarks/gpu_results.py bench --out OUT            # aqakit bench --device cuda, every model,
                                                                #   and the 8-seed ensemble speed-up
    python benchmarks/gpu_results.py train --data ../shared/data --out OUT --minutes 7.5

``bench`` measures every registered model on the synthetic benchmark with ``aqakit bench --device
cuda`` and 8 seeds sequentially against one ``--ensemble`` (benchmarks/ensemble_speed.py), writing
``OUT/bench.jsonl``; it also trains every model for two epochs on CUDA (an ensemble where the model
allows one), so a CUDA-only failure shows before the long step.

``train`` runs the Fis-V runs of the results table at once, as parallel ``aqakit train`` processes:
- the query decoder, 5 seeds of 100 epochs (the preset's; the paper gives none), each seed its own
  process (the batched ensemble of this model runs out of memory), in the GPU's ``auto`` precision
  (bf16: in float32 its 6.4 GFLOPs per video would not fit the lease); beside them, validation runs
  of 50, 100 and 150 epochs (seed 0, 20 % of the training videos carved, the test split never read)
  whose final-epoch validation Spearman says whether 100 was the right count
  (``OUT/query-decoder-choice.json``);
- cofinal-official, cofinal (paper preset) and gdlt with their CPU rows' settings, 5 seeds as one
  batched ensemble each, float32.
At ``--minutes`` every unfinished process is stopped. ``OUT/runs.tar.gz`` holds the finished run
folders (no checkpoints), ``OUT/jobs.json`` each job's command, status and wall time, and
``OUT/log.txt`` the tail of each job's output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

AQAKIT = [sys.executable, "-m", "aqakit"]
QD_EPOCHS = (50, 100, 150)  # the candidates of the validation runs
QD_FINAL_EPOCHS = 100  # the preset's, trained at once beside the validation runs (the lease is short)
SEEDS = 5
SCORES = ("tes", "pcs")
FLOAT32 = ["--set", "train.precision=32-true"]  # as the CPU rows; the query decoder trains in the GPU's auto (bf16)
SCRATCH = Path("/tmp/aqakit-gpu")  # run folders and logs; only the few files of --out come back


@dataclass
class Job:
    """One command, its process and how it ended."""

    name: str
    argv: list[str]
    status: str = "pending"
    seconds: float = 0.0
    process: subprocess.Popen | None = field(default=None, repr=False)
    started: float = 0.0


def run_jobs(jobs: list[Job], logs: Path, deadline: float, parallel: int) -> None:
    """Start the jobs in order while fewer than ``parallel`` run; stop what still runs at ``deadline``."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    while any(job.status in ("pending", "running") for job in jobs):
        now = time.time()
        for job in jobs:
            if job.status == "running" and job.process.poll() is not None:
                job.status = "done" if job.process.returncode == 0 else f"failed ({job.process.returncode})"
                job.seconds = now - job.started
                print(f"{job.name}: {job.status} after {job.seconds:.0f} s", flush=True)
        if now > deadline:
            for job in jobs:
                if job.status == "running":
                    job.process.kill()
                    job.process.wait()
                    job.status, job.seconds = "stopped at the deadline", now - job.started
                elif job.status == "pending":
                    job.status = "not started (deadline)"
            break
        running = sum(job.status == "running" for job in jobs)
        for job in jobs:
            if running >= parallel:
                break
            if job.status == "pending":
                log = open(logs / f"{job.name}.log", "w")
                job.process = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
                job.status, job.started = "running", time.time()
                running += 1
                print(f"{job.name}: started: {' '.join(job.argv)}", flush=True)
        time.sleep(1.0)


def final_val_spearman(run_dir: Path) -> float:
    """The last epoch's validation Spearman of seed 0 (what selection ``final`` would keep)."""
    with open(run_dir / "seed-0" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return float(rows[-1]["val_spearman"])


def bench(out: Path) -> None:
    record = str(out / "bench.jsonl")
    jobs = [(Job("bench", AQAKIT + ["bench", "--device", "cuda", "--repeats", "10", "--record", record]), 100)]
    for model in ("gdlt", "cofinal", "query-decoder"):
        jobs.append((Job(f"ensemble-speed-{model}", [
            sys.executable, "benchmarks/ensemble_speed.py", model, "synthetic", "--seeds", "8", "--device", "cuda",
            "--set", "train.epochs=3", "--record", record]), 40))
    for model in ("gdlt", "cofinal", "cofinal-official", "query-decoder", "ridge", "tpt"):
        ensemble = [] if model in ("tpt", "ridge") else ["--ensemble"]
        epochs = ["--epochs", "1"] if model == "ridge" else ["--epochs", "2"]
        jobs.append((Job(f"smoke-{model}", AQAKIT + [
            "train", model, "synthetic", "--seeds", "2", *ensemble, *epochs, "--runs-dir", str(SCRATCH / "smoke"),
            "--name", model, "--overwrite"]), 15))
    for job, limit in jobs:  # one at a time: the timings must not share the GPU
        run_jobs([job], SCRATCH / "logs", deadline=time.time() + limit, parallel=1)
        write_report([job for job, _ in jobs], out)


def train(data: Path, out: Path, minutes: float, parallel: int, extra: list[str]) -> None:
    runs = SCRATCH / "runs"
    fisv = ["--data-root", str(data / "fisv"), "--runs-dir", str(runs)]
    jobs: list[Job] = []
    for score in SCORES:
        for epochs in QD_EPOCHS:  # seed 0 on a carved validation split; the test split is never read
            name = f"query-decoder-validation-{epochs}-fisv-{score}"
            jobs.append(Job(name, AQAKIT + ["train", "query-decoder", f"fisv-{score}", *fisv, "--epochs", str(epochs),
                                            "--select", "best-val", "--set", "train.evaluate_test=false",
                                            "--name", name]))
        for seed in range(SEEDS):  # one process per seed: the batched ensemble of this model runs out of memory
            name = f"query-decoder-fisv-{score}-seed-{seed}"
            jobs.append(Job(name, AQAKIT + ["train", "query-decoder", f"fisv-{score}", *fisv, "--seed-base", str(seed),
                                            "--epochs", str(QD_FINAL_EPOCHS), "--name", name]))
    for name, model_args in {"cofinal-official": ["cofinal-official"], "cofinal": ["cofinal"],
                             "gdlt-same-host": ["gdlt"]}.items():
        for score in SCORES:
            preset = ["--preset", "gdlt-fisv-tes"] if name == "gdlt-same-host" and score == "tes" else []
            jobs.append(Job(f"{name}-fisv-{score}", AQAKIT + [
                "train", *model_args, f"fisv-{score}", *preset, *fisv, "--seeds", str(SEEDS), "--ensemble",
                *FLOAT32, "--name", f"{name}-gpu-fisv-{score}"]))
    for job in jobs:
        job.argv = job.argv + extra
    run_jobs(jobs, SCRATCH / "logs", deadline=time.time() + 60 * minutes, parallel=parallel)
    choices = {}
    for score in SCORES:
        figures = {}
        finished = {job.name for job in jobs if job.status == "done"}
        for epochs in QD_EPOCHS:  # a run stopped at the deadline has no final epoch to compare
            name = f"query-decoder-validation-{epochs}-fisv-{score}"
            if name in finished:
                figures[epochs] = final_val_spearman(runs / name)
        choices[score] = {"final_val_spearman": figures, "chosen_epochs": max(figures, key=figures.get) if figures else None,
                          "trained_epochs": QD_FINAL_EPOCHS}
    (out / "query-decoder-choice.json").write_text(json.dumps(choices, indent=1) + "\n")
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        for run in sorted(runs.iterdir()) if runs.is_dir() else []:
            tar.add(run, arcname=run.name, filter=lambda info: None if "/checkpoint" in info.name or "/resume" in info.name else info)
    write_report(jobs, out)


def write_report(jobs: list[Job], out: Path) -> None:
    (out / "jobs.json").write_text(json.dumps(
        [{"name": job.name, "status": job.status, "seconds": round(job.seconds, 1),
          "command": job.argv} for job in jobs], indent=1) + "\n")
    with open(out / "log.txt", "w") as handle:
        for job in jobs:
            log = SCRATCH / "logs" / f"{job.name}.log"
            lines = log.read_text(errors="replace").splitlines()[-25:] if log.is_file() else []
            handle.write(f"==== {job.name}: {job.status} ({job.seconds:.0f} s)\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("bench", "train"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=7.5, help="train: stop every job after this long")
    parser.add_argument("--parallel", type=int, default=14, help="train: processes at once")
    parser.add_argument("--extra", action="append", default=[],
                        help="train: an argument appended to every aqakit train (a dry run: --extra=--epochs=1)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step == "bench":
        bench(args.out)
    else:
        train(args.data, args.out, args.minutes, args.parallel, args.extra)


if __name__ == "__main__":
    main()
