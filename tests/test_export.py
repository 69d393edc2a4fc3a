"""src/export.py: every model type to ONNX, run in onnxruntime, against PyTorch."""
import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from src.config import load_config
from src.data.sources.kth import ACTIONS
from src.export import main
from src.nets.classifier import build_model
from src.training.checkpoint import load_model, save_checkpoint
from tests.conftest import FOUR_CLASSES

SMALL = ["model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=2", "data.max_frames=3", "data.img_size=32"]
MODELS = {rnn_type: [f"model.rnn_type={rnn_type}"]
          for rnn_type in ("LSTMCell", "GRUCell", "OwnLSTM", "OwnGRU", "OwnConvLSTM")}
MODELS["R2Plus1D"] = ["model.arch=r2plus1d"]


def small_checkpoint(path, overrides):
    """A checkpoint (config + random weights) that load_model reads, without training."""
    torch.manual_seed(0)
    config = load_config("configs/GRUCell.yaml", [*SMALL, *overrides])
    model = build_model(config["model"], len(ACTIONS))
    with torch.no_grad():  # BatchNorm statistics away from (0, 1), so that eval mode matters
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    save_checkpoint({"config": config, "model_state_dict": model.state_dict(), "classes": list(ACTIONS),
                     "channels": 1}, path)
    return path


@pytest.mark.parametrize("kind", MODELS)
def test_onnx_matches_pytorch_for_any_batch_size(kind, tmp_path, capsys):
    checkpoint = small_checkpoint(tmp_path / "best.pth", MODELS[kind])
    assert main(["--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "model.onnx")]) == 0
    assert "model.onnx" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth", "model.onnx"]  # no temp file left

    model, _ = load_model(checkpoint)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["clips"]
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 3, 5):  # traced at batch 2: the batch size is dynamic
        clips = torch.rand(batch, 3, 1, 32, 32, generator=generator)
        with torch.no_grad():
            expected = model(clips).numpy()
        (logits,) = session.run(None, {"clips": clips.numpy()})
        assert logits.shape == (batch, 6)
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)

    metadata = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    config = json.loads(metadata["config"])  # what src.predict needs for the preprocessing
    assert (config["data"]["max_frames"], config["data"]["img_size"]) == (3, 32)
    assert config["model"] == load_config("configs/GRUCell.yaml", [*SMALL, *MODELS[kind]])["model"]
    assert json.loads(metadata["classes"]) == list(ACTIONS)


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    assert main(["--checkpoint", str(tmp_path / "notes.pth"), "--onnx", str(tmp_path / "x.onnx")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and str(tmp_path / "notes.pth") in error and "\n" not in error
    assert not (tmp_path / "x.onnx").exists()


def test_an_export_that_cannot_work_names_the_reason(tmp_path, capsys, monkeypatch):
    checkpoint = small_checkpoint(tmp_path / "best.pth", MODELS["OwnGRU"])

    def unsupported(*args, **kwargs):
        raise RuntimeError("Unsupported: aten::frobnicate has no ONNX equivalent\nlong traceback ...")
    monkeypatch.setattr(torch.onnx, "export", unsupported)
    assert main(["--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "x.onnx")]) == 1
    error = capsys.readouterr().err.strip()
    assert "cannot export OwnGRU to ONNX" in error and "aten::frobnicate" in error and "\n" not in error
    assert not (tmp_path / "x.onnx").exists()


def test_bad_arguments_are_one_line_before_the_checkpoint_is_read(tmp_path, capsys):
    (tmp_path / "a_folder.onnx").mkdir()
    missing = tmp_path / "missing.pth"  # never read: each argument is refused first
    for args, words in ((["--onnx", str(tmp_path / "model.txt")], ["--onnx", "must end in .onnx"]),
                        (["--onnx", str(tmp_path / "a_folder.onnx")], ["a_folder.onnx", "is a folder"]),
                        (["--onnx", str(tmp_path / "m.onnx"), "--opset", "99"], ["--opset 99", "18 to"])):
        assert main(["--checkpoint", str(missing), *args]) == 1
        error = capsys.readouterr().err
        assert error.startswith("error: ") and error.count("\n") == 1 and all(w in error for w in words), error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder.onnx"]


def test_a_failed_write_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import errno

    checkpoint = small_checkpoint(tmp_path / "best.pth", MODELS["GRUCell"])

    class Program:  # what torch.onnx.export returns, with a disk that is full
        model = type("Model", (), {"metadata_props": {}})()

        def save(self, path):
            with open(path, "wb") as f:
                f.write(b"half a model")
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: Program())
    assert main(["--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "out" / "m.onnx")]) == 1
    error = capsys.readouterr().err
    assert error == f"error: --onnx {tmp_path / 'out' / 'm.onnx'}: could not be written (No space left on device); " \
                    f"nothing was written\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_the_onnx_export_of_a_four_class_checkpoint_names_its_classes_for_predict(four_class_run, tiny_raw, tmp_path,
                                                                                capsys):
    from src.predict import main as predict

    best, path = four_class_run / "models" / "GRUCell" / "best.pth", tmp_path / "four.onnx"
    assert main(["--checkpoint", str(best), "--onnx", str(path)]) == 0
    capsys.readouterr()
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(metadata["classes"]) == FOUR_CLASSES
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [4, 1, 64, 64] and session.get_outputs()[0].shape[1] == 4
    video = str(sorted(tiny_raw.glob("running/*.avi"))[0])
    assert predict(["--checkpoint", str(path), video, "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["action"] in FOUR_CLASSES and list(result["probabilities"]) == FOUR_CLASSES
    assert predict(["--checkpoint", str(path), video]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["input", "action", *FOUR_CLASSES]

    nameless = onnx.load(str(path))  # an ONNX file without the class names: refused in one line
    for prop in [p for p in nameless.metadata_props if p.key == "classes"]:
        nameless.metadata_props.remove(prop)
    onnx.save(nameless, str(tmp_path / "nameless.onnx"))
    assert predict(["--checkpoint", str(tmp_path / "nameless.onnx"), video]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds no 'classes' metadata" in error and "nameless.onnx" in error


def test_a_colour_checkpoint_exports_with_three_input_channels(tmp_path):
    torch.manual_seed(0)
    config = load_config("configs/GRUCell.yaml", SMALL)
    model = build_model(config["model"], num_classes=2, in_channels=3).eval()
    save_checkpoint({"config": config, "model_state_dict": model.state_dict(), "classes": ["red", "blue"],
                     "channels": 3}, tmp_path / "best.pth")
    assert main(["--checkpoint", str(tmp_path / "best.pth"), "--onnx", str(tmp_path / "rgb.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "rgb.onnx"), providers=["CPUExecutionProvider"])
    clips = torch.rand(3, 3, 3, 32, 32)
    (logits,) = session.run(None, {"clips": clips.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(clips).numpy(), atol=1e-4, rtol=0)
    metadata = {p.key: p.value for p in onnx.load(str(tmp_path / "rgb.onnx")).metadata_props}
    assert json.loads(metadata["classes"]) == ["red", "blue"]


def test_a_pth_for_inference_is_smaller_and_evaluates_and_predicts_as_the_checkpoint(four_class_run, tiny_raw,
                                                                                   tmp_path, capsys):
    from src.predict import main as predict
    from src.training.checkpoint import RESUME_ONLY_KEYS
    from src.training.evaluation import evaluate

    best, slim = four_class_run / "models" / "GRUCell" / "best.pth", tmp_path / "GRUCell" / "best.pth"
    assert main(["--checkpoint", str(best), "--pth", str(slim)]) == 0
    assert "MB, for inference" in capsys.readouterr().out
    assert slim.stat().st_size < best.stat().st_size / 2  # the optimizer's moments alone are twice the weights
    assert not set(RESUME_ONLY_KEYS) & set(torch.load(slim))
    (model, _), (original, _) = load_model(slim), load_model(best)
    clips = torch.rand(2, 4, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(clips), original(clips))
    expected = json.loads((best.parent / "results.json").read_text())
    assert evaluate(slim, device="cpu")["clip_accuracy"] == expected["clip_accuracy"]
    video = str(sorted(tiny_raw.glob("running/*.avi"))[0])
    outputs = []
    for checkpoint in (best, slim):
        assert predict(["--checkpoint", str(checkpoint), video, "--json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out)[0]["probabilities"])
    assert outputs[0] == outputs[1]


def test_a_bad_pth_path_is_one_line_and_writes_nothing(tmp_path, capsys):
    checkpoint = small_checkpoint(tmp_path / "best.pth", MODELS["GRUCell"])
    before = checkpoint.read_bytes()
    for args, words in ((["--pth", str(tmp_path / "model.pt")], ["--pth", "must end in .pth"]),
                        (["--pth", str(checkpoint)], ["is the --checkpoint itself"]),
                        (["--pth", str(tmp_path / "x.pth")], ["missing.pth"])):
        source = tmp_path / "missing.pth" if words == ["missing.pth"] else checkpoint
        assert main(["--checkpoint", str(source), *args]) == 1
        error = capsys.readouterr().err
        assert error.startswith("error: ") and error.count("\n") == 1 and all(w in error for w in words), error
    assert checkpoint.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["best.pth"]
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(checkpoint)])  # neither --onnx nor --pth
    assert "give --onnx FILE.onnx, --pth FILE.pth, or both" in capsys.readouterr().err


def test_the_use_it_with_line_quotes_a_path_with_spaces(tmp_path, capsys):
    import shlex

    checkpoint = small_checkpoint(tmp_path / "best.pth", next(iter(MODELS.values())))
    onnx_path = tmp_path / "my models" / "model 1.onnx"
    assert main(["--checkpoint", str(checkpoint), "--onnx", str(onnx_path)]) == 0
    command = capsys.readouterr().out.split("use it with: ")[1].rstrip(")\n")
    assert shlex.split(command) == ["python", "-m", "src.predict", "--checkpoint", str(onnx_path), "VIDEO"]


@pytest.mark.parametrize("kind", [kind for kind in MODELS if kind != "R2Plus1D"])
def test_the_streaming_step_exports_with_its_state_explicit_and_streams_like_pytorch(kind, tmp_path, capsys):
    """--stream: the one-step graph; GraphStream around its session = StreamingClassifier within 1e-4, past
    max_frames and through the 'window' rule's resets."""
    from src.inference.predictor import load_predictor
    from src.nets.streaming import StreamingClassifier

    checkpoint = small_checkpoint(tmp_path / "best.pth", MODELS[kind])
    assert main(["--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "step.onnx"), "--stream"]) == 0
    assert "--stream SOURCE" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(tmp_path / "step.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names[:6] == ["frame", "rows", "window", "total", "seen", "count"] and names[6] == "state0"
    model, _ = load_model(checkpoint)
    reference = StreamingClassifier(model, 3)
    stream = load_predictor(tmp_path / "step.onnx").open_stream("window", None)
    frames = torch.rand(10, 2, 1, 32, 32, generator=torch.Generator().manual_seed(2))  # batch 2, 10 steps
    for frame in frames:
        np.testing.assert_allclose(stream.step(frame).numpy(), reference.step(frame).numpy(), atol=1e-4, rtol=0)
        assert stream.answer_frames == reference.answer_frames


def test_a_clip_network_has_no_streaming_step_to_export(tmp_path, capsys):
    checkpoint = small_checkpoint(tmp_path / "best.pth", MODELS["R2Plus1D"])
    assert main(["--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "step.onnx"), "--stream"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "r2plus1d is a clip network with no state to carry" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth"]
    with pytest.raises(SystemExit) as info:
        main(["--checkpoint", str(checkpoint), "--pth", str(tmp_path / "slim.pth"), "--stream"])
    assert info.value.code == 2 and "argument --stream: goes with --onnx" in capsys.readouterr().err
