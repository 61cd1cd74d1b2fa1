"""Seconds per training epoch on one-clip videos: batches padded to the crop (as before) against
batches padded to their longest video (now), through ``train_run`` (the code of ``aqakit train``).

    python benchmarks/short_videos.py gdlt --videos 300 --dim 2048 --record benchmarks/results/short_videos.jsonl

The data are 300 training and 100 test videos of one clip each (the synthetic benchmark with one
procedure and one clip per video); the model's generic preset (``--set`` overrides it). Both runs
use the same seed; printed as one JSON line: seconds per epoch of each (the first epoch left out),
the speed-up and both runs' test metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path
from unittest import mock

import torch

from aqakit.bench import append_result
from aqakit.data.batches import ClipBank
from aqakit.train.config import build_config, parse_override
from aqakit.train.runner import train_run


def crop_padded_to_crop_len(bank: ClipBank, indices: torch.Tensor, crop_len: int, generator: torch.Generator) -> dict:
    """The batches of aqakit before this change: always ``crop_len`` clips, however short the videos."""
    room = (bank.lengths[indices] - crop_len).clamp(min=0)
    starts = (torch.rand(len(indices), generator=generator) * (room + 1)).long().clamp(max=room)
    return bank.gather(indices, starts, crop_len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    parser.add_argument("--record", type=Path, default=None, help="append the result to this .jsonl file")
    args = parser.parse_args()
    data = {"n_train": args.videos, "n_test": 100, "dim": args.dim, "min_clips": 1, "max_clips": 1, "n_procedures": 1}
    overrides = {"benchmark_args": data, "train.epochs": args.epochs, "train.precision": "32-true",
                 **dict(parse_override(text) for text in args.overrides)}
    # the model's generic preset (<model>.yaml), the one a user's own data gets
    config = build_config(args.model, "synthetic", overrides, preset=args.model)
    result: dict = {"benchmark": "short_videos", "model": args.model, "videos": args.videos, "dim": args.dim,
                    "crop_len": config.train.crop_len, "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as folder:
        for label, patch in (("padded_to_crop", mock.patch.object(ClipBank, "crop", crop_padded_to_crop_len)),
                             ("padded_to_longest", contextlib.nullcontext())):
            with patch:
                seed = train_run(config, Path(folder) / label, [0], device="cpu")["per_seed"][0]
            result[label] = {"train_seconds_per_epoch": seed["timing"]["train_seconds_per_epoch"],
                             "test_spearman": seed["test"]["spearman"], "test_mae": seed["test"]["mae"]}
    result["speedup"] = result["padded_to_crop"]["train_seconds_per_epoch"] / result["padded_to_longest"]["train_seconds_per_epoch"]
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))
    if args.record:
        append_result(args.record, result)


if __name__ == "__main__":
    main()
