"""src.training.device: the device a name asks for, and the precision train.amp gives on it."""
import pytest
import torch

import src.training.device
from src.training.device import autocast, available_devices, cpu_info, select_device, training_precision


@pytest.fixture
def no_accelerator(monkeypatch):
    """A machine without CUDA and MPS, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with two CUDA devices (torch.device does not need them to exist)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_select_device_on_a_cpu_machine(no_accelerator):
    assert select_device() == torch.device("cpu")  # the old call: name 'auto'
    assert select_device("auto") == select_device("cpu") == torch.device("cpu")
    assert select_device("cpu:0") == torch.device("cpu:0")
    assert available_devices() == ["auto", "cpu"]


@pytest.mark.parametrize("name, reason", [
    ("cuda", " (torch sees no CUDA devices here)"),
    ("cuda:0", " (torch sees no CUDA devices here)"),
    ("mps", " (MPS is not available here)"),
    ("foo", ""),
    ("CPU", ""),
    ("cuda:x", ""),
    ("", ""),
    ("meta", ""),
])
def test_select_device_refuses_what_this_machine_lacks_in_one_line(no_accelerator, name, reason):
    with pytest.raises(ValueError) as info:
        select_device(name, key="--device")
    assert str(info.value) == f"--device must be a device of this machine (auto, cpu), got {name!r}{reason}"


def test_select_device_names_the_key_it_is_given(no_accelerator):
    with pytest.raises(ValueError, match=r"^device must be .*, got 'foo'$"):
        select_device("foo")
    with pytest.raises(ValueError, match=r"^train\.device must be"):
        select_device("foo", key="train.device")


def test_select_device_with_cuda(two_gpus):
    assert select_device("auto") == torch.device("cuda")
    assert select_device("cuda") == torch.device("cuda")
    assert select_device("cuda:1") == torch.device("cuda:1")
    assert available_devices() == ["auto", "cpu", "cuda", "cuda:0", "cuda:1"]
    with pytest.raises(ValueError) as info:
        select_device("cuda:2", key="train.device")
    assert str(info.value) == ("train.device must be a device of this machine (auto, cpu, cuda, cuda:0, cuda:1), "
                               "got 'cuda:2' (torch sees 2 CUDA devices here)")
    with pytest.raises(ValueError, match="MPS is not available"):
        select_device("mps")


def test_select_device_with_mps(no_accelerator, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto") == select_device("mps") == torch.device("mps")
    with pytest.raises(ValueError, match=r"\(auto, cpu, mps\), got 'cuda'"):
        select_device("cuda")


# ---------------------------------------------------------------- precision (train.amp)

def test_native_bf16_comes_from_the_cpu_flags(tmp_path, monkeypatch):
    def fake_cpuinfo(flags):
        path = tmp_path / f"cpuinfo_{len(flags)}"
        path.write_text("".join(f"processor\t: {i}\nmodel name\t: Some CPU\nflags\t\t: {' '.join(flags)}\n\n"
                                for i in range(2)))
        return path

    for flags, native in [(["fpu", "avx2"], False), (["avx2", "avx512f", "avx512_bf16"], True),
                          (["avx2", "amx_bf16", "amx_tile", "x"], True)]:
        path = fake_cpuinfo(flags)
        model, found = cpu_info(path)
        assert model == "Some CPU" and found == set(flags)
        monkeypatch.setattr(src.training.device, "cpu_info", lambda: cpu_info(path))
        assert src.training.device.native_bf16() is native
    assert cpu_info(tmp_path / "no such file")[1] == frozenset()  # not Linux: no flags, so no native bf16


@pytest.mark.parametrize("amp, device, native, expected", [
    ("auto", "cpu", False, "float32"), ("auto", "cpu", True, "bfloat16"),
    (True, "cpu", False, "bfloat16"), (False, "cpu", True, "float32"),
    ("auto", "cuda", False, "float16"), (True, "cuda", True, "float16"), (False, "cuda", False, "float32"),
    ("auto", "mps", True, "float32"), (True, "mps", True, "float32"),
])
def test_training_precision_follows_train_amp_and_the_device(monkeypatch, amp, device, native, expected):
    monkeypatch.setattr(src.training.device, "native_bf16", lambda: native)
    assert training_precision(amp, torch.device(device)) == expected


def test_autocast_runs_in_the_precision_named():
    cpu, layer, x = torch.device("cpu"), torch.nn.Linear(4, 2), torch.rand(3, 4)
    with autocast(cpu, "bfloat16"):
        assert layer(x).dtype == torch.bfloat16
    with autocast(cpu, "float32"):
        assert layer(x).dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="float32, bfloat16, float16, got 'half'"):
        autocast(cpu, "half")
