"""Triton model-repository export and the ``triton`` engine backend.

Configs are parsed with protobuf's text format against Triton's own ``inference.ModelConfig`` schema
(the ``model_config_pb2`` shipped in tritonclient). The client engine is run end to end over HTTP
against a stand-in KServe v2 server (tests/distributed/kserve_standin.py, ONNX Runtime inside) and,
where a real Triton server answers on localhost:8000, against that server.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from colorrt.cli import main
from colorrt.contract import ColorContract, preset
from colorrt.distributed.triton import TritonURL, export_triton, parse_config
from colorrt.engines.registry import backend_for
from colorrt.engines.tensorrt.facts import EngineFacts, write_facts
from colorrt.engines.tensorrt.profiles import Profile, TensorRange
from colorrt.errors import BackendError, ContractError, InputError
from colorrt.runtime.runtime import Runtime
from tests import zoo

HAVE_TRITONCLIENT = importlib.util.find_spec("tritonclient") is not None
needs_tritonclient = pytest.mark.skipif(
    not HAVE_TRITONCLIENT, reason="tritonclient is not installed (pip install 'colorrt[scale]')"
)
LIVE_URL = os.environ.get("COLORRT_TRITON_URL", "http://localhost:8000/colorrt-default")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("zoo")
    return {
        "ab": zoo.ab_model(d / "ab.onnx"),
        "bins": zoo.bins_model(d / "bins.onnx"),
        "fp16": zoo.ab_model(d / "fp16.onnx", float16=True),
        "batch1": zoo.ab_model(d / "batch1.onnx", batch=1),
        "bare": zoo.ab_model(d / "bare.onnx", None),
    }


def _parsed(export) -> object:
    return parse_config((export.path / "config.pbtxt").read_text())


def _contract_of(config) -> ColorContract:
    return ColorContract.from_json(config.parameters["colorrt.contract"].string_value)


# --- export ----------------------------------------------------------------------------------------


@needs_tritonclient
def test_onnx_export_parses_against_tritons_schema(models, tmp_path: Path):
    repo = tmp_path / "repo"
    export = export_triton(models["ab"], repo, name="colorizer", instances=3)
    config = _parsed(export)
    assert (config.name, config.platform, config.max_batch_size) == ("colorizer", "onnxruntime_onnx", 16)
    (tensor_in,), (tensor_out,) = config.input, config.output
    assert (tensor_in.name, list(tensor_in.dims)) == ("input", [1, -1, -1])  # any size: a "multiple" contract
    assert (tensor_out.name, list(tensor_out.dims)) == ("output", [2, -1, -1])
    schema = type(config)
    types = schema.DESCRIPTOR.fields_by_name["input"].message_type.fields_by_name["data_type"].enum_type
    assert types.values_by_number[tensor_in.data_type].name == "TYPE_FP32"
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    (group,) = config.instance_group
    assert group.count == 3 and group.kind == type(group).Kind.Value("KIND_GPU")
    assert _contract_of(config) == zoo.AB_CONTRACT
    assert (export.model_file).read_bytes() == models["ab"].read_bytes()
    assert sorted(p.name for p in repo.iterdir()) == ["colorizer"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging folder renamed away


@needs_tritonclient
@pytest.mark.parametrize(
    ("key", "max_batch", "data_type", "dims_in", "dims_out"),
    [
        ("bins", 8, "TYPE_FP32", [1, 32, 32], [4, 32, 32]),  # fixed render size, 4 bins
        ("fp16", 16, "TYPE_FP16", [1, -1, -1], [2, -1, -1]),
        ("batch1", 0, "TYPE_FP32", [1, 1, -1, -1], [1, 2, -1, -1]),  # fixed batch: dims keep it
    ],
)
def test_dtypes_dims_and_batching_come_from_the_model(
    models, tmp_path, key, max_batch, data_type, dims_in, dims_out
):
    export = export_triton(models[key], tmp_path, max_batch=8 if key == "bins" else None, kind="cpu")
    config = _parsed(export)
    enum = type(config.input[0]).DESCRIPTOR.fields_by_name["data_type"].enum_type
    assert config.max_batch_size == max_batch
    assert enum.values_by_number[config.input[0].data_type].name == data_type
    assert enum.values_by_number[config.output[0].data_type].name == data_type
    assert list(config.input[0].dims) == dims_in and list(config.output[0].dims) == dims_out
    assert config.HasField("dynamic_batching") == (max_batch > 0)
    assert config.instance_group[0].kind == type(config.instance_group[0]).Kind.Value("KIND_CPU")


@needs_tritonclient
def test_plan_export_takes_shapes_and_contract_from_its_facts(tmp_path: Path):
    plan = tmp_path / "colorizer.plan"
    plan.write_bytes(b"serialized engine bytes")  # export copies the plan; only Triton deserializes it
    contract = preset("pix2pix-colorization")
    profile = Profile((TensorRange("input", (1, 1, 256, 256), (4, 1, 256, 256), (8, 1, 256, 256)),))
    facts = EngineFacts(contract, "fp16", (profile,), "11.0.0", "NVIDIA H100", "9.0", "0" * 64)
    write_facts(plan, facts)
    export = export_triton(plan, tmp_path / "repo", io_dtype="fp32")
    config = _parsed(export)
    assert (config.platform, config.max_batch_size) == ("tensorrt_plan", 8)
    assert list(config.input[0].dims) == [1, 256, 256] and list(config.output[0].dims) == [2, -1, -1]
    assert (export.path / "1" / "model.plan").read_bytes() == plan.read_bytes()
    assert _contract_of(config) == contract
    assert any("TensorRT 11.0.0" in note for note in export.notes)
    with pytest.raises(InputError, match="profile maximum of 8"):
        export_triton(plan, tmp_path / "repo2", max_batch=16, io_dtype="fp32")
    with pytest.raises(InputError, match="GPU instances only"):
        export_triton(plan, tmp_path / "repo2", kind="cpu")


@needs_tritonclient
def test_external_weights_travel_with_the_model(tmp_path: Path):
    import onnx

    model = onnx.load(str(zoo.ab_model(tmp_path / "src.onnx")))
    big = tmp_path / "big"
    big.mkdir()
    onnx.save(
        model, str(big / "ab.onnx"), save_as_external_data=True, location="ab.weights", size_threshold=0
    )
    export = export_triton(big / "ab.onnx", tmp_path / "repo")
    assert (export.path / "1" / "ab.weights").read_bytes() == (big / "ab.weights").read_bytes()
    assert parse_config((export.path / "config.pbtxt").read_text()).platform == "onnxruntime_onnx"


def test_a_fixed_size_model_must_match_its_contract(models, tmp_path: Path):
    with pytest.raises(ContractError, match="renders at 256x256"):
        export_triton(models["bins"], tmp_path, contract=zoo.BINS_CONTRACT.replace(render_size=256))


def test_existing_model_is_kept_unless_forced(models, tmp_path: Path):
    first = export_triton(models["ab"], tmp_path, name="m")
    with pytest.raises(InputError, match="already exists"):
        export_triton(models["bins"], tmp_path, name="m")
    assert first.model_file.read_bytes() == models["ab"].read_bytes()
    export_triton(models["bins"], tmp_path, name="m", force=True)
    assert first.model_file.read_bytes() == models["bins"].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_model_without_contract_needs_one(models, tmp_path: Path):
    with pytest.raises(ContractError, match="no colour contract"):
        export_triton(models["bare"], tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written
    export = export_triton(models["bare"], tmp_path, contract="pix2pix-colorization")
    text = (export.path / "config.pbtxt").read_text()
    assert '\\"name\\":\\"pix2pix-colorization\\"' in text
    with pytest.raises(InputError, match="model name"):
        export_triton(models["ab"], tmp_path, name="bad/name")


@needs_tritonclient
def test_cli_export_triton(models, tmp_path: Path, capsys):
    code = main(
        ["export-triton", str(models["ab"]), "--repo", str(tmp_path), "--max-batch", "4", "--instances", "1"]
    )
    assert code == 0
    config = parse_config((tmp_path / "ab" / "config.pbtxt").read_text())
    assert config.max_batch_size == 4 and list(config.dynamic_batching.preferred_batch_size) == [2, 4]
    assert "wrote" in capsys.readouterr().out
    assert main(["export-triton", str(models["ab"]), "--repo", str(tmp_path)]) == 2  # exists: error


# --- the triton backend ----------------------------------------------------------------------------


def test_model_urls():
    assert TritonURL.parse("http://gpu1:8000/colorizer") == TritonURL("http", False, "gpu1:8000", "colorizer")
    assert TritonURL.parse("http:/gpu1:8000/colorizer/3").version == "3"  # as Path() leaves it
    assert TritonURL.parse("grpc://gpu1/colorizer").address == "gpu1:8001"
    assert TritonURL.parse("https://h/v2/models/c/versions/2") == TritonURL("http", True, "h:443", "c", "2")
    assert str(TritonURL.parse("grpc://h:9/c")) == "grpc://h:9/c"
    with pytest.raises(InputError, match="not a Triton model URL"):
        TritonURL.parse("ftp://h/c")
    assert backend_for(Path("http://gpu1:8000/colorizer")).name == "triton"


@needs_tritonclient
def test_unreachable_server_is_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError, match="cannot reach the Triton server"):
        Runtime(f"http://127.0.0.1:{port}/colorizer")


@needs_tritonclient
@pytest.mark.parametrize(("key", "batches"), [("ab", [2, 2, 1]), ("bins", [2, 2, 1]), ("batch1", [1] * 5)])
def test_runtime_on_a_served_model_equals_local_inference(models, tmp_path: Path, key: str, batches):
    from tests.distributed.kserve_standin import StandInServer

    export = export_triton(models[key], tmp_path, max_batch=None if key == "batch1" else 2, kind="cpu")
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (37, 52), np.uint8) for _ in range(5)]
    local = Runtime(models[key], batch_size=5).colorize_batch(images)
    with StandInServer(export.path) as server, Runtime(server.url, batch_size=5) as runtime:
        assert runtime.engine.name == "triton" and runtime.contract == Runtime(models[key]).contract
        served = runtime.colorize_batch(images)
        assert server.batches == batches  # 5 images split at max_batch_size (or the fixed batch)
    for a, b in zip(local, served, strict=True):
        assert np.array_equal(a, b)


def _server_up(url: str) -> bool:
    address = TritonURL.parse(url).address
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.3):
            return True
    except OSError:
        return False


@needs_tritonclient
@pytest.mark.skipif(
    not _server_up(LIVE_URL), reason=f"no Triton server at {LIVE_URL} (set COLORRT_TRITON_URL)"
)
def test_live_triton_server():
    """Against a real server: export a model, start tritonserver on the repository, set the URL."""
    from colorrt.kernels import pipeline

    image = np.random.default_rng(0).integers(0, 256, (120, 160), np.uint8)
    with Runtime(LIVE_URL) as runtime:
        colour = runtime.colorize(image)
    assert colour.shape == (120, 160, 3) and colour.dtype == np.uint8
    lightness = pipeline.luminance(colour)
    assert np.abs(lightness - pipeline.luminance(image)).mean() < 1.0  # the input's own luminance kept
