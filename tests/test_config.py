"""src/config.py and src/checks.py: base chains, overrides, and one-line errors that name the file and key."""
import re
from pathlib import Path

import pytest
import yaml

from src.checks import load_checked_config
from src.config import SCHEMA_PATH, ConfigError, experiment_configs, load_config, read_yaml

REPO = Path(__file__).resolve().parents[1]
EXPECTED_EXPERIMENTS = {
    # name: (arch, encoder, pretrained, rnn_type, scheduler)
    "LSTMCell": ("rnn", "cnn", False, "LSTMCell", "cosine"),
    "LSTMCell_NoScheduler": ("rnn", "cnn", False, "LSTMCell", "none"),
    "GRUCell": ("rnn", "cnn", False, "GRUCell", "cosine"),
    "GRUCell_NoScheduler": ("rnn", "cnn", False, "GRUCell", "none"),
    "GRUCell_EveryStepLoss": ("rnn", "cnn", False, "GRUCell", "cosine"),
    "OwnLSTM": ("rnn", "cnn", False, "OwnLSTM", "cosine"),
    "OwnGRU": ("rnn", "cnn", False, "OwnGRU", "cosine"),
    "OwnConvLSTM": ("rnn", "cnn", False, "OwnConvLSTM", "cosine"),
    "LSTMCell_PretEncoder": ("rnn", "resnet18", True, "LSTMCell", "none"),
    "LSTMCell_PretEncoder_Scheduler": ("rnn", "resnet18", True, "LSTMCell", "cosine"),
    "R2Plus1D": ("r2plus1d", "cnn", False, "GRUCell", "cosine"),
}


def write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def experiment(tmp_path):
    """A valid experiment file in tmp_path whose base is the real configs/base.yaml."""
    return write(tmp_path / "Exp.yaml", f"base: {SCHEMA_PATH}\ntrain:\n  epochs: 3\n")


def test_every_config_loads_with_the_expected_setup():
    paths = experiment_configs()
    assert {p.stem for p in paths} == set(EXPECTED_EXPERIMENTS)
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    for path in paths:
        config = load_checked_config(path)
        assert config["experiment"] == path.stem
        model, train = config["model"], config["train"]
        assert (model["arch"], model["encoder"], model["pretrained"], model["rnn_type"], train["scheduler"]) \
            == EXPECTED_EXPERIMENTS[path.stem], path.name
        assert set(config) == set(schema) | {"experiment"}
        for section in schema:  # every key present, nothing extra
            assert set(config[section]) == set(schema[section]), (path.name, section)
        # the issue's defaults
        assert (train["optimizer"], train["lr"], train["batch_size"]) == ("adam", 1e-3, 32)
        assert (model["emb_dim"], model["hidden_dim"], model["num_layers"]) == (128, 128, 2)
        assert (config["data"]["img_size"], config["data"]["max_frames"]) == (64, 10)


def test_experiment_files_hold_only_what_differs():
    for path in experiment_configs():
        content = yaml.safe_load(path.read_text())
        assert "base" in content, f"{path.name} names no base"
        assert sum(len(v) for v in content.values() if isinstance(v, dict)) <= 4, path.name


def test_base_chain_and_overrides(experiment, tmp_path):
    child = write(tmp_path / "Child.yaml", "base: Exp.yaml\nmodel:\n  hidden_dim: 64\n")
    config = load_checked_config(child, ["train.lr=3e-4", "data.val_persons=[14, 16]", "train.warmup_epochs=2"])
    assert config["train"]["epochs"] == 3                # from Exp.yaml
    assert config["model"]["hidden_dim"] == 64           # from Child.yaml
    assert config["model"]["emb_dim"] == 128             # from base.yaml
    assert config["train"]["lr"] == pytest.approx(3e-4)  # PyYAML reads '3e-4' as a string: taken as float
    assert isinstance(config["train"]["lr"], float)
    assert config["data"]["val_persons"] == [14, 16]
    assert config["experiment"] == "Child"
    assert load_checked_config(child, name="Child_seed1")["experiment"] == "Child_seed1"


def test_int_is_accepted_where_float_is_expected(experiment):
    config = load_checked_config(experiment, ["train.lr=1", "train.grad_clip=0"])
    assert config["train"]["lr"] == 1.0 and isinstance(config["train"]["lr"], float)


@pytest.mark.parametrize("text, key, hint", [
    ("train:\n  epoch: 5\n", "train.epoch", "did you mean 'train.epochs'"),
    ("trian:\n  epochs: 5\n", "trian", "did you mean 'train'"),
    ("model:\n  rnn: GRUCell\n", "model.rnn", None),
])
def test_unknown_key_names_key_and_file(tmp_path, text, key, hint):
    path = write(tmp_path / "Bad.yaml", f"base: {SCHEMA_PATH}\n{text}")
    with pytest.raises(ConfigError) as info:
        load_checked_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and f"unknown key '{key}'" in message
    if hint:
        assert hint in message


@pytest.mark.parametrize("text, key", [
    ("train:\n  epochs: five\n", "train.epochs"),
    ("train:\n  epochs: 2.5\n", "train.epochs"),
    ("train:\n  amp: 1\n", "train.amp"),
    ("train:\n  amp: fast\n", "train.amp"),
    ("train:\n  batch_size: true\n", "train.batch_size"),
    ("data:\n  val_persons: 15\n", "data.val_persons"),
    ("data:\n  val_persons: [15, x]\n", "data.val_persons[1]"),
    ("model: GRUCell\n", "model"),
    ("model:\n  rnn_type: 3\n", "model.rnn_type"),
])
def test_wrong_type_names_key_and_file(tmp_path, text, key):
    path = write(tmp_path / "Bad.yaml", f"base: {SCHEMA_PATH}\n{text}")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: '{key}' must be")) as info:
        load_checked_config(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("override, fragment", [
    ("train.epoch=5", "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
    ("train.epochs=lots", "'train.epochs' must be int"),
    ("train.epochs", "expected KEY=VALUE"),
    ("=5", "expected KEY=VALUE"),
    ("train.epochs=[1", "not valid YAML"),
    ("train=5", "'train' must be a section"),
])
def test_bad_override_names_key_and_file(experiment, override, fragment):
    with pytest.raises(ConfigError) as info:
        load_checked_config(experiment, [override])
    message = str(info.value)
    assert fragment in message and override in message and "\n" not in message
    if "KEY=VALUE" not in fragment and "YAML" not in fragment:
        assert str(experiment) in message


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'Nope.yaml'}: config file not found")):
        load_checked_config(tmp_path / "Nope.yaml")
    orphan = write(tmp_path / "Orphan.yaml", "base: Gone.yaml\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'Gone.yaml'}: config file not found")):
        load_checked_config(orphan)


def test_bad_files(tmp_path):
    loop_a = write(tmp_path / "A.yaml", "base: B.yaml\n")
    write(tmp_path / "B.yaml", "base: A.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_checked_config(loop_a)
    broken = write(tmp_path / "Broken.yaml", "train:\n  epochs: [1\n")
    with pytest.raises(ConfigError, match=re.escape(f"{broken}:") + ".*not valid YAML"):
        load_checked_config(broken)
    listing = write(tmp_path / "List.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match=re.escape(f"{listing}: expected a mapping")):
        load_checked_config(listing)


def test_loading_does_not_change_the_schema(experiment):
    load_checked_config(experiment, ["model.hidden_dim=7"])
    assert load_checked_config(experiment)["model"]["hidden_dim"] == 128


def test_train_command_line_reports_config_errors_in_one_line(experiment):
    from src.train import main

    with pytest.raises(SystemExit) as info:
        main(["--config", str(experiment), "--set", "train.epoch=5"])
    message = str(info.value.code)
    assert "unknown key 'train.epoch'" in message and str(experiment) in message and "\n" not in message


# ------------------------------------------------------------------- the whole config's check

@pytest.mark.parametrize("override, key, value", [
    ("train.epochs=0", "train.epochs", "0"),
    ("train.batch_size=0", "train.batch_size", "0"),
    ("train.batch_size=-4", "train.batch_size", "-4"),
    ("data.img_size=0", "data.img_size", "0"),
    ("data.max_frames=0", "data.max_frames", "0"),
    ("data.slicing_step=0", "data.slicing_step", "0"),
    ("data.train_clips_per_video=0", "data.train_clips_per_video", "0"),
    ("data.eval_clips_per_video=0", "data.eval_clips_per_video", "0"),
    ("data.num_workers=-1", "data.num_workers", "-1"),
    ("model.emb_dim=0", "model.emb_dim", "0"),
    ("model.hidden_dim=0", "model.hidden_dim", "0"),
    ("model.num_layers=0", "model.num_layers", "0"),
    ("model.dropout=1", "model.dropout", "1.0"),
    ("model.dropout=-0.1", "model.dropout", "-0.1"),
    ("model.dropout=.nan", "model.dropout", "nan"),
    ("train.lr=0", "train.lr", "0.0"),
    ("train.lr=-1e-3", "train.lr", "-0.001"),
    ("train.lr=.nan", "train.lr", "nan"),
    ("train.lr=.inf", "train.lr", "inf"),
    ("train.weight_decay=-0.1", "train.weight_decay", "-0.1"),
    ("train.weight_decay=.nan", "train.weight_decay", "nan"),
    ("train.warmup_epochs=-1", "train.warmup_epochs", "-1"),
    ("train.precise_bn_batches=-1", "train.precise_bn_batches", "-1"),
    ("train.grad_clip=-1", "train.grad_clip", "-1.0"),
    ("train.grad_clip=.inf", "train.grad_clip", "inf"),
    ("train.seed=-1", "train.seed", "-1"),
    ("train.seed=4294967296", "train.seed", "4294967296"),
    ("eval.latency_repeats=0", "eval.latency_repeats", "0"),
    ("augment.flip_p=1.5", "augment.flip_p", "1.5"),
    ("augment.flip_p=-0.1", "augment.flip_p", "-0.1"),
    ("augment.flip_p=.nan", "augment.flip_p", "nan"),
    ("augment.rotation=-5", "augment.rotation", "-5"),
    ("augment.rotation=181", "augment.rotation", "181"),
    ("augment.reverse_p=2", "augment.reverse_p", "2"),
    ("model.arch=cnn", "model.arch", "'cnn'"),
    ("model.encoder=resnet50", "model.encoder", "'resnet50'"),
    ("model.rnn_type=GRU", "model.rnn_type", "'GRU'"),
    ("train.optimizer=rmsprop", "train.optimizer", "'rmsprop'"),
    ("train.scheduler=linear", "train.scheduler", "'linear'"),
    ("data.synthetic_preset=huge", "data.synthetic_preset", "'huge'"),
    ("train.device=foo", "train.device", "'foo'"),
    ("train.device=cuda:x", "train.device", "'cuda:x'"),
    ("train.device=''", "train.device", "''"),
    ("data.val_persons=[]", "data.val_persons", "[]"),
    ("data.val_persons=[15, 15]", "data.val_persons", "[15, 15]"),
    ("data.val_persons=[17]", "data.val_persons", "[17]"),
    ("data.val_persons=[0]", "data.val_persons", "[0]"),
    (f"data.val_persons={list(range(1, 17))}", "data.val_persons", str(list(range(1, 17)))),
    ("model.pretrained=true", "model.pretrained", "True"),  # encoder cnn: no pretrained weights
    ("data.split=loo", "data.split", "'loo'"),
    ("data.channels=2", "data.channels", "2"),
    ("data.fold=0", "data.fold", "0"),
    ("data.folds=1", "data.folds", "1"),
    ("data.val_fraction=0", "data.val_fraction", "0.0"),
    ("data.val_fraction=1", "data.val_fraction", "1.0"),
    ("data.test_fraction=1.5", "data.test_fraction", "1.5"),
    ("data.split_seed=-1", "data.split_seed", "-1"),
    ("data.groups=[]", "data.groups", "[]"),
    ("data.groups=[3, 3]", "data.groups", "[3, 3]"),
    ("data.groups=3", "data.groups", "int 3"),
    ("data.groups=[[1]]", "data.groups", "list [[1]]"),
    ("data.groups=[true]", "data.groups", "list [True]"),
    ("train.label_smoothing=1", "train.label_smoothing", "1.0"),
    ("train.label_smoothing=-0.1", "train.label_smoothing", "-0.1"),
    ("train.label_smoothing=.nan", "train.label_smoothing", "nan"),
    ("train.ema_decay=1", "train.ema_decay", "1.0"),
    ("train.ema_decay=-0.5", "train.ema_decay", "-0.5"),
    ("train.ema_decay=.nan", "train.ema_decay", "nan"),
    ("train.ema_decay=true", "train.ema_decay", "bool True"),
    ("train.select=first", "train.select", "'first'"),
    ("train.select=1", "train.select", "int 1"),
])
def test_bad_value_names_override_key_and_value(experiment, override, key, value):
    with pytest.raises(ConfigError) as info:
        load_checked_config(experiment, [override])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{experiment} --set {override}: '{key}' must "), message
    assert f"got {value}" in message


@pytest.mark.parametrize("overrides, fragment", [
    (["train.optimizer=Adam"], "one of adam, adamw, sgd, got 'Adam' (did you mean 'adam'?)"),
    ([f"data.val_persons={list(range(1, 17))}"], "none would be left to train on"),
    (["data.val_persons=[17, 18]"], "(17 is a test person)"),
    (["data.val_persons=[14, 30]"], "(30 is not a KTH person)"),
    (["data.val_persons=[3, 4, 3]"], "each person once"),
    (["data.img_size=0"], ">= 1"),
    (["augment.flip_p=2"], "'augment.flip_p' must be in [0, 1] (the probability of a horizontal flip per clip), got 2"),
    (["augment.rotation=200"], "'augment.rotation' must be in [0, 180] (degrees either way; 0: no rotation), got 200"),
    (["model.arch=r2plus1d", "model.pretrained=true"], "with model.arch 'r2plus1d', which has no pretrained weights"),
    (["model.pretrained=true"], "with model.encoder 'cnn', which has no pretrained weights"),
    (["data.split=kfold", "data.fold=6"], "'data.fold' must be 1 to data.folds (5) with data.split kfold, got 6"),
    (["data.split=kfolds"], "one of auto, course, schuldt2004, given, kfold, random, got 'kfolds' (did you mean "
                            "'kfold'?)"),
    (["data.groups=[a, a]"], "must list each group once, at least one (or be null for all), got ['a', 'a'] (a more "
                             "than once)"),
    (["data.channels=4"], "1 (grayscale) or 3 (colour)"),
    (["train.label_smoothing=1.5"], "'train.label_smoothing' must be in [0, 1) (0: none), got 1.5"),
    (["train.ema_decay=1"], "'train.ema_decay' must be 0 (off) or in (0, 1) (e.g. 0.999: a time constant of 1000 "
                            "steps), got 1.0"),
    (["train.select=Last"], "'train.select' must be one of best, last, got 'Last' (did you mean 'last'?)"),
    (["model.arch=r2plus1d", "train.loss_on_every_step=true"],
     "'train.loss_on_every_step' must be false with model.arch 'r2plus1d'"),
])
def test_bad_value_says_what_is_allowed(experiment, overrides, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_checked_config(experiment, overrides)


@pytest.mark.parametrize("overrides", [
    ["model.encoder=resnet18", "model.pretrained=true"],   # weights are read when the model is built, not here
    ["model.arch=r2plus1d_18", "model.pretrained=true"],
    ["model.arch=r2plus1d", "model.rnn_type=OwnConvLSTM"],  # the r2plus1d archs ignore the rnn keys
    ["train.warmup_epochs=0", "train.precise_bn_batches=0", "train.grad_clip=0", "data.num_workers=0"],
    ["data.img_size=1", "data.max_frames=1", "data.slicing_step=1", "model.dropout=0"],
    ["data.val_persons=[1]", f"data.val_persons={list(range(1, 16))}"],
    ["train.device=cpu", "train.seed=4294967295", "data.synthetic_preset=tiny"],
    ["augment.flip_p=0", "augment.rotation=0", "augment.reverse_p=0"],   # no augmentation
    ["augment.flip_p=1", "augment.rotation=180", "augment.reverse_p=1"],
    ["train.amp=auto"], ["train.amp=true"], ["train.amp=false"],
    ["data.split=kfold", "data.folds=2", "data.fold=2", "data.val_fraction=0.01", "data.split_seed=4294967295"],
    ["data.split=given", "data.fold=9"],  # whether the data ships fold 9 is the data's question, not the config's
    ["data.groups=[1, 2, alice]", "data.channels=3", "data.test_fraction=0.99"],
    ["data.groups=null", "data.split=schuldt2004"],
    ["train.label_smoothing=0", "train.ema_decay=0", "train.select=best"],  # all off
    ["train.label_smoothing=0.99", "train.ema_decay=0.9999", "train.select=last"],
    ["train.ema_decay=1e-6"],
])
def test_edge_values_that_work_are_accepted(experiment, overrides):
    load_checked_config(experiment, overrides)


def test_train_amp_is_auto_true_or_false(experiment):
    assert load_checked_config(experiment)["train"]["amp"] == "auto"  # the default: bfloat16 only where the CPU has it
    assert load_checked_config(experiment, ["train.amp=true"])["train"]["amp"] is True
    with pytest.raises(ConfigError) as info:
        load_checked_config(experiment, ["train.amp=bf16"])
    assert str(info.value) == (f"{experiment} --set train.amp=bf16: 'train.amp' must be auto, true or false, "
                               f"got string 'bf16'")


def test_bad_value_in_a_file_names_the_file_that_set_it(tmp_path):
    parent = write(tmp_path / "Parent.yaml", f"base: {SCHEMA_PATH}\ntrain:\n  epochs: 0\n")
    child = write(tmp_path / "Child.yaml", "base: Parent.yaml\nmodel:\n  hidden_dim: 64\n")
    with pytest.raises(ConfigError, match=re.escape(f"{parent}: 'train.epochs' must be >= 1, got 0")):
        load_checked_config(child)
    assert load_checked_config(child, ["train.epochs=2"])["train"]["epochs"] == 2  # an override mends it
    device = write(tmp_path / "Device.yaml", f"base: {SCHEMA_PATH}\ntrain:\n  device: foo\n")
    with pytest.raises(ConfigError, match=re.escape(f"{device}: 'train.device' must be a device of this machine")):
        load_checked_config(device)


def test_the_last_override_of_a_key_is_named(experiment):
    with pytest.raises(ConfigError) as info:
        load_checked_config(experiment, ["train.epochs=3", "train.lr=0.1", "train.epochs=0"])
    assert str(info.value).startswith(f"{experiment} --set train.epochs=0: 'train.epochs'")


def test_a_device_this_machine_lacks_is_refused(experiment, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as info:
        load_checked_config(experiment, ["train.device=cuda"])
    assert "'train.device' must be a device of this machine (auto, cpu" in str(info.value)
    assert "got 'cuda' (torch sees no CUDA devices here)" in str(info.value)


@pytest.mark.slow  # a python subprocess
def test_importing_the_config_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, src.config; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SCHEMA_PATH.parents[1])


def test_the_augment_defaults_are_the_course_faces():
    """configs/base.yaml's augment: section and the constant get_train_transforms and
    ClipBatchAugmentation fall back to hold the same recipe under the same names."""
    from src.data.augment import AUGMENT_DEFAULTS

    assert yaml.safe_load(SCHEMA_PATH.read_text())["augment"] == AUGMENT_DEFAULTS
    for path in experiment_configs():
        assert load_checked_config(path)["augment"] == AUGMENT_DEFAULTS, path.name


def test_builders_take_their_choices_from_the_modules_that_own_them():
    import src.config
    import src.nets.classifier
    import src.nets.registry
    import src.training.trainer

    assert src.nets.classifier.RNN_TYPES is src.nets.registry.RNN_TYPES
    assert src.nets.classifier.ARCHS is src.nets.registry.ARCHS
    assert src.training.trainer.OPTIMIZERS is src.config.OPTIMIZERS
    assert src.training.trainer.SCHEDULERS is src.config.SCHEDULERS


def test_the_config_module_is_a_leaf_and_load_config_checks_its_own_values(experiment, monkeypatch):
    """src/config.py imports nothing of src; load_config refuses keys, types, ranges and its own choices, and
    leaves the domain (devices, networks, splits) to src.checks.check."""
    import ast

    tree = ast.parse(SCHEMA_PATH.parents[1].joinpath("src", "config.py").read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + \
        [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and name.split(".")[0] == "src"]
    with pytest.raises(ConfigError, match="'train.epochs' must be >= 1"):
        load_config(experiment, ["train.epochs=0"])
    with pytest.raises(ConfigError, match="'train.optimizer' must be one of adam"):
        load_config(experiment, ["train.optimizer=rmsprop"])
    assert load_config(experiment, ["train.device=foo"])["train"]["device"] == "foo"
    assert load_config(experiment, ["model.arch=cnn"])["model"]["arch"] == "cnn"


def test_the_split_keys_and_their_defaults():
    data = load_checked_config("configs/GRUCell.yaml")["data"]
    assert {key: data[key] for key in ("split", "val_persons", "fold", "folds", "val_fraction", "test_fraction",
                                       "split_seed", "groups", "channels")} == {
        "split": "auto", "val_persons": [15, 16], "fold": 1, "folds": 5, "val_fraction": 0.2, "test_fraction": 0.2,
        "split_seed": 0, "groups": None, "channels": "auto"}  # channels: the prepared data's (issue 33)
    for value, taken in (("auto", "auto"), ("1", 1), ("3", 3)):
        assert load_checked_config("configs/GRUCell.yaml", [f"data.channels={value}"])["data"]["channels"] == taken
    for value in ("true", "gray", "3.0"):
        with pytest.raises(ConfigError, match=r"'data.channels' must be"):
            load_checked_config("configs/GRUCell.yaml", [f"data.channels={value}"])
    assert load_checked_config("configs/GRUCell.yaml", ["data.groups=[1, b]"])["data"]["groups"] == [1, "b"]


def test_the_recipe_keys_default_to_the_recipe_study_choice():
    """base.yaml's recipe (issue 19): 8 clips per training video and the weights' average, no label smoothing, the
    best validation epoch (tests/test_recipe.py ties them to results/recipe.md's choice)."""
    config = load_checked_config("configs/GRUCell.yaml")
    train = config["train"]
    assert (config["data"]["train_clips_per_video"], train["ema_decay"]) == (8, 0.983)
    assert (train["label_smoothing"], train["select"]) == (0.0, "best")
    assert isinstance(train["label_smoothing"], float) and isinstance(train["ema_decay"], float)


def test_groups_the_data_does_not_hold_are_refused_from_its_index_naming_the_override(tiny_prepared, tmp_path,
                                                                                      monkeypatch):
    """issue 34 #12: ``data.groups=[999]`` names the --set and the data's groups, before a frame is read: from the
    prepared data's index.json, or, for ``auto`` before the twin is made, from its preset's persons."""
    from src.checks import data_groups_refusal

    experiment = REPO / "configs" / "GRUCell.yaml"
    with pytest.raises(ConfigError) as refusal:
        load_checked_config(experiment, ["data.groups=[1, 999]"], reads_data=True, data_root=tiny_prepared)
    assert str(refusal.value) == (f"{experiment} --set data.groups=[1, 999]: 'data.groups': 999 is not a group of "
                                  f"{tiny_prepared} (its groups: 1, 2, 15, 17); list groups it holds, or null for all")
    assert load_checked_config(experiment, ["data.groups=[1, 999]"])["data"]["groups"] == [1, 999]  # no data named
    data = load_config(experiment, ["data.groups=[2, 17]"])["data"]
    assert data_groups_refusal(data, tiny_prepared) is None
    assert data_groups_refusal(data, tmp_path / "not prepared") is None  # refused when it is read
    monkeypatch.chdir(tmp_path)  # no data/: auto is the twin src.train would make
    assert "3 is not a group of the synthetic twin of preset tiny (its groups: 1, 2, 15, 17)" in data_groups_refusal(
        {**data, "groups": [3], "synthetic_preset": "tiny"})
    assert data_groups_refusal({**data, "groups": [25]}) is None  # the full twin: persons 1-25
    assert not (tmp_path / "data").exists()


def test_a_key_given_twice_is_refused_naming_the_file_the_lines_and_the_key(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("base: base.yaml\ntrain:\n  epochs: 1\nmodel:\n  hidden_dim: 8\ntrain:\n  batch_size: 4\n")
    with pytest.raises(ConfigError) as refusal:
        read_yaml(path)
    message = str(refusal.value)
    assert "\n" not in message and message.startswith(f"{path}: line 6 is not valid YAML")
    assert "key 'train' given twice (lines 2 and 6)" in message


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(6))
"""Nested YAML aliases: 9 * 4**6 = 36,864 leaves from 7 lines (each further line 4 times more)."""


def test_anchors_and_aliases_are_refused_in_one_short_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(f"data:\n  groups: [1]\n{ALIAS_BOMB}")
    with pytest.raises(ConfigError) as refusal:
        read_yaml(path)
    message = str(refusal.value)
    assert "\n" not in message and len(message) < 300 and "anchors and aliases" in message


@pytest.mark.parametrize("encoding", ["utf-16", "binary"])
def test_a_config_that_is_not_utf8_is_refused_naming_the_file(tmp_path, encoding):
    path = tmp_path / "odd.yaml"
    path.write_bytes("train:\n  epochs: 1\n".encode("utf-16") if encoding == "utf-16" else bytes(range(256)))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not UTF-8 text \(byte \d+"):
        read_yaml(path)


# ----------------------------------------------------------------------------- sizes that cannot fit (issue 34)
ISSUE_SIZES = ["model.hidden_dim=1000000", "model.emb_dim=1000000", "data.max_frames=1000000",
               "data.img_size=100000", "model.num_layers=20000", "data.eval_clips_per_video=1000000"]


@pytest.mark.parametrize("override", ISSUE_SIZES)
def test_a_size_that_cannot_fit_is_refused_naming_the_key_and_what_fits(override, monkeypatch):
    import src.checks
    monkeypatch.setattr(src.checks, "machine_memory", lambda: 16 * 2 ** 30)
    key, value = override.split("=")
    with pytest.raises(ConfigError) as info:
        load_checked_config("configs/GRUCell.yaml", [override])
    message = str(info.value)
    assert message.startswith(f"configs/GRUCell.yaml --set {override}: '{key}' is {int(value):,}: ")
    assert "more than this machine's 16.0 GB of memory" in message and "\n" not in message
    bound = int(re.search(r"at most about ([\d,]+) here", message).group(1).replace(",", ""))
    assert 1 <= bound < int(value)
    load_checked_config("configs/GRUCell.yaml", [f"{key}={bound}"])  # the bound it gives fits
    with pytest.raises(ConfigError):
        load_checked_config("configs/GRUCell.yaml", [f"{key}={bound + 1}"])


@pytest.mark.parametrize("experiment", ["GRUCell", "LSTMCell", "OwnLSTM", "OwnConvLSTM", "R2Plus1D"])
def test_every_experiment_fits_and_its_parameters_are_counted_without_building_it(experiment):
    from src.checks import memory_estimate, parameter_count
    from src.nets.classifier import build_model, count_parameters
    config = load_checked_config(f"configs/{experiment}.yaml")
    assert memory_estimate(config)["total"] < 4 * 2 ** 30
    counted = count_parameters(build_model(config["model"], 6, 1, load_pretrained=False))
    assert abs(parameter_count(config["model"], 1, 6) - counted) <= 0.01 * counted
    for layers in (1, 3):
        model = {**config["model"], "num_layers": layers, "hidden_dim": 24, "emb_dim": 16}
        if model["arch"] == "rnn":
            assert parameter_count(model, 1, 6) == count_parameters(build_model(model, 6, 1, load_pretrained=False))


@pytest.mark.parametrize("name", [".", "..", "/abs/path", "../escaped", "a/b", "", ".hidden", "-rf", "a\nb", "x" * 129,
                                  "a b"])
def test_a_run_name_that_is_not_one_safe_path_component_is_refused(name):
    with pytest.raises(ConfigError) as info:
        load_config("configs/GRUCell.yaml", name=name)
    assert str(info.value).startswith(f"name={name!r}: a run name must be one path component")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["GRUCell_seed1", "R2Plus1D", "lr1e-3+ema", "v1.2", "Übung"])
def test_a_run_name_of_safe_characters_names_the_run(name):
    assert load_config("configs/GRUCell.yaml", name=name)["experiment"] == name


def test_a_config_file_whose_stem_cannot_name_a_run_says_so(tmp_path):
    path = tmp_path / ".hidden.yaml"  # stem '.hidden'
    path.write_text("base: " + str(Path("configs/GRUCell.yaml").resolve()) + "\n")
    with pytest.raises(ConfigError, match=r"its stem '\.hidden' names the run.*\(name=NAME\)"):
        load_config(path)
    assert load_config(path, name="Hidden")["experiment"] == "Hidden"
