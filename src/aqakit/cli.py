"""The ``aqakit`` command line: train, eval, predict, datasets, bench, results, report, compare, extract, score, suite, sweep.

Each command parses its arguments, calls the library (:mod:`aqakit.train`, :mod:`aqakit.pipeline`,
:mod:`aqakit.video` ...) and prints. Every user-caused error (an :class:`~aqakit.errors.AqakitError`)
is printed as one line ``error: ...`` and exits with status 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from aqakit.atomic import atomic_write_text
from aqakit.errors import AqakitError, ConfigError, DataError
from aqakit.metrics import TERMS_NOTE, format_mean_std
from aqakit.video.isolated import DEFAULT_DECODE_TIMEOUT

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Action quality assessment toolkit.", rich_markup_mode="markdown")
console = Console()
err_console = Console(stderr=True)

DECODE_TIMEOUT_HELP = "Seconds the decoder may go without decoding a frame before the video fails (a hung read)."


def check_new_file(path: Path, overwrite: bool) -> None:
    """ConfigError unless ``path`` can be written: absent (or ``overwrite``), in a folder that exists."""
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the folder {path.parent} does not exist")


def print_summary(summary: dict[str, Any]) -> None:
    """The results table of a run (test metrics over seeds, plus the labelled best-test figure)."""
    n_seeds = len(summary["seeds"])
    if "test" in summary:
        _print_test_table(summary, n_seeds)
    else:  # train.evaluate_test=false
        console.print(f"{summary['model']} on {summary['benchmark']}: test split not evaluated (train.evaluate_test=false)")
    if "val" in summary:
        console.print(f"validation Spearman (carved from train): {format_mean_std(summary['val']['spearman'], n_seeds)}")
    _print_left_out(summary.get("left_out", {}))
    unstable = [s for s in summary.get("per_seed", []) if s.get("late_swing", {}).get("unstable")]
    if unstable:
        swing = unstable[0]["late_swing"]
        worst = max(s["late_swing"]["swing"] for s in unstable)
        console.print(
            f"[yellow]unstable:[/] seed(s) {', '.join(str(s['seed']) for s in unstable)}: the {swing['curve'].replace('_', ' ')} "
            f"swung by up to {worst:.3f} over the last {swing['last_epochs']} epochs (more than {swing['threshold']}), so "
            "the final epoch is a draw from that swing; try --select best-val, --set train.ema_decay=0.99 or a lower optim.lr",
            soft_wrap=True,
        )


def _print_left_out(left_out: dict[str, list[str]], where: str = "") -> None:
    """One line per split that left labelled videos out (``allow_missing``), naming them."""
    for split, ids in left_out.items():
        console.print(f"[yellow]left out:[/] {where}{split}: {len(ids)} labelled video(s) without a feature file "
                      f"(benchmark_args.allow_missing): {', '.join(ids)}", highlight=False, soft_wrap=True)


def print_crossval_summary(summary: dict[str, Any]) -> None:
    """The table of a cross-validated run: each fold's test metrics (over seeds), then the Fisher-z mean over folds."""
    n_seeds = len(summary["seeds"])
    label = "best-test (chosen on test!)" if summary["selection"] == "best-test" else summary["selection"]
    table = Table(title=f"{summary['model']} on {summary['benchmark']} — {len(summary['folds'])} fold(s) × "
                        f"{n_seeds} seed(s), {summary['epochs']} epochs, checkpoint {label}")
    for column in ("fold", "test Spearman", "test R-l2 (x100)", "best test epoch (papers' rule)"):
        table.add_column(column, justify="left" if column == "fold" else "right")
    for entry in summary["per_fold"]:
        best = entry.get("best_test_epoch_spearman")
        table.add_row(str(entry["fold"]), *(format_mean_std(entry["test"][metric], n_seeds) for metric in ("spearman", "rl2")),
                      format_mean_std(best, n_seeds) if best else "")
    best = summary.get("best_test_epoch_spearman_fisher_z")
    table.add_row("Fisher-z mean", format_mean_std(summary["test_spearman_fisher_z"], n_seeds), "",
                  format_mean_std(best, n_seeds) if best else "")
    console.print(table)
    console.print(f"[dim]{TERMS_NOTE}[/]", highlight=False, soft_wrap=True)
    for entry in summary["per_fold"]:
        _print_left_out(entry.get("left_out", {}), f"fold {entry['fold']} ")


def _print_test_table(summary: dict[str, Any], n_seeds: int) -> None:
    selection = summary["selection"]
    title = f"{summary['model']} on {summary['benchmark']} — {len(summary['seeds'])} seed(s), {summary['epochs']} epochs"
    table = Table(title=title)
    table.add_column("checkpoint")
    for column in ("test Spearman", "test R-l2 (x100)", "test MAE"):
        table.add_column(column, justify="right")
    label = "best-test (chosen on test!)" if selection == "best-test" else selection
    test = summary["test"]
    table.add_row(label, *(format_mean_std(test[metric], n_seeds) for metric in ("spearman", "rl2", "mae")))
    if "best_test_epoch_spearman" in summary and selection != "best-test":
        best = summary["best_test_epoch_spearman"]
        table.add_row("best test epoch (papers' rule)", format_mean_std(best, n_seeds), "", "")
    console.print(table)
    console.print(f"[dim]{TERMS_NOTE}[/]", highlight=False, soft_wrap=True)


class EpochProgress:
    """A rich progress bar over epochs showing the latest loss and held-out Spearman."""

    def __init__(self, epochs: int, label: str = "") -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[label]}seed {task.fields[seed]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err_console,
        )
        self.epochs, self.label = epochs, label
        self.tasks: dict[int, Any] = {}  # a bar appears with a seed's first epoch: finished seeds of a resumed run get none

    def restart(self, label: str, epochs: int) -> None:
        """New bars from here on, for the run ``label`` of ``epochs`` epochs (``aqakit train auto``'s next run)."""
        self.epochs, self.label, self.tasks = epochs, f"{label} ", {}

    def __enter__(self) -> "EpochProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, seed: int, row: dict[str, float]) -> None:
        if seed not in self.tasks:
            self.tasks[seed] = self.progress.add_task("", total=self.epochs, seed=seed, status="", label=self.label)
        task = self.tasks[seed]
        status = f"loss {row.get('train_loss', float('nan')):.4f}"
        for split in ("val", "test"):
            if f"{split}_spearman" in row:
                status += f"  {split} ρ {row[f'{split}_spearman']:.3f}"
        self.progress.update(task, completed=row["epoch"] + 1, status=status)


class SweepBar:
    """A rich progress bar over a sweep's epochs (every trial and seed), with its finished trials,
    and a line per trial as it finishes (trials already finished when the sweep starts get none).
    The bar appears with the first progress, so a sweep refused before it starts prints only its error."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
                                 TextColumn("{task.fields[trials]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=err_console)
        self.task: Any = None
        self.seen: set[str] | None = None

    def __enter__(self) -> "SweepBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.task is not None:
            self.progress.stop()

    def update(self, state: Any) -> None:
        """Show ``state`` (a :class:`aqakit.sweep.progress.SweepProgress`)."""
        trials = f"{len(state.finished)}/{state.trials_planned} trials finished"
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("", total=state.epochs_planned, trials=trials)
        self.progress.update(self.task, completed=state.epochs_done, trials=trials)
        if self.seen is None:
            self.seen = set(state.finished)
        for name in state.finished:
            if name not in self.seen:
                self.seen.add(name)
                self.progress.console.print(f"finished {name} ({len(self.seen)}/{state.trials_planned})", highlight=False)


@contextmanager
def resume_hint_on_interrupt(folder: Path) -> Iterator[None]:
    """On Ctrl-C, say in one line how to continue the work interrupted in ``folder``; the interrupt goes on."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(f"interrupted: run the same command with --resume to continue {folder}", highlight=False, soft_wrap=True)
        raise


def _set_once(values: dict[str, Any], flag: str, key: str, given: Any) -> None:
    """Put an option's value under its setting; the same setting given by ``--set`` too is an error
    unless both say the same, so there is one way to set it."""
    if given is None:
        return
    if key in values and values[key] != given:
        raise ConfigError(f"{flag} {given} and --set {key}={values[key]} disagree: give only one of them")
    values[key] = given


@app.command()
def train(
    model: str = typer.Argument("gdlt", help="Model name (listed by `aqakit datasets`)."),
    benchmark: str = typer.Argument("synthetic", help="Benchmark adapter (see `aqakit datasets`)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="The benchmark's folder."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Number of seeds (seed-base .. seed-base+N-1)."),
    seed_base: int = typer.Option(0, "--seed-base", help="First seed."),
    select: Optional[str] = typer.Option(None, "--select", help="final | best-val | best-test (default: the preset's, final)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Override the preset's epoch count."),
    preset: Optional[str] = typer.Option(
        None, "--preset", help="A built-in preset's name or a YAML file, instead of the model's preset for the benchmark."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set optim.lr=0.005 (repeatable)."),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: MODEL-BENCHMARK-TIME)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders go."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run of the same name."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of the same name."),
    logger: Optional[str] = typer.Option(None, "--logger", help="tensorboard: also log every epoch for `tensorboard --logdir RUNS_DIR` (needs aqakit[tensorboard])."),
    ensemble: bool = typer.Option(False, "--ensemble", help="Train the seeds together as one batched ensemble (docs/performance.md)."),
    devices: Optional[int] = typer.Option(
        None, "--devices", help="Processes (GPUs, or CPU processes) per machine training one model with DDP (train.devices, "
        "default 1; docs/performance.md, Several devices)."),
    num_nodes: Optional[int] = typer.Option(None, "--num-nodes", help="Machines taking part in DDP training (train.num_nodes, default 1)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    budget_minutes: float = typer.Option(60.0, "--budget-minutes", help="auto: time for the whole search."),
    folds: Optional[str] = typer.Option(
        None, "--folds", help="Train every official fold of the benchmark (all) or some (0,2), each its own run, and "
        "report the Fisher-z mean over folds (docs/jigsaws.md). auto: the number of folds of the training split that "
        "validate each candidate (default 5)."),
    rule: str = typer.Option("one-se", "--rule", help="auto: one-se (cheapest within one standard error of the best) | max."),
    candidates: Optional[str] = typer.Option(None, "--candidates", help="auto: comma-separated candidates (default: all, cheapest first)."),
) -> None:
    """Train MODEL on BENCHMARK and report test metrics of the selected checkpoint.

    With no arguments: GDLT on the built-in synthetic benchmark (no data needed). MODEL `auto`
    chooses the model and preset by k-fold validation on the training split (docs/auto.md).
    """
    from aqakit.models import is_closed_form
    from aqakit.train.config import build_config, parse_override, require_data_root, resolve_benchmark
    from aqakit.train.distributed import is_rank_zero
    from aqakit.train.precision import describe_precision
    from aqakit.train.runner import default_device, train_run

    values = dict(parse_override(text) for text in overrides)
    for flag, key, given in (("--select", "train.select", select), ("--epochs", "train.epochs", epochs),
                             ("--ensemble", "train.ensemble", True if ensemble else None), ("--logger", "train.logger", logger),
                             ("--devices", "train.devices", devices), ("--num-nodes", "train.num_nodes", num_nodes),
                             ("--data-root", "data_root", None if data_root is None else str(data_root))):
        _set_once(values, flag, key, given)
    adapter, values = resolve_benchmark(benchmark, values)
    require_data_root(adapter, values.get("data_root"))
    run_name = name or f"{model}-{benchmark}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = runs_dir / run_name
    seed_list = list(range(seed_base, seed_base + seeds))
    if model == "auto":
        if select is not None or epochs is not None or preset is not None or ensemble:
            raise ConfigError("aqakit train auto chooses the model and its preset: --select, --epochs, --preset and --ensemble do not apply")
        if any(values.get(key, 1) != 1 for key in ("train.devices", "train.num_nodes")):
            raise ConfigError("aqakit train auto trains its candidates on one device: --devices and --num-nodes do not apply")
        _train_auto(benchmark, run_dir, values, seed_list, budget_minutes, _auto_folds(folds), rule, candidates,
                    overwrite=overwrite, resume=resume, as_json=as_json)
        return
    config = build_config(model, benchmark, values, preset=preset)
    if not is_rank_zero(config.train):  # another process of a DDP run (Lightning started it): it trains, rank 0 reports
        console.quiet = err_console.quiet = True
    if folds is not None:
        from aqakit.train.folds import parse_folds

        fold_list = parse_folds(folds, adapter)
    if not as_json:
        how = (f"{model}: fitted in closed form, in float64 (no epochs)" if is_closed_form(config.model.name)
               else describe_precision(config.train.precision, default_device()))
        console.print(how, highlight=False, soft_wrap=True)
        if not is_closed_form(config.model.name) and preset is None and folds is None:
            _hint_small_training_set(adapter, config.data_root, benchmark)
    with resume_hint_on_interrupt(run_dir), EpochProgress(config.train.epochs) as progress:
        if folds is None:
            summary = train_run(config, run_dir, seed_list, overwrite=overwrite, resume=resume,
                                on_epoch_end=progress.update)
        else:
            from aqakit.train.folds import train_folds

            summary = train_folds(config, run_dir, fold_list, seed_list, overwrite=overwrite, resume=resume,
                                  on_fold_start=lambda k: progress.restart(f"fold {k}", config.train.epochs),
                                  on_epoch_end=progress.update)
    if not is_rank_zero(config.train):
        return
    if as_json:
        console.print_json(json.dumps(summary))
    else:
        (print_summary if folds is None else print_crossval_summary)(summary)
        console.print(f"run saved in {run_dir}")


#: Below this many training videos ``aqakit train`` suggests the settings made for a handful of videos.
SMALL_TRAINING_SET = 50


def _hint_small_training_set(adapter: Any, data_root: Optional[str], benchmark: str) -> None:
    """A hint, before a deep model trains on its own preset, when the training split has fewer than SMALL_TRAINING_SET
    labelled videos (counted from the label file; a label file that does not read is left to training,
    which names the problem)."""
    from aqakit.data.benchmarks import FileBenchmark

    if not isinstance(adapter, FileBenchmark):
        return
    try:
        n_train = len(adapter.read_labels(Path(data_root) if data_root else None, "train").ids)
    except (ConfigError, DataError):  # e.g. a benchmark of folds without one chosen: training says so
        return
    if n_train < SMALL_TRAINING_SET:
        err_console.print(
            f"[yellow]hint:[/] {n_train} training videos (fewer than {SMALL_TRAINING_SET}): a deep model's preset is made "
            f"for hundreds. Quicker and steadier here: `aqakit train ridge {benchmark}` (closed form, seconds), "
            f"`--preset gdlt-small` (a 64-wide GDLT, 60 epochs), or `aqakit train auto {benchmark}` (k-fold validation "
            "chooses among them; docs/own-data.md#a-handful-of-videos).", highlight=False, soft_wrap=True)


def _auto_folds(text: Optional[str]) -> int:
    """``aqakit train auto --folds K``: K folds of the training split (5 when not given)."""
    if text is None:
        return 5
    if not text.strip().isdigit():
        raise ConfigError(
            f"aqakit train auto: --folds is the number of folds of the training split (a whole number, default 5), "
            f"got {text!r}"
        )
    return int(text)


def _train_auto(
    benchmark: str, run_dir: Path, values: dict[str, Any], seeds: list[int], budget_minutes: float,
    folds: int, rule: str, candidates: Optional[str], *, overwrite: bool, resume: bool, as_json: bool,
) -> None:
    """``aqakit train auto``: the search, a table of every candidate's validation figure, the winner's test figures."""
    from aqakit.train.auto import AUTO_FILE, CANDIDATES, candidates_named, run_auto

    chosen = candidates_named([c.strip() for c in candidates.split(",") if c.strip()]) if candidates else list(CANDIDATES)

    def report(result: Any) -> None:
        if as_json:
            return
        if result.validation is None:
            err_console.print(f"{result.label}: {result.status}", highlight=False, soft_wrap=True)
        else:
            err_console.print(f"{result.label}: {folds}-fold validation Spearman {result.validation:.3f} "
                              f"(folds {', '.join(f'{v:.3f}' for v in result.fold_spearman)}; {result.minutes:.1f} min)",
                              highlight=False, soft_wrap=True)

    with resume_hint_on_interrupt(run_dir), EpochProgress(0) as progress:
        record = run_auto(benchmark, run_dir, overrides=values, candidates=chosen, folds=folds, rule=rule,
                          budget_minutes=budget_minutes, seeds=seeds, resume=resume, overwrite=overwrite,
                          on_epoch_end=progress.update, on_run_start=progress.restart, on_candidate=report)
    if as_json:
        console.print_json(json.dumps({k: v for k, v in record.items() if k != "final_summary"}))
        return
    table = Table(title=f"aqakit train auto on {benchmark}: {folds}-fold validation of the training split, rule {rule}")
    for column in ("candidate", "model", f"validation Spearman (Fisher-z over {folds} folds)", "minutes", "status"):
        table.add_column(column)
    for c in record["candidates"]:
        figure = "–" if c["validation"] is None else f"{c['validation']:.3f}"
        minutes = "–" if c["minutes"] is None else f"{c['minutes']:.1f}"
        table.add_row(c["label"], c["model"], figure, minutes, "chosen" if c["label"] == record["chosen"] else c["status"])
    console.print(table)
    print_summary(record["final_summary"])
    console.print(f"search and final run saved in {run_dir} ({AUTO_FILE})")


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A run folder, a seed folder or a checkpoint folder."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="The benchmark's folder (default: the one it trained on)."),
    split: str = typer.Option("test", "--split", help="train | test"),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Evaluate a trained checkpoint on its benchmark (every clip, deterministic)."""
    from aqakit.pipeline.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(checkpoint, data_root, split)
    if as_json:
        console.print_json(json.dumps(result.to_json()))
        return
    metrics = result.metrics
    table = Table(title=f"{result.model} on {result.benchmark} ({split}, {result.n_videos} videos)")
    for key in ("spearman", "pearson", "rl2", "mse", "mae"):
        table.add_column(key, justify="right")
    table.add_row(*(f"{metrics[k]:.4f}" for k in ("spearman", "pearson", "rl2", "mse", "mae")))
    console.print(table)
    console.print(f"checkpoint {result.checkpoint} (selection {result.selection}, epoch {result.epoch})")


@app.command()
def predict(
    checkpoint: Path = typer.Argument(
        ..., help="A checkpoint folder, a seed folder (runs/x/seed-2), or a run folder: then its first seed folder (the lowest seed)."
    ),
    feature_dir: Path = typer.Argument(..., help="A folder of VIDEO_ID.npy clip features (T, D)."),
    out: Path = typer.Option(Path("predictions.csv"), "--out", "-o", help="CSV to write (id, score)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Score every VIDEO_ID.npy in FEATURE_DIR with a trained model and write a CSV.

    A run folder of several seeds means the checkpoint of its lowest seed (seed-0 when its seeds
    start at 0); give a seed folder for another seed. The output names the
    checkpoint that scored the videos.
    """
    from aqakit.pipeline.predict import predict_folder

    check_new_file(out, overwrite)
    scored = predict_folder(checkpoint, feature_dir)
    scored.write_csv(out)
    console.print(f"scored {len(scored.ids)} videos with {scored.checkpoint} -> {out}", highlight=False, soft_wrap=True)


def _setting_text(value: Any) -> str:
    """A hyper-parameter's default as YAML would spell it; a long list as its ends and length."""
    if isinstance(value, list) and len(value) > 3:
        return f"[{_setting_text(value[0])}, ..., {_setting_text(value[-1])}] ({len(value)} values)"
    if isinstance(value, list):
        return "[" + ", ".join(_setting_text(item) for item in value) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@app.command()
def datasets(
    folder: Optional[Path] = typer.Argument(None, help="A feature folder or benchmark folder to inspect."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="Read FOLDER's labels as this benchmark."),
) -> None:
    """List benchmark adapters and models, or inspect FOLDER (counts, lengths, dims, scores, problems)."""
    from aqakit.data.benchmarks import list_benchmarks
    from aqakit.data.inspect import inspect_feature_folder

    from aqakit.models import list_models, model_defaults

    if folder is None:
        table = Table(title="benchmarks")
        table.add_column("name")
        table.add_column("needs data")
        table.add_column("description")
        for adapter in list_benchmarks():
            table.add_row(adapter.name, "yes" if adapter.needs_data else "no", adapter.description)
        console.print(table)
        models = Table(title="models (their hyper-parameters: --set model.args.NAME=VALUE)")
        models.add_column("name")
        models.add_column("hyper-parameters and defaults")
        for name in list_models():
            settings = ", ".join(f"{key}={_setting_text(value)}" for key, value in model_defaults(name).items())
            models.add_row(name, escape(settings))
        console.print(models)
        return
    report = inspect_feature_folder(folder, benchmark)
    console.print(report.render(), markup=False, highlight=False, soft_wrap=True)
    if report.problems:
        raise typer.Exit(1)


@app.command()
def bench(
    models: Optional[list[str]] = typer.Argument(None, help="Models to measure (default: every registered model)."),
    benchmark: Optional[str] = typer.Option(
        None, "--benchmark", "-b",
        help="Benchmark whose data and presets are used (default: each model's built-in synthetic benchmark: "
        "synthetic, finecausal's synthetic-confounded).",
    ),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="The benchmark's folder."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's choice)."),
    repeats: int = typer.Option(20, "--repeats", min=1, help="Timed calls per latency figure, after warm-up."),
    train_epochs: int = typer.Option(3, "--train-epochs", min=2, help="Epochs of the training measurement (the first is warm-up)."),
    clips: Optional[int] = typer.Option(None, "--clips", min=1, help="Video length for FLOPs and latency (default: the median)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a preset setting for every model (repeatable)."),
    record: Optional[Path] = typer.Option(None, "--record", help="Append the result as one JSON line to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print each result (one per benchmark) as a JSON line."),
) -> None:
    """Measure parameters, FLOPs, latency, throughput, memory and the fraction of the machine's peak."""
    from aqakit.bench import BenchSettings, append_result, render_bench, run_bench
    from aqakit.data.benchmarks import get_benchmark
    from aqakit.models import list_models
    from aqakit.train.config import parse_override, require_data_root

    root = require_data_root(get_benchmark(benchmark), data_root) if benchmark is not None else data_root
    settings = BenchSettings(
        benchmark=benchmark, data_root=root, device=device, threads=threads, repeats=repeats,
        train_epochs=train_epochs, clips=clips, overrides=dict(parse_override(text) for text in overrides),
    )  # fmt: skip
    for result in run_bench(models or list_models(), settings):  # one per benchmark measured on
        if record is not None:
            append_result(record, result)
        if as_json:
            print(json.dumps(result))  # one JSON line per benchmark
        else:
            console.print(render_bench(result))


@app.command()
def results(
    runs: Optional[list[Path]] = typer.Argument(
        None, help="Run directories written by `aqakit train`, or folders of them (finished seeds are used)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows and averages as JSON."),
    table: Optional[Path] = typer.Option(
        None, "--table", help="Instead of RUNS: the one models x benchmarks table of a spec (docs/results/table.yaml)."
    ),
    write: Optional[list[Path]] = typer.Option(
        None, "--write", help="With --table: put the table between the results-table markers of this file (repeatable)."
    ),
) -> None:
    """Tabulate finished runs (markdown): test Spearman and R-l2 over seeds, Fisher-z averages.

    Tuning runs (trained with train.evaluate_test=false) have no test figures: in a folder of runs
    they are named under the table; named on their own they are an error. ``--table SPEC`` renders
    the results table of the README and docs from the run records a spec names.
    """
    if table is not None:
        if runs or as_json:
            raise ConfigError("--table renders the runs its spec names: give no RUNS and no --json with it")
        from aqakit.results_table import read_table, write_into

        rendered = read_table(table).render()
        for path in write or []:
            write_into(path, rendered)
            console.print(f"table written into {path}")
        if not write:
            print(rendered)
        return
    if write:
        raise ConfigError("--write needs --table SPEC")
    if not runs:
        raise ConfigError("give run directories (or folders of them) to tabulate, or --table SPEC")
    from aqakit.results import read_runs, render_markdown, results_json

    rows, tuning = read_runs(runs)
    if as_json:
        console.print_json(json.dumps(results_json(rows, tuning)))
    else:
        print(render_markdown(rows, tuning))


@app.command()
def report(
    run: Path = typer.Argument(..., help="A run folder written by `aqakit train`."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="HTML file to write (default: RUN/report.html, rewritten on each call)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Draw RUN as one self-contained HTML page: per-epoch curves, test predictions, a table per seed.

    The page shows the finished seeds (a run still training can be drawn); it is written atomically
    and its path printed.
    """
    from aqakit.explain.run_report import read_run, render_run_report
    from aqakit.rundir import RunDir

    result = read_run(run)
    default = run / RunDir.REPORT_FILE
    target = out or default
    if target.resolve() != default.resolve():
        check_new_file(target, overwrite)
    atomic_write_text(target, render_run_report(result))
    console.print(f"report written to {target}", highlight=False, soft_wrap=True)


def _run_list(spec: str) -> list[Path]:
    return [Path(part) for part in spec.split(",") if part]


@app.command()
def compare(
    a: str = typer.Argument(..., help="Model A: its run directories, one per benchmark, comma-separated (A_TES,A_PCS)."),
    b: str = typer.Argument(..., help="Model B: its run directories over the same benchmarks and test videos."),
    n_boot: int = typer.Option(10_000, "--n-boot", min=1, help="Bootstrap resamples of the test videos."),
    level: float = typer.Option(0.95, "--level", min=0.0, max=1.0, help="Coverage of the percentile interval."),
    seed: int = typer.Option(0, "--seed", help="Seed of the resampling (the interval is reproducible)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Paired bootstrap of model A against model B over their shared test videos.

    Resamples the test videos, scores both models' finished seeds on each resample, and reports
    A - B per benchmark (seed-mean test Spearman) and on the Fisher-z average, with a percentile
    interval and the share of resamples in which A is ahead (README, "The evaluation protocol").
    """
    from aqakit.compare import compare_runs, read_test_predictions, render_comparison

    sides = [[read_test_predictions(run) for run in _run_list(spec)] for spec in (a, b)]
    try:
        result = compare_runs(*sides, n_boot=n_boot, level=level, seed=seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
    else:
        print(render_comparison(result))


@app.command()
def extract(
    videos: list[Path] = typer.Argument(..., help="Video files, frame folders (one image per frame), or folders of either."),
    backbone: str = typer.Option("i3d", "--backbone", help="i3d | swin3d_b"),
    weights: Path = typer.Option(..., "--weights", help="The backbone's weights file (e.g. i3d_kinetics400_rgb.npz)."),
    out: Path = typer.Option(..., "--out", "-o", help="Feature folder to write (VIDEO_ID.npy + manifest.json)."),
    clip_len: Optional[int] = typer.Option(None, "--clip-len", min=1, help="Frames per clip (default: 16 for i3d, 32 for swin3d_b)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Resample to this frame rate (default: keep the video's frames)."),
    frames: Optional[int] = typer.Option(
        None, "--frames", min=1, help="Take N frames spread uniformly over each video (after --fps), repeating frames "
        "evenly in shorter videos; --frames 160 --clip-len 16 gives 10 clips (default: every frame)."),
    folder_fps: float = typer.Option(25.0, "--folder-fps", help="Frame rate of frame folders, whose images carry no timestamps."),
    short_side: Optional[int] = typer.Option(
        None, "--short-side", min=1, help="Resize the short side to this before the centre crop (default: --size; "
        "MUSDL, CoRe and TPT use 256 with --size 224)."),
    size: Optional[int] = typer.Option(None, "--size", min=1, help="Side of the square centre crop (default: the weights', 224)."),
    upright: bool = typer.Option(True, "--upright/--no-upright",
                                 help="Apply the video's display rotation and pixel aspect ratio (as players do)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Clips per forward pass."),
    force: bool = typer.Option(False, "--force", help="Re-extract videos already done; replace files not written by aqakit."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | cuda:N (default: the GPU when present)."),
    decode_timeout: float = typer.Option(DEFAULT_DECODE_TIMEOUT, "--decode-timeout", help=DECODE_TIMEOUT_HELP),
    workers: int = typer.Option(1, "--workers", min=1, help="Extract on this many Ray workers, one backbone each "
                                "(needs aqakit[ray]; 1: in this process)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="A Ray cluster to run the workers on "
                                              "(HOST:PORT of its head, ray://HOST:PORT or auto; default: Ray on this machine)."),
    cpus_per_worker: int = typer.Option(1, "--cpus-per-worker", min=1, help="CPUs (torch threads) each Ray worker takes."),
    masks: Optional[Path] = typer.Option(
        None, "--masks", help="Also the foreground stream: each frame times its person mask from this folder "
        "(aqakit masks, or one folder of PNG masks per video)."),
    foreground_out: Optional[Path] = typer.Option(
        None, "--foreground-out", help="Where the foreground features go (default: foreground/ beside OUT)."),
) -> None:
    """Extract clip features of VIDEOS into OUT: one VIDEO_ID.npy (clips, dim) per video.

    With --masks also the foreground stream F (the same clips, each frame times its person mask) into
    foreground/ beside OUT: the two-stream layout FineCausal trains on (docs/video.md, "Person masks").

    Resumable, also after a kill: rerun the same command to finish the folder. A video that fails
    is reported and the others continue; every failure is listed at the end (and in OUT/manifest.json),
    and the exit status is 1 if any failed. With --workers N (or --ray-address) the videos are
    extracted on Ray workers and this process writes OUT, the same folder.
    """
    from aqakit.video.extract import find_videos
    from aqakit.video.registry import load_backbone

    on_ray = workers > 1 or ray_address is not None
    ray_workers = None
    if on_ray:
        from aqakit.video.distributed import RayWorkers, import_ray

        import_ray()  # missing Ray fails before the backbone loads
        ray_workers = RayWorkers(workers, ray_address, cpus_per_worker, device)
    files = find_videos(videos)
    model = load_backbone(backbone, weights, "cpu" if on_ray else device)  # on Ray, the workers take --device
    options = model.weights.transform.decode_options(fps=fps, size=size, short_side=short_side, upright=upright,
                                                     folder_fps=folder_fps, frames=frames)
    streams = [(out, None)]
    if masks is not None:
        streams.append((foreground_out or out.parent / "foreground", masks))
    elif foreground_out is not None:
        raise ConfigError("--foreground-out needs --masks MASKS (the person masks the foreground stream is made with)")
    failed = [_extract_stream(files, model, folder, clip_len, options, batch_size, force, decode_timeout, masks_dir,
                              ray_workers) for folder, masks_dir in streams]
    if any(failed):
        raise typer.Exit(1)


def _extract_stream(files: dict[str, Path], model: Any, out: Path, clip_len: Optional[int], options: Any, batch_size: int,
                    force: bool, decode_timeout: float, masks_dir: Optional[Path], ray_workers: Any) -> bool:
    """Extract one stream of ``files`` into ``out`` with a progress bar and print what happened: the
    whole-frame features, or with ``masks_dir`` the foreground ones; on ``ray_workers``
    (:class:`~aqakit.video.distributed.RayWorkers`) when given. Returns whether a video failed."""
    from aqakit.video.extract import extract_folder

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[clips]} clips"), TimeElapsedColumn())
    progress = Progress(*columns, console=err_console)
    task = progress.add_task("foreground" if masks_dir is not None else "videos", total=len(files), clips=0)

    def on_clips(n: int) -> None:
        progress.update(task, clips=progress.tasks[0].fields["clips"] + n)

    runner = None
    if ray_workers is not None:  # a cluster that does not answer fails here, before the progress bar
        from aqakit.video.distributed import ray_runner

        runner = ray_runner(model, clip_len or model.default_clip_len, options, batch_size, ray_workers,
                            masks_dir=masks_dir, on_clips=on_clips, decode_timeout=decode_timeout)
    with progress:

        def on_video(path: Path, status: str) -> None:
            if status == "extracting":
                progress.update(task, description=path.name)
                return
            progress.advance(task)
            if status.startswith("failed"):
                progress.console.print(f"[red]failed[/red] {path}: {status.split(': ', 1)[1]}", highlight=False, soft_wrap=True)

        report = extract_folder(files, model, out, clip_len, options, batch_size, force=force, on_video=on_video,
                                on_clips=on_clips, decode_timeout=decode_timeout, masks_dir=masks_dir, runner=runner)
    timing = report.timing
    what = "foreground: " if masks_dir is not None else ""
    console.print(f"{what}{len(report.written)} written, {len(report.skipped)} skipped (already complete), "
                  f"{len(report.failed)} failed -> {out}", highlight=False)
    if timing.clips:
        total = timing.decode_seconds + timing.model_seconds
        where = (model.device if ray_workers is None else
                 f"{ray_workers.workers} Ray workers on {ray_workers.device or 'cpu'}, times summed over them")
        console.print(f"{timing.clips} clips in {total:.1f} s ({timing.clips / total:.2f} clips/s; "
                      f"decode {timing.decode_seconds:.1f} s, {model.name} on {where} {timing.model_seconds:.1f} s)")
    if report.failed:
        err_console.print(f"{len(report.failed)} videos failed (recorded in {out / 'manifest.json'}):", highlight=False,
                          soft_wrap=True)
        for path, reason in report.failed.items():
            err_console.print(f"  {reason}" if reason.startswith(path) else f"  {path}: {reason}", highlight=False,
                              soft_wrap=True)
    return bool(report.failed)


@app.command()
def masks(
    videos: list[Path] = typer.Argument(..., help="Video files, frame folders (one image per frame), or folders of either."),
    out: Path = typer.Option(..., "--out", "-o", help="Mask folder to write (VIDEO_ID.npz + manifest.json)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="As aqakit extract's: the masks are of the frames it sees."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="As aqakit extract's --frames."),
    folder_fps: float = typer.Option(25.0, "--folder-fps", help="Frame rate of frame folders."),
    short_side: Optional[int] = typer.Option(None, "--short-side", min=1, help="As aqakit extract's --short-side."),
    size: int = typer.Option(224, "--size", min=1, help="Side of the square centre crop (as aqakit extract's; I3D's 224)."),
    upright: bool = typer.Option(True, "--upright/--no-upright", help="Apply the video's display rotation (as extract)."),
    force: bool = typer.Option(False, "--force", help="Make the masks of videos already done again."),
    decode_timeout: float = typer.Option(DEFAULT_DECODE_TIMEOUT, "--decode-timeout", help=DECODE_TIMEOUT_HELP),
) -> None:
    """Person masks of every frame of VIDEOS into OUT with MediaPipe Pose (needs aqakit[masks]).

    Give the decoding options that `aqakit extract` will use: mask t belongs to frame t of its clips.
    A frame without a person is recorded as such (an empty mask, found=false). Resumable: rerun the
    same command to finish the folder.
    """
    from aqakit.video.decode import DecodeOptions
    from aqakit.video.extract import find_videos
    from aqakit.video.masks import mask_folder, mediapipe_settings, person_masks

    files = find_videos(videos)
    settings = mediapipe_settings()  # MediaPipe missing: one line, before the progress bar
    options = DecodeOptions(fps=fps, size=size, short_side=short_side, upright=upright, folder_fps=folder_fps, frames=frames)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err_console)
    task = progress.add_task("masks", total=len(files))

    def on_video(path: Path, status: str) -> None:
        if status == "masking":
            progress.update(task, description=path.name)
            return
        progress.advance(task)
        if status.startswith("failed"):
            progress.console.print(f"[red]failed[/red] {path}: {status.split(': ', 1)[1]}", highlight=False, soft_wrap=True)

    with progress:
        report = mask_folder(files, out, options, force=force, on_video=on_video, settings=settings,
                             make=functools.partial(person_masks, decode_timeout=decode_timeout))
    for vid, (n_frames, with_person) in report.written.items():
        console.print(f"{vid}: a person in {with_person} of {n_frames} frames", highlight=False)
    n_written = sum(n for n, _ in report.written.values())
    rate = f"; {1000 * report.seconds / n_written:.0f} ms a frame" if n_written else ""
    console.print(f"{len(report.written)} written, {len(report.skipped)} skipped (already complete), "
                  f"{len(report.failed)} failed -> {out}{rate}", highlight=False)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def score(
    video: Path = typer.Argument(
        ..., help="The video file (or frame folder: one image per frame) to score, or a .npy feature file (T, D)."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A run folder, a seed folder or a checkpoint folder."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="The backbone's weights file (e.g. i3d_kinetics400_rgb.npz)."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Only for checkpoints that do not record their backbone."),
    clip_len: Optional[int] = typer.Option(None, "--clip-len", min=1, help="Only for checkpoints that do not record it."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Only for checkpoints that do not record it."),
    folder_fps: Optional[float] = typer.Option(
        None, "--folder-fps", help="Frame rate of a frame folder VIDEO (default: as its training features', else 25)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Clips per forward pass of the backbone."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | cuda:N (default: the GPU when present)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report file."),
    as_json: bool = typer.Option(False, "--json", help="Print the score and every part as JSON."),
    decode_timeout: float = typer.Option(DEFAULT_DECODE_TIMEOUT, "--decode-timeout", help=DECODE_TIMEOUT_HELP),
    masks: Optional[Path] = typer.Option(
        None, "--masks", help="A two-stream (FineCausal) checkpoint: the video's person masks (an aqakit masks folder, "
        "or a folder of PNG masks)."),
) -> None:
    """Score VIDEO with a trained checkpoint (a run: every finished seed): extract features as the
    checkpoint's were (a .npy feature file is scored as it is), predict, explain."""
    from aqakit.explain import render_html
    from aqakit.pipeline.score_video import score_features, score_video

    if report is not None:
        check_new_file(report, overwrite)
    if video.suffix == ".npy":
        if masks is not None:
            raise ConfigError(f"--masks {masks}: {video} is a feature file, scored as it is; a two-stream model reads it "
                              "as [whole frame | foreground] features already (masks apply to a video)")
        result = score_features(video, checkpoint)
    else:
        result = score_video(video, checkpoint, weights, backbone=backbone, clip_len=clip_len, fps=fps, folder_fps=folder_fps,
                             batch_size=batch_size, device=device, decode_timeout=decode_timeout, masks=masks)
    if report is not None:
        atomic_write_text(report, render_html(result))
    if as_json:
        console.print_json(json.dumps(result.to_json()))
        return
    console.print(f"[bold]{result.score:.2f}[/bold]  {video} ({result.model}, {result.n_clips} clips)", highlight=False)
    if len(result.seed_scores) > 1:
        console.print(f"mean of {len(result.seed_scores)} seeds: " + ", ".join(f"{s:.2f}" for s in result.seed_scores))
    if result.grade is not None:
        console.print(f"grade {result.grade.index + 1} of {result.grade.count}: scores {result.grade.low:.4g} to {result.grade.high:.4g}")
    table = Table(title="breakdown")
    table.add_column("part")
    table.add_column("value")
    for view in result.parts:
        table.add_row(view.name, view.summary())
    console.print(table)
    if report is not None:
        console.print(f"report written to {report}")


suite_app = typer.Typer(no_args_is_help=True, help="The robustness suite: real data and transforms of it (docs/robustness.md).", rich_markup_mode="markdown")
app.add_typer(suite_app, name="suite")


@suite_app.command("list")
def suite_list(
    data: Optional[Path] = typer.Option(
        None, "--data", help="The data folder holding fisv/, mtl-aqa/, ... (default: $AQAKIT_DATA, else ../shared/data)."
    ),
    sizes: bool = typer.Option(True, "--sizes/--no-sizes", help="Load each available set to show its sizes (seconds per set)."),
    as_json: bool = typer.Option(False, "--json", help="Print the sets as JSON."),
) -> None:
    """List the suite's sets: what each stands for, its settings, its sizes, and whether its data is here."""
    from aqakit.suite import set_sizes, suite_sets

    rows, loaded = [], {}  # loaded: the untransformed splits, read once per benchmark
    for entry in suite_sets(data):
        row: dict[str, Any] = {"name": entry.name, **entry.overrides, "stands_for": entry.set.stands_for,
                               "available": entry.available, "missing": entry.missing}
        if sizes and entry.available:
            measured = set_sizes(entry, loaded)
            row.update(train=measured.n_train, test=measured.n_test, clips=measured.clips_text, dim=measured.dim)
        rows.append(row)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="robustness suite")
    for column, justify in (("set", "left"), ("benchmark", "left"), ("benchmark_args", "left"), ("train", "right"),
                            ("test", "right"), ("clips", "right"), ("dim", "right"), ("data", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        args = ", ".join(f"{k}={v}" for k, v in row["benchmark_args"].items())
        status = (row["data_root"] or "none needed") if row["available"] else f"missing: {row['missing']}"
        table.add_row(row["name"], row["benchmark"], args, *(str(row.get(k, "")) for k in ("train", "test", "clips", "dim")),
                      status)
    console.print(table)
    available = sum(row["available"] for row in rows)
    console.print(f"{available} of {len(rows)} sets available", highlight=False)


@suite_app.command("run")
def suite_run(
    variants: str = typer.Argument(..., help="Comma-separated MODEL (its generic preset), MODEL@PRESET or auto."),
    sets: Optional[str] = typer.Option(None, "--sets", help="Comma-separated suite sets (default: every available one)."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Seeds per run (0..N-1)."),
    data: Optional[Path] = typer.Option(None, "--data", help="The data folder (default: $AQAKIT_DATA, else ../shared/data)."),
    runs_dir: Path = typer.Option(Path("runs") / "suite", "--runs-dir", help="Where the run folders go."),
    records: Path = typer.Option(Path("docs") / "results" / "records" / "suite", "--records", help="Where each finished run's record is copied."),
    overrides: list[str] = typer.Option([], "--set", help="Override a setting of every run, e.g. --set train.precision=32-true."),
    budget_minutes: float = typer.Option(60.0, "--budget-minutes", help="auto: time for each set's search."),
) -> None:
    """Train each variant on each suite set; a run whose record is complete is skipped (docs/robustness.md)."""
    from aqakit.robustness import Variant, run_suite
    from aqakit.train.config import parse_override

    parsed = [Variant.parse(text) for text in variants.split(",") if text.strip()]
    values = dict(parse_override(text) for text in overrides)
    names = [name.strip() for name in sets.split(",")] if sets else None

    def started(set_name: str, variant: Any) -> None:
        err_console.print(f"{set_name}: training {variant.label} ...", highlight=False)

    def finished(set_name: str, variant: Any, status: str) -> None:
        console.print(f"{set_name} / {variant.label}: {status}", highlight=False, soft_wrap=True)

    run_suite(parsed, runs_dir, records, data_dir=data, set_names=names, seeds=seeds, overrides=values,
              budget_minutes=budget_minutes, on_start=started, on_done=finished)


@suite_app.command("table")
def suite_table_command(
    records: Path = typer.Argument(Path("docs") / "results" / "records" / "suite", help="A folder of suite records."),
    variants: Optional[str] = typer.Option(None, "--variants", help="Comma-separated columns, in order (default: all)."),
    curves: bool = typer.Option(False, "--curves", help="Instead: per run, its best and last epochs' held-out Spearman."),
) -> None:
    """The robustness table (markdown) from suite records: sets as rows, variants as columns."""
    from aqakit.robustness import suite_curves, suite_table

    if curves:
        print(suite_curves(records))
        return
    print(suite_table(records, [v.strip() for v in variants.split(",")] if variants else None))


@app.command()
def sweep(
    spec: str = typer.Argument(..., help="A sweep spec (YAML file) or a built-in one's name (docs/sweeps.md)."),
    out: Optional[Path] = typer.Option(None, "--out", help="The sweep folder (default: runs/sweeps/SPEC-NAME[-BENCHMARK])."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Replace the spec's benchmark (or its list) with this one."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Replace the spec's data folder."),
    overrides: list[str] = typer.Option([], "--set", help="Add a setting to the spec's base, e.g. --set train.epochs=10 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a stopped sweep: trials whose run folders are finished are kept."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="HOST:PORT of a running Ray cluster (`ray start --head`); default: Ray on this machine."),
) -> None:
    """Train every trial of a sweep spec on Ray Tune, each an ordinary run folder, and write its summary.

    Trials are ranked on validation only; the summary (SWEEP/summary.md) shows each configuration's test
    Spearman beside it and marks the chosen trial. Exit status 1 when some trial failed.
    """
    from aqakit.sweep.spec import load_spec
    from aqakit.sweep.summary import SUMMARY_MD
    from aqakit.sweep.tune import run_sweep
    from aqakit.train.config import parse_override

    loaded = load_spec(spec, benchmark=benchmark, data_root=None if data_root is None else str(data_root),
                       settings=dict(parse_override(text) for text in overrides))
    folder = out or Path("runs") / "sweeps" / (Path(spec).stem + (f"-{benchmark}" if benchmark else ""))
    started = time.monotonic()
    with resume_hint_on_interrupt(folder), SweepBar() as bar:
        record = run_sweep(loaded, folder, resume=resume, ray_address=ray_address, on_progress=bar.update)
    print((folder / SUMMARY_MD).read_text(), end="")
    took = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - started))
    console.print(f"sweep saved in {folder} ({len(record['trials'])} trials, {took})", highlight=False, soft_wrap=True)
    if record["failed"]:
        err_console.print(f"{len(record['failed'])} trial(s) failed: {', '.join(record['failed'])}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def main() -> None:
    """Console entry point: run the app, turning user errors into one-line messages."""
    try:
        status = app(standalone_mode=False)  # click returns the code of a typer.Exit here
    except AqakitError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors (a ClickException of the click that typer ships) arrive here
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
