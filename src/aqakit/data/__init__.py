"""Datasets: feature folders, benchmark adapters, batches with masks, validation splits."""

from aqakit.data.batches import ClipBank, EvalBatches, TrainBatches
from aqakit.data.benchmarks import Benchmark, get_benchmark, list_benchmarks, register_benchmark
from aqakit.data.features import load_feature_file, load_videoset
from aqakit.data.jigsaws import Jigsaws  # importing it registers the jigsaws-<task> benchmarks
from aqakit.data.scale import ScoreScale
from aqakit.data.splits import carve_validation
from aqakit.data.synthetic import make_synthetic
from aqakit.data.videoset import VideoSet

__all__ = [
    "Benchmark", "ClipBank", "EvalBatches", "Jigsaws", "ScoreScale", "TrainBatches", "VideoSet",
    "carve_validation", "get_benchmark", "list_benchmarks", "load_feature_file", "load_videoset",
    "make_synthetic", "register_benchmark",
]
