"""Request checks, repository entries and the server environment, without starting a server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.serve import ServedModel, libpython_dir, write_python_model
from colorrt.serve.requests import checked_images, checked_tensor
from colorrt.serve.server import ServerFiles, server_environment
from tests import zoo

needs_tritonclient = pytest.mark.skipif(
    importlib.util.find_spec("tritonclient") is None,
    reason="tritonclient is not installed (pip install 'colorrt[serve]')",
)


def test_images_of_a_request_come_out_as_grey_or_rgb_arrays():
    grey = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4, 1)
    first, second = checked_images(grey)
    assert first.shape == (3, 4) and np.array_equal(second, grey[1, ..., 0])
    (rgb,) = checked_images(np.zeros((1, 5, 6, 3), np.uint8))
    assert rgb.shape == (5, 6, 3)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((1, 4, 4, 1), np.float32), "must be UINT8"),
        (np.zeros((4, 4, 1), np.uint8), r"\[N, H, W, C\]"),
        (np.zeros((0, 4, 4, 1), np.uint8), "holds no image"),
        (np.zeros((1, 0, 4, 1), np.uint8), "empty images"),
        (np.zeros((1, 4, 4, 2), np.uint8), "2 channels"),
        (np.zeros((1, 4, 5, 1), np.uint8), "5x4 pixels are larger than this server's limit of 19"),
    ],
)
def test_bad_requests_are_refused_with_what_is_wrong(array, message):
    with pytest.raises(InputError, match=message):
        checked_images(array, max_pixels=19)


def test_tensor_requests_need_the_models_channels():
    assert checked_tensor(np.zeros((2, 1, 8, 8), np.float32), "input", 1).shape == (2, 1, 8, 8)
    with pytest.raises(InputError, match=r"\[N, 1, H, W\]"):
        checked_tensor(np.zeros((2, 3, 8, 8), np.float32), "input", 1)
    with pytest.raises(InputError, match="is empty"):
        checked_tensor(np.zeros((0, 1, 8, 8), np.float32), "input", 1)


def test_settings_round_trip_and_checks(tmp_path: Path):
    served = ServedModel(name="m", model=None, threads=2, max_delay_ms=2.5)
    assert ServedModel.from_json(served.to_json()) == served
    assert ServedModel.from_json('{"name": "x", "from_a_newer_version": 1}').name == "x"
    for bad in (
        ServedModel(kind="pixels"),
        ServedModel(max_batch=0),
        ServedModel(threads=0),
        ServedModel(max_delay_ms=-1),
        ServedModel(model=str(tmp_path / "missing.onnx")),
    ):
        with pytest.raises(InputError):
            bad.check()


@needs_tritonclient
def test_images_entry_parses_against_tritons_schema(tmp_path: Path):
    from colorrt.distributed.triton import parse_config

    model = zoo.ab_model(tmp_path / "ab.onnx")
    entry = write_python_model(tmp_path / "repo", ServedModel(model=str(model), max_batch=4, instances=2))
    config = parse_config((entry / "config.pbtxt").read_text())
    assert (config.name, config.backend, config.max_batch_size) == ("colorrt", "python", 4)
    (images,), (colorized,) = config.input, config.output
    assert (images.name, list(images.dims), images.allow_ragged_batch) == ("images", [-1, -1, -1], True)
    assert (colorized.name, list(colorized.dims)) == ("colorized", [-1, -1, 3])
    assert config.dynamic_batching.max_queue_delay_microseconds == 5000
    assert config.instance_group[0].count == 2
    stored = ServedModel.from_json(config.parameters["colorrt.serve"].string_value)
    assert stored.model == str(model.resolve())
    assert "colorrt.serve.backend import TritonPythonModel" in (entry / "1" / "model.py").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ab.onnx", "repo"]  # no staging folder left
    with pytest.raises(InputError, match="already exists"):
        write_python_model(tmp_path / "repo", ServedModel(model=str(model)))
    write_python_model(tmp_path / "repo", ServedModel(model=str(model), max_batch=2), force=True)
    assert parse_config((entry / "config.pbtxt").read_text()).max_batch_size == 2


@needs_tritonclient
def test_tensors_entry_carries_the_model_and_its_contract(tmp_path: Path):
    from colorrt.contract import ColorContract
    from colorrt.distributed.triton import parse_config

    model = zoo.ab_model(tmp_path / "ab.onnx")
    entry = write_python_model(tmp_path / "repo", ServedModel(name="raw", model=str(model), kind="tensors"))
    config = parse_config((entry / "config.pbtxt").read_text())
    assert (config.backend, config.max_batch_size) == ("python", 8)
    assert [list(t.dims) for t in (*config.input, *config.output)] == [[1, -1, -1], [2, -1, -1]]
    assert ColorContract.from_json(config.parameters["colorrt.contract"].string_value) == zoo.AB_CONTRACT
    assert (entry / "1" / "model.onnx").read_bytes() == model.read_bytes()
    assert ServedModel.from_json(config.parameters["colorrt.serve"].string_value).model == "model.onnx"


def test_server_environment_puts_this_python_first(tmp_path: Path):
    files = ServerFiles(*(tmp_path / name for name in ("bin", "libs", "python", "stub", "caches")))
    env = server_environment(files, {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/lib"})
    libraries = env["LD_LIBRARY_PATH"].split(":")
    assert libraries[-2:] == [str(tmp_path / "libs"), "/opt/lib"]
    folder = libpython_dir()
    if folder is not None:  # a shared-libpython build: its own library wins over the system's
        assert libraries[0] == str(folder)
        assert any(p.name.startswith(f"libpython{sys.version_info.major}.") for p in folder.iterdir())
    assert env["PATH"].split(":") == [str(Path(sys.executable).parent), "/usr/bin"]


@needs_tritonclient
def test_a_fixed_batch_model_is_served_without_batching(tmp_path: Path):
    from colorrt.distributed.triton import parse_config

    model = zoo.ab_model(tmp_path / "batch1.onnx", batch=1)
    served = ServedModel(name="fixed", model=str(model), kind="tensors", max_batch=0)
    config = parse_config((write_python_model(tmp_path / "repo", served) / "config.pbtxt").read_text())
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 1, -1, -1]
    with pytest.raises(InputError, match="max_batch must be an integer >= 1"):
        ServedModel(model=str(model), max_batch=0).check()  # an images model always batches
