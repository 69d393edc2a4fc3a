"""Tests of src/nets/classifier.py: every encoder x recurrent module, pretrained loading, build_model."""
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torchvision
import yaml

from src.nets.classifier import (
    ENCODERS,
    RNN_TYPES,
    ActionClassifier,
    ConvEncoder,
    StackedCells,
    build_model,
    count_parameters,
)

BASE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
RESNET18_FILE = "resnet18-f37072fd.pth"  # the file name of ResNet18_Weights.IMAGENET1K_V1's url
NUM_CLASSES = 6  # the head size the tests build, unless they say otherwise



def base_model_config() -> dict:
    return yaml.safe_load(BASE_CONFIG.read_text())["model"]


def forward_backward(model: nn.Module, batch: int = 2, frames: int = 4, size: int = 64) -> torch.Tensor:
    """Run a random clip batch through ``model`` and back; check every gradient; return the logits."""
    torch.manual_seed(0)
    clips = torch.rand(batch, frames, 1, size, size)
    logits = model(clips)
    logits.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
    return logits


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_every_rnn_type_with_cnn_encoder_runs_forward_and_backward(rnn_type):
    model = ActionClassifier(rnn_type=rnn_type, emb_dim=32, hidden_dim=24, num_layers=2)
    logits = forward_backward(model)
    assert logits.shape == (2, 6)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_every_step_gives_the_logits_of_every_prefix_of_the_clip(rnn_type):
    """forward(clips, every_step=True)[:, t-1] is forward(clips[:, :t]): the Conv1d head's look-ahead term dropped at
    each prefix's end, as the zero padding of a t-frame clip drops it; the last entry is the clip's logits."""
    torch.manual_seed(0)
    model = ActionClassifier(rnn_type=rnn_type, emb_dim=16, hidden_dim=12, num_layers=2).eval()
    clips = torch.rand(3, 6, 1, 32, 32)
    with torch.no_grad():
        steps = model(clips, every_step=True)
        assert steps.shape == (3, 6, NUM_CLASSES)
        for t in range(1, 7):
            torch.testing.assert_close(steps[:, t - 1], model(clips[:, :t]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rnn_type", ["GRUCell", "OwnConvLSTM"])
def test_resnet18_encoder_runs_forward_and_backward(rnn_type):
    model = ActionClassifier(encoder="resnet18", rnn_type=rnn_type, emb_dim=32, hidden_dim=16, num_layers=1)
    assert model.encoder.trunk[0].in_channels == 1
    logits = forward_backward(model, frames=3)
    assert logits.shape == (2, 6)


def test_own_conv_lstm_receives_a_spatial_feature_map():
    model = ActionClassifier(rnn_type="OwnConvLSTM", emb_dim=16, hidden_dim=8, num_layers=1)
    seen = {}
    model.rnn.conv_lstm.register_forward_hook(lambda module, args, out: seen.update(x=args[0], out=out[0]))
    model(torch.rand(2, 3, 1, 64, 64))
    batch, time, channels, height, width = seen["x"].shape
    assert (batch, time, channels) == (2, 3, 16)
    assert height > 1 and width > 1
    assert seen["out"].shape == (2, 3, 8, height, width)


def test_cnn_encoder_shapes():
    frames = torch.rand(5, 1, 64, 64)
    assert ConvEncoder(emb_dim=40)(frames).shape == (5, 40)
    assert ConvEncoder(emb_dim=40, spatial=True)(frames).shape == (5, 40, 4, 4)
    channels = [block[0].out_channels for block in ConvEncoder(emb_dim=40).blocks]
    assert channels == [16, 32, 64, 128, 40]


@pytest.mark.parametrize("cell, reference", [(nn.LSTMCell, nn.LSTM), (nn.GRUCell, nn.GRU)])
def test_stacked_cells_equal_pytorch_multilayer_rnn(cell, reference):
    torch.manual_seed(0)
    stacked, rnn = StackedCells(cell, 5, 7, num_layers=3), reference(5, 7, num_layers=3, batch_first=True)
    for layer, layer_cell in enumerate(stacked.cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer_cell, name).data.copy_(getattr(rnn, f"{name}_l{layer}"))
    x = torch.randn(4, 6, 5)
    out, _ = stacked(x)
    expected, _ = rnn(x)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_pretrained_resnet18_conv1_is_the_rgb_conv1_summed(torch_home):
    torch.manual_seed(1)
    fake = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(fake, torch_home / RESNET18_FILE)
    model = ActionClassifier(encoder="resnet18", pretrained=True, emb_dim=16, hidden_dim=8, num_layers=1)
    conv1 = model.encoder.trunk[0].weight
    assert conv1.shape == (64, 1, 7, 7)
    torch.testing.assert_close(conv1, fake["conv1.weight"].sum(dim=1, keepdim=True))
    layer4 = model.encoder.trunk[7]
    torch.testing.assert_close(layer4[1].conv2.weight, fake["layer4.1.conv2.weight"])


def test_pretrained_resnet18_for_rgb_keeps_conv1_and_normalises_each_colour(torch_home):
    torch.manual_seed(1)
    fake = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(fake, torch_home / RESNET18_FILE)
    model = ActionClassifier(encoder="resnet18", pretrained=True, emb_dim=16, hidden_dim=8, num_layers=1,
                             in_channels=3)
    torch.testing.assert_close(model.encoder.trunk[0].weight, fake["conv1.weight"])  # the RGB kernel as it is
    assert model.encoder.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])  # ImageNet's, per colour
    assert model.encoder.std.flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])
    gray = ActionClassifier(encoder="resnet18", emb_dim=16, hidden_dim=8, num_layers=1)
    assert gray.encoder.mean.flatten().tolist() == pytest.approx([0.449])  # their averages, for grayscale
    assert gray.encoder.std.flatten().tolist() == pytest.approx([0.226])
    assert "encoder.mean" not in gray.state_dict()  # constants: checkpoints of older code still load


def test_missing_pretrained_weights_name_the_file_and_folder(torch_home):
    with pytest.raises(FileNotFoundError) as error:
        ActionClassifier(encoder="resnet18", pretrained=True)
    message = str(error.value)
    assert RESNET18_FILE in message and str(torch_home) in message
    assert "\n" not in message


def test_build_model_without_loading_pretrained_weights(torch_home):
    config = {**base_model_config(), "encoder": "resnet18", "pretrained": True}
    with pytest.raises(FileNotFoundError):
        build_model(config, NUM_CLASSES)
    model = build_model(config, NUM_CLASSES, load_pretrained=False)  # same architecture, for a checkpoint's weights
    assert model.encoder.trunk[0].in_channels == 1


def test_build_model_from_base_config():
    config = base_model_config()
    model = build_model(config, NUM_CLASSES)
    assert isinstance(model, ActionClassifier)
    assert isinstance(model.rnn, StackedCells) and isinstance(model.rnn.cells[0], nn.GRUCell)
    assert len(model.rnn.cells) == config["num_layers"]
    assert model.fc.out_features == NUM_CLASSES
    assert model.fc.in_features == config["hidden_dim"]
    assert model.dropout.p == config["dropout"]
    model.eval()
    assert model(torch.rand(2, 10, 1, 64, 64)).shape == (2, NUM_CLASSES)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    model.encoder.requires_grad_(False)
    assert count_parameters(model) < sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("changes", [
    {"rnn_type": "LSTMCell", "num_layers": 1},
    {"rnn_type": "OwnLSTM", "emb_dim": 24, "hidden_dim": 16},
    {"rnn_type": "OwnGRU"},
    {"rnn_type": "OwnConvLSTM", "hidden_dim": 16},
    {"encoder": "resnet18", "rnn_type": "LSTMCell", "emb_dim": 32},
])
def test_build_model_variations(changes):
    model = build_model({**base_model_config(), **changes}, NUM_CLASSES).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 1, 64, 64)).shape == (1, NUM_CLASSES)


def test_build_model_other_archs():
    from src.nets.r2plus1d import R2Plus1D, TorchvisionR2Plus1D
    assert isinstance(build_model({**base_model_config(), "arch": "r2plus1d"}, NUM_CLASSES), R2Plus1D)
    assert isinstance(build_model({**base_model_config(), "arch": "r2plus1d_18"}, NUM_CLASSES), TorchvisionR2Plus1D)


def first_convolution(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("changes", [
    {"arch": "rnn", "encoder": "cnn", "rnn_type": "GRUCell"},
    {"arch": "rnn", "encoder": "cnn", "rnn_type": "OwnConvLSTM"},
    {"arch": "rnn", "encoder": "resnet18", "rnn_type": "LSTMCell"},
    {"arch": "r2plus1d"},
    {"arch": "r2plus1d_18"},  # without weights: model.pretrained is false in base.yaml
])
def test_build_model_takes_the_number_of_classes_and_input_channels(changes, in_channels):
    """Any head size and grayscale or RGB input, for every arch: the dataset's classes and channels."""
    config = {**base_model_config(), "emb_dim": 16, "hidden_dim": 8, "num_layers": 1, **changes}
    assert not config["pretrained"]
    model = build_model(config, num_classes=4, in_channels=in_channels).eval()
    assert first_convolution(model).in_channels == in_channels
    with torch.no_grad():
        logits = model(torch.rand(2, 4, in_channels, 32, 32))
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match=f"C = {in_channels}"):  # frames of the other channel count: refused
        model(torch.rand(2, 4, 4 - in_channels, 32, 32))


@pytest.mark.parametrize("key, value, valid", [
    ("rnn_type", "Transformer", RNN_TYPES),
    ("encoder", "vgg16", ENCODERS),
    ("arch", "i3d", ("rnn", "r2plus1d", "r2plus1d_18")),
])
def test_unknown_names_are_one_line_errors_listing_valid_names(key, value, valid):
    with pytest.raises(ValueError) as error:
        build_model({**base_model_config(), key: value}, NUM_CLASSES)
    message = str(error.value)
    assert value in message and all(name in message for name in valid)
    assert "\n" not in message


def test_wrong_input_rank_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        ActionClassifier()(torch.rand(2, 1, 64, 64))


def test_cnn_encoder_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="pretrained"):
        build_model({**base_model_config(), "encoder": "cnn", "pretrained": True}, NUM_CLASSES)


@pytest.mark.parametrize("rnn_type", ["GRUCell", "OwnLSTM"])
def test_classifier_learns_to_fit_a_small_batch(rnn_type):
    """Gradients flow from the head through time and the recurrent module into the encoder."""
    torch.manual_seed(0)
    model = ActionClassifier(rnn_type=rnn_type, emb_dim=32, hidden_dim=32, num_layers=2, dropout=0.0)
    clips, labels = torch.rand(12, 4, 1, 32, 32), torch.arange(12) % 6
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(clips), labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert (model(clips).argmax(dim=1) == labels).all()
