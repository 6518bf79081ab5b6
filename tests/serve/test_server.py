"""A real Triton server (the one in the nvidia-pytriton wheel) serving colorrt on 127.0.0.1.

One server per module, with two models: ``colorrt`` (uint8 images in and out) and ``raw`` (the
model's own tensors, for colorrt's ``triton`` engine). Request counts and sizes are bounded.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from colorrt.runtime import Runtime
from colorrt.serve import ServedModel, serve
from tests import zoo

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pytriton") is None or importlib.util.find_spec("tritonclient") is None,
    reason="the Triton server is not installed (pip install 'colorrt[serve]')",
)
HOST = "127.0.0.1"
TIMEOUT_S = 60.0


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zoo.ab_model(tmp_path_factory.mktemp("serve") / "ab.onnx")


@pytest.fixture(scope="module")
def server(model: Path):
    http_port, grpc_port, metrics_port = free_ports(3)
    models = [
        ServedModel(model=str(model), threads=1, max_batch=8, max_delay_ms=50),
        ServedModel(name="raw", model=str(model), kind="tensors", threads=1, max_batch=4),
    ]
    with serve(
        models, host=HOST, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port
    ) as running:
        yield running


@pytest.fixture(scope="module")
def local(model: Path) -> Runtime:
    return Runtime(model, threads=1)


def images(seed: int, count: int, size: tuple[int, int], channels: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *size, channels), np.uint8)


def expected(local: Runtime, batch: np.ndarray) -> np.ndarray:
    return np.stack(
        local.colorize_batch([image[..., 0] if image.shape[-1] == 1 else image for image in batch])
    )


def http_client(server):
    import tritonclient.http as client

    return client.InferenceServerClient(
        f"{HOST}:{server.http_port}", connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S
    )


def infer(client_module, client, batch: np.ndarray, datatype: str = "UINT8") -> np.ndarray:
    data = client_module.InferInput("images", list(batch.shape), datatype)
    data.set_data_from_numpy(batch)
    return client.infer("colorrt", [data]).as_numpy("colorized")


def assert_close(served: np.ndarray, reference: np.ndarray) -> None:
    """Equal within ONNX Runtime's batch-to-batch float differences (one code step at most)."""
    assert served.shape == reference.shape and served.dtype == np.uint8
    difference = np.abs(served.astype(np.int16) - reference)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.99


def model_stats(server, name: str = "colorrt") -> dict:
    with urllib.request.urlopen(f"{server.http_url}/v2/models/{name}/stats", timeout=TIMEOUT_S) as reply:
        return json.load(reply)["model_stats"][0]


# --- round trips -----------------------------------------------------------------------------------


def test_http_round_trip_equals_runtime_colorize(server, local):
    import tritonclient.http as client_module

    client = http_client(server)
    for batch in (images(1, 3, (37, 52)), images(2, 1, (64, 48), channels=3)):
        assert_close(infer(client_module, client, batch), expected(local, batch))
    client.close()


def test_grpc_round_trip_equals_runtime_colorize(server, local):
    import tritonclient.grpc as client_module

    client = client_module.InferenceServerClient(f"{HOST}:{server.grpc_port}")
    batch = images(3, 2, (40, 30))
    data = client_module.InferInput("images", list(batch.shape), "UINT8")
    data.set_data_from_numpy(batch)
    served = client.infer("colorrt", [data], client_timeout=TIMEOUT_S).as_numpy("colorized")
    assert_close(served, expected(local, batch))
    client.close()


def test_json_request_as_in_the_help(server, local):
    body = {
        "inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 2, 2, 1], "data": [0, 64, 128, 255]}]
    }
    request = urllib.request.Request(f"{server.http_url}/v2/models/colorrt/infer", json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as reply:
        (output,) = json.load(reply)["outputs"]
    assert (output["name"], output["shape"]) == ("colorized", [1, 2, 2, 3])
    grey = np.array([0, 64, 128, 255], np.uint8).reshape(1, 2, 2, 1)
    assert_close(np.array(output["data"], np.uint8).reshape(1, 2, 2, 3), expected(local, grey))


# --- dynamic batching ------------------------------------------------------------------------------


def test_concurrent_clients_are_batched_and_get_their_own_results(server, local):
    import tritonclient.http as client_module

    clients, requests = 4, 6
    before = model_stats(server)
    results: dict[int, list[np.ndarray]] = {}
    sent = {c: [images(100 * c + r, 1, (24 + 8 * c, 32)) for r in range(requests)] for c in range(clients)}
    start = threading.Barrier(clients)

    def client_thread(c: int) -> None:
        client = http_client(server)
        start.wait()
        results[c] = [infer(client_module, client, batch) for batch in sent[c]]
        client.close()

    threads = [threading.Thread(target=client_thread, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * TIMEOUT_S)
    assert sorted(results) == list(range(clients))
    for c in range(clients):  # every client gets its own images back, each at its own size
        for batch, served in zip(sent[c], results[c], strict=True):
            assert_close(served, expected(local, batch))
    after = model_stats(server)
    images_run = int(after["inference_count"]) - int(before["inference_count"])
    executions = int(after["execution_count"]) - int(before["execution_count"])
    assert images_run == clients * requests
    assert executions < images_run  # fewer model executions than requests: Triton batched them
    assert max(int(s["batch_size"]) for s in after["batch_stats"]) > 1


# --- bad requests ----------------------------------------------------------------------------------


def raw_infer(server, header: dict, chunks, length: int) -> tuple[int, str]:
    """A KServe v2 binary request written by hand (the body may be shorter than the header says)."""
    head = json.dumps(header).encode()
    connection = http.client.HTTPConnection(HOST, server.http_port, timeout=TIMEOUT_S)
    try:
        connection.putrequest("POST", "/v2/models/colorrt/infer")
        connection.putheader("Content-Type", "application/octet-stream")
        connection.putheader("Inference-Header-Content-Length", str(len(head)))
        connection.putheader("Content-Length", str(len(head) + length))
        connection.endheaders()
        connection.send(head)
        for chunk in chunks:
            connection.send(chunk)
        reply = connection.getresponse()
        return reply.status, reply.read().decode(errors="replace")
    finally:
        connection.close()


def binary_header(shape: list[int], size: int, datatype: str = "UINT8") -> dict:
    tensor = {
        "name": "images",
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }
    return {"inputs": [tensor], "outputs": [{"name": "colorized", "parameters": {"binary_data": True}}]}


def _huge(server) -> tuple[int, str]:
    side, chunk = 20_000, bytes(1 << 22)
    total = side * side  # one grey 20000x20000 image: 400 MB streamed from one 4 MB buffer
    chunks = (chunk[: min(len(chunk), total - offset)] for offset in range(0, total, len(chunk)))
    return raw_infer(server, binary_header([1, side, side, 1], total), chunks, total)


def _truncated(server) -> tuple[int, str]:
    return raw_infer(server, binary_header([1, 64, 64, 1], 64 * 64), [bytes(1000)], 1000)


def _plain(server, array: np.ndarray, datatype: str) -> tuple[int, str]:
    data = array.tobytes()
    return raw_infer(server, binary_header(list(array.shape), len(data), datatype), [data], len(data))


@pytest.mark.parametrize(
    ("send", "message"),
    [
        (lambda s: _plain(s, np.zeros((1, 8, 8, 1), np.float32), "FP32"), "FP32"),
        (lambda s: _plain(s, np.zeros((1, 8, 8), np.uint8), "UINT8"), "unexpected shape"),
        (lambda s: _plain(s, np.zeros((0, 8, 8, 1), np.uint8), "UINT8"), "byte size mismatch"),  # Triton's
        (lambda s: raw_infer(s, binary_header([0, 8, 8, 1], 64), [bytes(64)], 64), "batch size is 0"),
        (lambda s: _plain(s, np.zeros((1, 8, 8, 2), np.uint8), "UINT8"), "2 channels"),
        (_huge, "20000x20000 pixels are larger than this server's limit"),
        (_truncated, "unexpected size for input 'images', expecting 3096 additional bytes"),
        (lambda s: _plain(s, np.zeros((9, 4, 4, 1), np.uint8), "UINT8"), "batch-size must be <= 8"),
    ],
    ids=[
        "dtype",
        "rank",
        "empty-batch",
        "empty-batch-with-data",
        "channels",
        "20000x20000",
        "truncated-body",
        "too-many-images",
    ],
)
def test_bad_request_gets_a_clear_error_and_the_next_one_is_served(server, local, send, message):
    import re

    import tritonclient.http as client_module

    status, text = send(server)
    assert status == 400, text
    assert re.search(message, json.loads(text)["error"]), text
    batch = images(7, 1, (16, 16))
    assert_close(infer(client_module, http_client(server), batch), expected(local, batch))


def test_a_cut_connection_leaves_the_server_serving(server, local):
    import tritonclient.http as client_module

    head = json.dumps(binary_header([1, 64, 64, 1], 64 * 64)).encode()
    with socket.create_connection((HOST, server.http_port), timeout=TIMEOUT_S) as s:
        s.sendall(
            b"POST /v2/models/colorrt/infer HTTP/1.1\r\nHost: x\r\n"
            + f"Inference-Header-Content-Length: {len(head)}\r\n".encode()
            + f"Content-Length: {len(head) + 4096}\r\n\r\n".encode()
            + head
            + bytes(100)
        )
    batch = images(8, 2, (20, 20))
    assert_close(infer(client_module, http_client(server), batch), expected(local, batch))


# --- colorrt's own Triton client (the triton engine Ray actors use) --------------------------------


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_triton_engine_against_the_real_server(server, local, protocol):
    from colorrt.distributed.triton import TritonEngine

    port = server.http_port if protocol == "http" else server.grpc_port
    url = f"{protocol}://{HOST}:{port}/raw"
    rng = np.random.default_rng(9)
    grey = [rng.integers(0, 256, (37, 52), np.uint8) for _ in range(5)]
    with Runtime(url, batch_size=5) as runtime:
        assert isinstance(runtime.engine, TritonEngine) and runtime.contract == local.contract
        assert runtime.engine.max_batch_size == 4  # 5 images go as two requests
        served = runtime.colorize_batch(grey)
    for a, b in zip(served, local.colorize_batch(grey), strict=True):
        assert_close(a, b)
    assert int(model_stats(server, "raw")["inference_count"]) >= 5


def test_ray_actors_call_the_real_server(server, local, tmp_path: Path):
    """The Ray path (actors holding a Runtime on a Triton URL) against the real server, not a stand-in."""
    pytest.importorskip("ray")
    import ray
    from PIL import Image

    from colorrt.distributed.ray import colorize_folder_ray
    from colorrt.io.images import read_image

    rng = np.random.default_rng(11)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (36, 44), np.uint8)).save(src / f"p{i}.png")
    url = f"http://{HOST}:{server.http_port}/raw"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = colorize_folder_ray(url, src, tmp_path / "out", workers=2, batch_size=2)
    finally:
        ray.shutdown()
    assert (report.done, report.total, report.failed) == (4, 4, [])
    for i in range(4):
        grey = read_image(src / f"p{i}.png")
        assert_close(read_image(tmp_path / "out" / f"p{i}.png"), local.colorize(grey))
