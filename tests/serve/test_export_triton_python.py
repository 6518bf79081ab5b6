"""`colorrt export-triton --backend python` writes an entry a stock Triton server loads and serves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from colorrt.cli import main
from colorrt.runtime import Runtime
from colorrt.serve.server import TritonServer
from tests import zoo
from tests.serve.test_server import HOST, TIMEOUT_S, assert_close, free_ports

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pytriton") is None or importlib.util.find_spec("tritonclient") is None,
    reason="the Triton server is not installed (pip install 'colorrt[serve]')",
)


def test_python_backend_repository_is_served_by_the_bundled_server(tmp_path: Path, capsys) -> None:
    import tritonclient.http as client_module

    model = zoo.ab_model(tmp_path / "ab.onnx")
    repo = tmp_path / "repo"
    argv = ["export-triton", str(model), "--repo", str(repo), "--backend", "python", "--kind", "cpu"]
    assert main([*argv, "--name", "colorizer", "--instances", "1"]) == 0
    assert "python backend running colorrt's Runtime" in capsys.readouterr().out
    assert (repo / "colorizer" / "config.pbtxt").is_file() and (
        repo / "colorizer" / "1" / "model.py"
    ).is_file()
    http_port, grpc_port, metrics_port = free_ports(3)
    batch = np.random.default_rng(3).integers(0, 256, (2, 40, 56, 3), np.uint8)
    with TritonServer(repo, host=HOST, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port):
        client = client_module.InferenceServerClient(
            f"{HOST}:{http_port}", connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S
        )
        data = client_module.InferInput("images", list(batch.shape), "UINT8")
        data.set_data_from_numpy(batch)
        served = client.infer("colorizer", [data]).as_numpy("colorized")
    assert_close(served, np.stack(Runtime(model, threads=1).colorize_batch(list(batch))))
    assert repo.is_dir()  # the user's repository stays
