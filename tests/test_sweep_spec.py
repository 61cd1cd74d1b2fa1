"""Sweep specs (aqakit.sweep.spec) and sweep folders: what is accepted, and the one-line errors (no Ray)."""

import socket

import pytest
import yaml

from aqakit.errors import ConfigError, RunDirectoryError
from aqakit.sweep.folder import SPEC_FILE, prepare_sweep_folder
from aqakit.sweep.spec import BENCHMARK, VARIANT, load_spec, parse_spec, trial_name
from aqakit.ray_address import check_ray_address

TINY = {"benchmark_args": {"n_train": 48, "n_test": 24, "dim": 16}, "model.args": {"hidden_dim": 16, "n_queries": 4},
        "train.epochs": 1, "train.batch_size": 16, "train.crop_len": 24}


def spec(**fields):
    return {"model": "gdlt", "benchmark": "synthetic", "base": dict(TINY),
            "space": {"optim.lr": {"grid": [0.01, 0.001]}}, "seeds": [0, 1], **fields}


def refused(data, *needles):
    with pytest.raises(ConfigError) as caught:
        parse_spec(data, "s.yaml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("s.yaml: ")
    for needle in needles:
        assert needle in message, message
    return message


def test_a_grid_spec_gives_one_trial_per_configuration_ranked_on_best_val():
    parsed = parse_spec(spec(space={"optim.lr": {"grid": [0.01, 0.001]}, "model.args.dropout": {"grid": [0.1, 0.5]}}), "s.yaml")
    grid = parsed.grid()
    assert len(grid) == 4 and grid[0] == {"optim.lr": 0.01, "model.args.dropout": 0.1}
    assert [trial_name(parsed, v) for v in grid] == ["lr=0.01_dropout=0.1", "lr=0.01_dropout=0.5",
                                                     "lr=0.001_dropout=0.1", "lr=0.001_dropout=0.5"]
    config = parsed.config(grid[-1])
    assert config.optim.lr == 0.001 and config.model.args["dropout"] == 0.5 and config.train.epochs == 1
    assert config.train.select == "best-val"  # rank best-val: trials select, and are ranked, on validation


def test_dimensions_sharing_a_last_key_part_are_named_in_full():
    parsed = parse_spec(spec(space={"optim.min_lr": {"grid": [1e-4]}, "model.args.dropout": {"grid": [0.2]},
                                    "optim.lr": {"grid": [0.1]}}), "s.yaml")
    assert trial_name(parsed, parsed.grid()[0]) == "min_lr=0.0001_dropout=0.2_lr=0.1"


def test_variants_are_one_dimension_of_named_settings():
    parsed = parse_spec(spec(variants={"plain": {}, "wide": {"model.args.hidden_dim": 32}}), "s.yaml")
    names = [trial_name(parsed, v) for v in parsed.grid()]
    assert names == ["plain_lr=0.01", "plain_lr=0.001", "wide_lr=0.01", "wide_lr=0.001"]
    assert parsed.config({VARIANT: "wide", "optim.lr": 0.01}).model.args["hidden_dim"] == 32
    assert parsed.config({VARIANT: "plain", "optim.lr": 0.01}).model.args["hidden_dim"] == 16


@pytest.mark.parametrize("where", ["space", "base", "variant"])
def test_an_unknown_setting_is_one_line_naming_it(where):
    bad = "model.args.no_such_thing"
    data = {"space": spec(space={bad: {"grid": [1]}}), "base": spec(base={**TINY, bad: 1}),
            "variant": spec(variants={"odd": {bad: 1}})}[where]
    refused(data, bad)


def test_a_bad_value_is_named_with_its_key():
    refused(spec(space={"train.epochs": {"grid": [2, 0]}}), "space.train.epochs=0", "train.epochs must be at least 1")


@pytest.mark.parametrize("data, needle", [
    (spec(space={}), "the search space is empty"),
    (spec(space=None), "the search space is empty"),
    (spec(metric="val"), "unknown key 'metric'"),
    (spec(space={"optim.lr": {"uniform": [0.1, 0.01]}}, search="random"), "lo < hi"),
    (spec(space={"optim.lr": {"loguniform": [0.0, 0.1]}}, search="random"), "lo > 0"),
    (spec(space={"optim.lr": {"grid": []}}), "non-empty list"),
    (spec(space={"optim.lr": [0.1]}), "space.optim.lr must be one of"),
    (spec(space={"optim.lr": {"uniform": [0.001, 0.1]}}), "search grid tries listed values only"),
    (spec(space={"optim.lr": {"grid": [0.1]}}, search="optuna"), "use choice"),
    (spec(space={"optim.lr": {"choice": [0.1]}}, search="optuna", rank="none"), "optuna steers by the validation figure"),
    (spec(num_samples=3), "search grid runs every configuration once"),
    (spec(seeds=[]), "seeds must be a non-empty list"),
    (spec(seeds=[0, 0]), "distinct"),
    (spec(resources={"tpu": 1}), "resources.tpu: unknown"),
    (spec(resources={"cpu": 0}), "resources.cpu must be a number above 0"),
    (spec(search="bayes"), "search 'bayes' is not one of grid, random, optuna"),
    (spec(model=None), "model must be a name"),
])
def test_bad_specs_are_refused_in_one_line(data, needle):
    refused(data, needle)


@pytest.mark.parametrize("rank", ["test", "best-test", "test_spearman"])
def test_ranking_on_test_is_refused(rank):
    refused(spec(rank=rank), "ranks trials on the test split: refused")


def test_selecting_checkpoints_on_test_is_refused_even_unranked():
    refused(spec(rank="none", base={**TINY, "train.select": "best-test"}), "best-test selects checkpoints on the test split")
    refused(spec(base={**TINY, "train.select": "final"}), "rank best-val needs train.select best-val")


def test_rank_val_folds_needs_val_folds():
    refused(spec(rank="val_folds"), "needs train.val_folds")
    parsed = parse_spec(spec(rank="val_folds", base={**TINY, "train.val_folds": 3}), "s.yaml")
    assert parsed.config(parsed.grid()[0]).train.val_folds == 3


def test_random_and_optuna_specs_draw_from_ranges_and_choices():
    parsed = parse_spec(spec(search="random", num_samples=4, space={"optim.lr": {"loguniform": [1e-3, 1e-1]},
                                                                   "model.args.dropout": {"choice": [0.1, 0.3]}}), "s.yaml")
    assert parsed.num_samples == 4 and [d.kind for d in parsed.space] == ["loguniform", "choice"]
    assert parse_spec(spec(search="optuna", space={"optim.lr": {"uniform": [1e-3, 1e-1]}}), "s.yaml").num_samples == 10


def test_the_shipped_cofinal_ablations_spec_names_the_ablation_table():
    parsed = load_spec("cofinal-ablations-fisv")
    names = [trial_name(parsed, v) for v in parsed.grid()]
    assert names == [f"{variant}_{score}" for variant in ("full", "no-graph", "no-tfm", "no-gpm", "no-fgs")
                     for score in ("fisv-tes", "fisv-pcs")]
    assert parsed.seeds == [0, 1, 2] and parsed.rank == "none"
    config = parsed.config({VARIANT: "no-fgs", BENCHMARK: "fisv-pcs"})
    assert (config.benchmark, config.train.crop_len, config.train.epochs, config.train.precision) == ("fisv-pcs", 124, 200, "32-true")
    assert config.model.args["use_fgs"] is False and config.model.args["use_tfm"] is True
    one = load_spec("cofinal-ablations-fisv", benchmark="fisv-pcs")
    assert one.benchmarks == ["fisv-pcs"] and [trial_name(one, v) for v in one.grid()][:2] == ["full", "no-graph"]


def test_several_benchmarks_are_the_last_dimension_and_pair_in_results():
    parsed = parse_spec(spec(benchmark=["synthetic", "synthetic-confounded"], space={"optim.lr": {"grid": [0.01]}}, rank="none"),
                        "s.yaml")
    grid = parsed.grid()
    assert [trial_name(parsed, v) for v in grid] == ["lr=0.01_synthetic", "lr=0.01_synthetic-confounded"]
    assert [parsed.config(v).benchmark for v in grid] == ["synthetic", "synthetic-confounded"]
    assert parsed.to_dict()["benchmark"] == ["synthetic", "synthetic-confounded"] and "benchmark" not in parsed.to_dict()["space"]
    assert parse_spec(spec(), "s.yaml").to_dict()["benchmark"] == "synthetic"
    refused(spec(benchmark=["synthetic", "synthetic"]), "benchmark must be a name or a list of distinct names")
    refused(spec(benchmark=[]), "benchmark must be")
    refused(spec(benchmark=["synthetic", "no-such-benchmark"], rank="none"), "benchmark no-such-benchmark:")
    # Validation figures of different benchmarks do not rank one another: several benchmarks are a table.
    refused(spec(benchmark=["synthetic", "synthetic-confounded"]), "several benchmarks make a table", "rank best-val")
    refused(spec(benchmark=["synthetic", "synthetic-confounded"], search="random", rank="none",
                 space={"optim.lr": {"uniform": [0.001, 0.01]}}), "search random")
    refused(spec(space={"benchmark": {"grid": ["synthetic"]}}), "list them under benchmark")


def test_settings_given_on_the_command_line_replace_the_base_and_are_checked():
    short = load_spec("cofinal-ablations-fisv", settings={"train.epochs": 3})
    assert short.base["train.epochs"] == 3 and short.base["train.precision"] == "32-true"
    assert short.config(short.grid()[0]).train.epochs == 3
    with pytest.raises(ConfigError, match="unknown setting model.args.no_such_thing"):
        load_spec("cofinal-ablations-fisv", settings={"model.args.no_such_thing": 1})


def test_an_unknown_spec_name_lists_the_built_in_ones():
    with pytest.raises(ConfigError, match="cofinal-ablations-fisv"):
        load_spec("no-such-sweep")


def test_a_sweep_folder_is_not_reused_unless_resumed_with_the_same_spec(tmp_path):
    parsed = parse_spec(spec(), "s.yaml")
    folder = tmp_path / "sweep"
    with pytest.raises(RunDirectoryError, match="nothing to resume"):
        prepare_sweep_folder(folder, parsed, resume=True)
    prepare_sweep_folder(folder, parsed, resume=False)
    assert yaml.safe_load((folder / SPEC_FILE).read_text())["seeds"] == [0, 1]
    with pytest.raises(RunDirectoryError, match="already holds a sweep; pass --resume"):
        prepare_sweep_folder(folder, parsed, resume=False)
    prepare_sweep_folder(folder, parsed, resume=True)
    with pytest.raises(RunDirectoryError, match=r"the spec differs \(seeds: saved \[0, 1\], now \[0, 1, 2\]\)"):
        prepare_sweep_folder(folder, parse_spec(spec(seeds=[0, 1, 2]), "s.yaml"), resume=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not empty and holds no sweep"):
        prepare_sweep_folder(other, parsed, resume=False)
    assert (other / "notes.txt").read_text() == "mine"


def test_an_unreachable_cluster_address_fails_in_one_line():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError, match=f"no Ray cluster answered at 127.0.0.1:{port} within 5 s") as caught:
        check_ray_address(f"127.0.0.1:{port}", timeout=5)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        check_ray_address("localhost")
