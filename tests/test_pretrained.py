"""src/nets/pretrained.py: torchvision weights from the cache, else downloaded (from a local HTTP server)."""
import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from torchvision.models import ResNet18_Weights
from torchvision.models._api import Weights, WeightsEnum

from src.nets.classifier import ActionClassifier
from src.nets.pretrained import (
    first_layer_weight,
    input_statistics,
    load_cached_weights,
    load_weights,
    sum_over_input_channels,
)


class WeightServer:
    """An HTTP server on 127.0.0.1 (port 0) serving ``files`` ({name: bytes}); ``stall`` makes
    it accept connections and never answer."""

    def __init__(self, files: dict[str, bytes], stall: bool = False):
        self.files, self.requests = files, []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                state.requests.append(name)
                if stall:
                    state.release.wait(10)
                    return
                if name not in state.files:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(state.files[name])))
                self.end_headers()
                self.wfile.write(state.files[name])

        self.release = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_weights():
    """A small state dict as torch.save bytes, and the torchvision-style file name that carries
    the first 8 hex digits of its SHA-256."""
    state = {"conv1.weight": torch.arange(24.0).reshape(2, 3, 2, 2), "fc.bias": torch.ones(2)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    return state, data, f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth"


def make_weights_enum(url: str) -> WeightsEnum:
    class TinyWeights(WeightsEnum):
        V1 = Weights(url=url, transforms=lambda: None, meta={})
    return TinyWeights.V1


@pytest.fixture
def serve(torch_home, monkeypatch):
    """Starts WeightServers (closed after the test); the weights' own URLs are used, no mirror."""
    monkeypatch.delenv("PRETRAINED_BASE_URL")
    servers = []

    def start(files, stall=False):
        servers.append(WeightServer(files, stall))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def test_downloads_into_the_hub_cache_once_and_checks_the_hash(torch_home, fake_weights, serve, capsys):
    state, data, name = fake_weights
    server = serve({name: data})
    weights = make_weights_enum(f"{server.base_url}/{name}")
    loaded = load_weights(weights, timeout=2)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert sorted(p.name for p in torch_home.iterdir()) == [name]  # no partial file beside it
    assert (torch_home / name).read_bytes() == data
    assert "100%" in capsys.readouterr().err  # the progress bar
    load_weights(weights, timeout=2)
    assert server.requests == [name]  # the second call reads the cache


def test_a_wrong_hash_is_one_line_and_leaves_nothing(torch_home, fake_weights, serve):
    _, data, name = fake_weights
    wrong_name = "tiny-00000000.pth"
    server = serve({wrong_name: data})
    url = f"{server.base_url}/{wrong_name}"
    with pytest.raises(FileNotFoundError) as error:
        load_weights(make_weights_enum(url), progress=False, timeout=2)
    message = str(error.value)
    assert "hash" in message and wrong_name in message and str(torch_home) in message and url in message
    assert "\n" not in message
    assert list(torch_home.iterdir()) == []


def test_a_mirror_is_asked_for_torchvisions_file_name(torch_home, serve, monkeypatch):
    server = serve({})
    monkeypatch.setenv("PRETRAINED_BASE_URL", server.base_url + "/")
    with pytest.raises(FileNotFoundError) as error:
        load_weights(ResNet18_Weights.IMAGENET1K_V1, progress=False, timeout=2)
    assert server.requests == ["resnet18-f37072fd.pth"]
    message = str(error.value)
    assert "HTTP Error 404" in message and f"{server.base_url}/resnet18-f37072fd.pth" in message
    assert "resnet18-f37072fd.pth" in message and str(torch_home) in message and "\n" not in message


def test_a_server_that_does_not_answer_times_out(torch_home, fake_weights, serve):
    _, _, name = fake_weights
    server = serve({}, stall=True)
    with pytest.raises(FileNotFoundError) as error:
        load_weights(make_weights_enum(f"{server.base_url}/{name}"), progress=False, timeout=0.5)
    assert "timed out" in str(error.value) and name in str(error.value)
    assert list(torch_home.iterdir()) == []


def test_offline_the_classifier_names_file_folder_and_url(torch_home):
    with pytest.raises(FileNotFoundError) as error:  # torch_home points downloads at a closed port
        ActionClassifier(encoder="resnet18", pretrained=True)
    message = str(error.value)
    assert "resnet18-f37072fd.pth" in message and str(torch_home) in message and "http://127.0.0.1:1/" in message
    assert "could not be downloaded" in message and "\n" not in message


def test_a_cache_under_the_home_folder_is_named_from_it_and_nothing_prints_its_absolute_path(torch_home, monkeypatch,
                                                                                              capsys):
    home = torch_home.parents[1]  # <tmp>/hub/checkpoints: as ~/.cache/torch/hub/checkpoints is under ~
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(FileNotFoundError) as error:
        load_weights(ResNet18_Weights.IMAGENET1K_V1, progress=False, timeout=2)
    assert "into ~/hub/checkpoints/ (the cache under TORCH_HOME)" in str(error.value)
    out, err = capsys.readouterr()
    assert str(home) not in str(error.value) + out + err  # a notebook's committed output carries no machine path


def test_cache_only_never_downloads(torch_home, fake_weights, serve):
    _, data, name = fake_weights
    server = serve({name: data})
    with pytest.raises(FileNotFoundError, match="not found"):
        load_cached_weights(make_weights_enum(f"{server.base_url}/{name}"))
    assert server.requests == []


def test_sum_over_input_channels():
    rgb = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(sum_over_input_channels(rgb, 1), rgb.sum(1, keepdim=True))
    torch.testing.assert_close(sum_over_input_channels(rgb, 2).sum(1), rgb.sum(1))


def test_first_layer_weight_keeps_rgb_and_sums_for_gray():
    rgb = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(first_layer_weight(rgb, 3), rgb)
    torch.testing.assert_close(first_layer_weight(rgb, 1), rgb.sum(1, keepdim=True))
    assert first_layer_weight(rgb, 3).data_ptr() != rgb.data_ptr()  # a copy: the weights file's tensor is not shared


def test_input_statistics_per_colour_and_averaged_for_gray():
    mean, std = input_statistics(ResNet18_Weights.IMAGENET1K_V1, 3)
    assert mean.tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert std.tolist() == pytest.approx([0.229, 0.224, 0.225])
    mean, std = input_statistics(ResNet18_Weights.IMAGENET1K_V1, 1)
    assert mean.tolist() == pytest.approx([0.449]) and std.tolist() == pytest.approx([0.226])
