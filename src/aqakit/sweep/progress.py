"""How far a sweep has got, read from its folder: the epochs its trials have trained and the trials
that have finished, for the progress bar of ``aqakit sweep`` (trials may run on other machines of
a cluster, so the shared folder, not Ray, is what is watched).

A seed that finished counts its summary's epochs; one still training counts the rows of its
``metrics.csv`` (one per epoch). The planned epochs are every trial's seeds times its configuration's
epochs (for random and Optuna search: the number of trials times the first configuration's epochs,
an estimate when the space draws ``train.epochs``).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aqakit.errors import DataError
from aqakit.rundir import RunDir, SeedDir
from aqakit.sweep.spec import SweepSpec
from aqakit.sweep.trial import TRIALS_FOLDER

#: Seconds between two looks at the sweep folder.
POLL_SECONDS = 2.0


@dataclass
class SweepProgress:
    """Epochs trained so far of ``epochs_planned``, and the trials whose run folders are finished
    (in the order they were first seen) of ``trials_planned``."""

    epochs_done: int
    epochs_planned: int
    trials_planned: int
    finished: list[str] = field(default_factory=list)


def planned(spec: SweepSpec) -> tuple[int, int]:
    """The sweep's trials and their epochs, all seeds included."""
    if spec.search == "grid":
        grid = spec.grid()
        return len(grid), sum(len(spec.seeds) * spec.config(values).train.epochs for values in grid)
    crossed = math.prod(len(d.values) for d in spec.space if d.kind == "grid")
    trials = spec.num_samples * crossed
    first = {d.key: d.values[0] for d in spec.space}
    return trials, trials * len(spec.seeds) * spec.config(first).train.epochs


class SweepWatcher:
    """Reads a sweep folder's progress; finished seeds are read once."""

    def __init__(self, sweep_dir: Path, spec: SweepSpec) -> None:
        self.trials_dir = Path(sweep_dir) / TRIALS_FOLDER
        self.trials_planned, self.epochs_planned = planned(spec)
        self._seed_epochs: dict[Path, int] = {}  # finished seeds
        self._finished: list[str] = []

    def poll(self) -> SweepProgress:
        """The progress now (a file written meanwhile is read at the next poll)."""
        done = 0
        for path in sorted(self.trials_dir.glob("*/")) if self.trials_dir.is_dir() else []:
            trial = RunDir(path)
            if trial.finished and trial.name not in self._finished:
                self._finished.append(trial.name)
            try:
                done += sum(self._epochs(seed) for seed in trial.seed_dirs())
            except DataError:  # a folder seed-<not a number> that is not aqakit's
                continue
        return SweepProgress(done, self.epochs_planned, self.trials_planned, list(self._finished))

    def _epochs(self, seed: SeedDir) -> int:
        if seed.path in self._seed_epochs:
            return self._seed_epochs[seed.path]
        try:
            if seed.finished:
                self._seed_epochs[seed.path] = int(json.loads(seed.summary_path.read_text())["epochs"])
                return self._seed_epochs[seed.path]
            with open(seed.metrics_path, "rb") as rows:
                return max(0, sum(1 for _ in rows) - 1)  # less the header
        except (OSError, ValueError, KeyError, TypeError):  # a file being written or replaced: read it next time
            return 0


def watch(watcher: SweepWatcher, on_progress: Callable[[SweepProgress], None]) -> Callable[[], None]:
    """Call ``on_progress`` with the sweep's progress now and then every :data:`POLL_SECONDS`, from a
    thread, until the returned function is called (which reports once more and waits for the thread)."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            on_progress(watcher.poll())
            if stop.wait(POLL_SECONDS):
                return

    thread = threading.Thread(target=loop, name="aqakit-sweep-progress", daemon=True)
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join()
        on_progress(watcher.poll())

    return finish
