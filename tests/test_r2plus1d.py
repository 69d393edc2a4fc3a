"""Tests of src/nets/r2plus1d.py: the (2+1)-D convolution's width and parameter count, and both models."""

import pytest
import torch
import torch.nn as nn
import torchvision

from src.nets.classifier import count_parameters
from src.nets.r2plus1d import (
    R2Plus1D,
    ResidualBlock,
    SpatioTemporalConv,
    TemporalConv,
    TorchvisionR2Plus1D,
    intermediate_channels,
)

R2PLUS1D_18_FILE = "r2plus1d_18-91a641e6.pth"  # the file name of R2Plus1D_18_Weights.KINETICS400_V1's url



@pytest.mark.parametrize("n_in, n_out, t, d, expected", [
    (64, 64, 3, 3, 144),    # 3*9*64*64 / (9*64 + 3*64) = 110592 / 768, the width in torchvision's r2plus1d_18
    (64, 128, 3, 3, 230),   # 221184 / 960 = 230.4
    (256, 256, 3, 3, 576),
    (1, 32, 3, 7, 32),      # 4704 / 145 = 32.4
])
def test_intermediate_channels_follow_the_paper(n_in, n_out, t, d, expected):
    assert intermediate_channels(n_in, n_out, t, d) == expected


@pytest.mark.parametrize("n_in, n_out, t, d", [(32, 32, 3, 3), (32, 64, 3, 3), (128, 256, 3, 3), (1, 32, 3, 7)])
def test_parameter_count_matches_the_formula_and_the_full_3d_conv(n_in, n_out, t, d):
    conv = SpatioTemporalConv(n_in, n_out, temporal_size=t, spatial_size=d)
    m = intermediate_channels(n_in, n_out, t, d)
    spatial, temporal, batch_norm = d * d * n_in * m, t * m * n_out, 2 * m
    assert count_parameters(conv) == spatial + temporal + batch_norm
    full_3d = count_parameters(nn.Conv3d(n_in, n_out, (t, d, d), bias=False))
    assert full_3d == t * d * d * n_in * n_out
    assert abs(spatial + temporal - full_3d) / full_3d < 0.03


def test_spatio_temporal_conv_factorises_and_strides():
    conv = SpatioTemporalConv(8, 16, temporal_stride=2, spatial_stride=2)
    assert conv[0].kernel_size == (1, 3, 3) and conv[3].kernel_size == (3, 1)  # (t, 1) over (T, H*W)
    assert conv(torch.randn(2, 8, 10, 16, 16)).shape == (2, 16, 5, 8, 8)
    assert conv(torch.randn(2, 8, 5, 9, 9)).shape == (2, 16, 3, 5, 5)


@pytest.mark.parametrize("stride", [1, 2])
def test_temporal_conv_equals_a_t11_conv3d(stride):
    torch.manual_seed(0)
    conv = TemporalConv(4, 6, kernel_size=3, stride=stride)
    conv3d = nn.Conv3d(4, 6, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False)
    conv3d.weight.data.copy_(conv.weight.unsqueeze(-1))
    x = torch.randn(2, 4, 5, 3, 7)
    torch.testing.assert_close(conv(x), conv3d(x), atol=1e-5, rtol=1e-5)


def test_residual_block_shortcut_projects_only_when_needed():
    assert isinstance(ResidualBlock(16, 16).shortcut, nn.Identity)
    block = ResidualBlock(16, 32, temporal_stride=2, spatial_stride=2)
    assert isinstance(block.shortcut, nn.Sequential)
    assert block(torch.randn(2, 16, 10, 8, 8)).shape == (2, 32, 5, 4, 4)


def test_r2plus1d_forward_backward_and_shapes():
    torch.manual_seed(0)
    model = R2Plus1D()
    features = {}
    model.stages.register_forward_hook(lambda module, args, out: features.update(out=out))
    logits = model(torch.rand(2, 10, 1, 64, 64))
    assert logits.shape == (2, 6)
    assert features["out"].shape == (2, 256, 3, 2, 2)  # time 10 -> 5 -> 3, space 64 -> 2
    logits.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"


def test_r2plus1d_configurable_stages():
    model = R2Plus1D(num_classes=3, widths=(8, 16), blocks_per_stage=2, spatial_strides=(2, 2),
                     temporal_strides=(1, 2))
    assert len(model.stages) == 2 and len(model.stages[0]) == 2
    assert model(torch.rand(1, 4, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match="one entry per stage"):
        R2Plus1D(widths=(8, 16), spatial_strides=(2,), temporal_strides=(1, 1))


def test_torchvision_r2plus1d_18_one_channel_forward_backward():
    model = TorchvisionR2Plus1D(num_classes=6)
    assert model.net.stem[0].in_channels == 1
    logits = model(torch.rand(1, 4, 1, 32, 32))
    assert logits.shape == (1, 6)
    logits.sum().backward()
    assert torch.isfinite(model.net.stem[0].weight.grad).all()


def test_pretrained_r2plus1d_18_stem_is_the_rgb_stem_summed_for_gray_and_kept_for_rgb(torch_home):
    torch.manual_seed(2)
    fake = torchvision.models.video.r2plus1d_18(weights=None).state_dict()
    torch.save(fake, torch_home / R2PLUS1D_18_FILE)
    model = TorchvisionR2Plus1D(num_classes=6, pretrained=True)
    torch.testing.assert_close(model.net.stem[0].weight, fake["stem.0.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.net.layer3[0].conv1[0][0].weight, fake["layer3.0.conv1.0.0.weight"])
    assert model.mean.flatten().tolist() == pytest.approx([0.401]) and model.std.flatten().tolist() == pytest.approx(
        [0.222])  # Kinetics' statistics averaged over colour, for grayscale
    rgb = TorchvisionR2Plus1D(num_classes=4, in_channels=3, pretrained=True)  # RGB: the stem as it is
    torch.testing.assert_close(rgb.net.stem[0].weight, fake["stem.0.weight"])
    assert rgb.mean.flatten().tolist() == pytest.approx([0.43216, 0.394666, 0.37645])  # Kinetics', per colour
    assert rgb.std.flatten().tolist() == pytest.approx([0.22803, 0.22145, 0.216989])
    assert rgb(torch.rand(1, 4, 3, 32, 32)).shape == (1, 4)


def test_missing_kinetics_weights_name_the_file_and_folder(torch_home):
    with pytest.raises(FileNotFoundError) as error:
        TorchvisionR2Plus1D(pretrained=True)
    message = str(error.value)
    assert R2PLUS1D_18_FILE in message and str(torch_home) in message
    assert "\n" not in message
