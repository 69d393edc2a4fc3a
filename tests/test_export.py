"""src/export.py: every model type to ONNX, run in onnxruntime, against PyTorch."""
import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from src.checkpoint import load_model, save_checkpoint
from src.classifier import build_model
from src.config import load_config
from src.export import main
from src.kth import ACTIONS

SMALL = ["model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=2", "data.max_frames=3", "data.img_size=32"]
MODELS = {rnn_type: [f"model.rnn_type={rnn_type}"]
          for rnn_type in ("LSTMCell", "GRUCell", "OwnLSTM", "OwnGRU", "OwnConvLSTM")}
MODELS["R2Plus1D"] = ["model.arch=r2plus1d"]


def small_checkpoint(path, overrides):
    """A checkpoint (config + random weights) that load_model reads, without training."""
    torch.manual_seed(0)
    config = load_config("configs/GRUCell.yaml", [*SMALL, *overrides])
    model = build_model(config["model"])
    with torch.no_grad():  # BatchNorm statistics away from (0, 1), so that eval mode matters
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    save_checkpoint({"config": config, "model_state_dict": model.state_dict()}, path)
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
    assert json.loads(metadata["actions"]) == list(ACTIONS)


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
