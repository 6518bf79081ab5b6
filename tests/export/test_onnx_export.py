"""torch -> ONNX export: checker, contract in metadata, parity with torch, dynamic axes, clean failures."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from colorrt.cli.export import add_arguments as add_export_arguments  # noqa: E402
from colorrt.cli.export import run as run_export  # noqa: E402
from colorrt.contract import preset, read_from_onnx  # noqa: E402
from colorrt.errors import InputError, ModelError  # noqa: E402
from colorrt.export import export  # noqa: E402
from colorrt.models import build_model  # noqa: E402

TOL = 1e-4  # FP32 parity bound of the issue


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: x.astype(np.float32)})[0]


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@pytest.fixture(scope="module")
def resnet9(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("resnet9")
    return export("cyclegan-resnet9", output=folder / "resnet9.onnx", random_init=True, size=64, seed=0)


def test_resnet9_export_is_valid_and_carries_its_contract(resnet9) -> None:
    model = onnx.load(str(resnet9.path))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert read_from_onnx(model) == preset("cyclegan-rgb").replace(render_size=64) == resnet9.contract
    meta = _metadata(resnet9.path)
    assert meta["colorrt.arch"] == "cyclegan-resnet9"
    facts = json.loads(meta["colorrt.export"])
    assert facts["weights"] == "random-init" and facts["opset"] == 17 and facts["mode"] == "eval"
    assert facts["torch"] == torch.__version__ and facts["onnx"] == onnx.__version__
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == [
        "output"
    ]
    assert resnet9.input_shape == ("batch", 3, "height", "width")
    assert resnet9.output_shape == ("batch", 3, "height", "width")
    assert 0.0 <= resnet9.max_abs_error <= TOL
    assert os.listdir(resnet9.path.parent) == ["resnet9.onnx"]  # no temporary file left behind


def test_resnet9_dynamic_batch_and_size_match_torch(resnet9) -> None:
    net = build_model("cyclegan-resnet9", random_init=True, seed=0)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 40, 76)).astype(np.float32)
    got = _run(resnet9.path, x)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert got.shape == (2, 3, 40, 76)
    assert np.abs(got - expected).max() <= TOL
    assert np.abs(expected).mean() > 0.05  # random weights give a non-trivial output


def test_export_with_weights_file(tmp_path: Path) -> None:
    small = {"ngf": 16}  # a thinner generator keeps the test fast; keys follow the same rules
    source = build_model("cyclegan-resnet6", random_init=True, seed=11, options=small)
    weights = tmp_path / "latest_net_G_A.pth"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, weights)
    result = export("cyclegan-resnet6", weights, tmp_path / "g.onnx", size=32, dynamic=False, options=small)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert json.loads(_metadata(result.path)["colorrt.export"])["weights"] == f"sha256:{digest}"
    assert result.input_shape == ("batch", 3, 32, 32)  # static height/width
    assert result.contract.size_rule == "fixed" and result.contract.render_size == 32
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = source(torch.from_numpy(x)).numpy()
    assert np.abs(_run(result.path, x) - expected).max() <= TOL


def test_wrong_checkpoint_fails_and_writes_nothing(tmp_path: Path) -> None:
    weights = tmp_path / "resnet6.pth"
    torch.save(build_model("cyclegan-resnet6", random_init=True).state_dict(), weights)
    with pytest.raises(ModelError, match="missing keys"):
        export("cyclegan-resnet9", weights, tmp_path / "out.onnx")
    assert sorted(os.listdir(tmp_path)) == ["resnet6.pth"]


def test_parity_failure_is_loud_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="differs from torch"):
        export(
            "cyclegan-resnet6",
            output=tmp_path / "m.onnx",
            random_init=True,
            size=32,
            tolerance=1e-12,
            options={"ngf": 8},
        )
    assert os.listdir(tmp_path) == []


def test_bad_arguments_give_one_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(ModelError, match="did you mean 'eccv16'"):
        export("eccv17", output=out, random_init=True)
    with pytest.raises(InputError, match="weights file not found"):
        export("cyclegan-resnet6", tmp_path / "missing.pth", out)
    with pytest.raises(InputError, match="needs weights"):
        export("cyclegan-resnet6", output=out)
    with pytest.raises(InputError, match="multiple of 4"):
        export("cyclegan-resnet6", output=out, random_init=True, size=62)
    with pytest.raises(InputError, match="opset must be >= 17"):
        export("cyclegan-resnet6", output=out, random_init=True, opset=13)
    with pytest.raises(InputError, match="does not exist"):
        export("cyclegan-resnet6", output=tmp_path / "no" / "m.onnx", random_init=True)
    assert os.listdir(tmp_path) == []


def test_cli_shell_passes_flags_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = add_export_arguments(argparse.ArgumentParser(prog="colorrt export"))
    out = tmp_path / "m.onnx"
    args = parser.parse_args(
        [
            "--arch",
            "cyclegan-resnet6",
            "-o",
            str(out),
            "--random-init",
            "--size",
            "32",
            "--arch-option",
            "ngf=16",
        ]
    )
    result = run_export(args)
    assert result.path == out and out.is_file()
    assert json.loads(_metadata(out)["colorrt.export"])["options"] == {"ngf": 16}
    assert "parity vs torch (max abs error, FP32)" in capsys.readouterr().out


# --- Zhang et al. models: exported once per module (about 30 M parameters each) ----------------------

SIZE = 64  # pixels: render size of the Zhang exports in these tests (the release uses 256)


@pytest.fixture(scope="module")
def eccv16(tmp_path_factory: pytest.TempPathFactory):
    # Rendered at 64x64 instead of the release's 256x256 to keep the suite fast: same graph, 1/16 the work.
    path = tmp_path_factory.mktemp("eccv16") / "eccv16.onnx"
    result = export("eccv16", output=path, random_init=True, seed=0, size=SIZE)
    return result, build_model("eccv16", random_init=True, seed=0)


def test_eccv16_exports_313_logits_and_bin_centres_from_weights(eccv16) -> None:
    result, net = eccv16
    assert result.input_shape == ("batch", 1, SIZE, SIZE)
    assert result.output_shape == ("batch", 313, SIZE // 4, SIZE // 4)
    contract = read_from_onnx(onnx.load(str(result.path)))
    assert (
        contract.output_kind == "ab_bins" and contract.render_size == SIZE and contract.size_rule == "fixed"
    )
    expected = net.model_out.weight.detach()[:, :, 0, 0].T.double().numpy() * 110
    assert np.allclose(np.array(contract.bin_centers), expected, atol=1e-6)
    assert result.max_abs_error <= TOL


def test_eccv16_logits_decode_to_the_release_output(eccv16) -> None:
    result, net = eccv16
    L = np.random.default_rng(3).uniform(0, 100, (1, 1, SIZE, SIZE)).astype(np.float32)
    logits = _run(result.path, (L - 50) / 100)  # the contract's normalization: L/100 - 0.5
    # The release: softmax, 1x1 model_out (plain expectation over the bins), x4 bilinear, x110.
    with torch.no_grad():
        release = net(torch.from_numpy(L)).numpy()
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    centres = np.array(read_from_onnx(onnx.load(str(result.path))).bin_centers)
    ab_64 = np.einsum("nqhw,qc->nchw", probs, centres)
    ab = F.interpolate(torch.from_numpy(ab_64).float(), scale_factor=4, mode="bilinear").numpy()
    assert release.shape == ab.shape == (1, 2, SIZE, SIZE)
    assert np.abs(ab - release).max() <= 1e-3  # CIE ab units
    assert logits.std() > 0.1 and np.abs(release).max() > 0.1  # a non-uniform softmax: the check has bite


@pytest.fixture(scope="module")
def siggraph17(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("siggraph17") / "siggraph17.onnx"
    result = export("siggraph17", output=path, random_init=True, seed=0, size=SIZE)
    return result, build_model("siggraph17", random_init=True, seed=0)


def _siggraph17_release_forward(net, input_A, input_B, mask_B):
    """The ``colorizers`` release's SIGGRAPHGenerator.forward, transcribed over the net's modules."""
    conv1_2 = net.model1(torch.cat(((input_A - 50.0) / 100.0, input_B / 110.0, mask_B), dim=1))
    conv2_2 = net.model2(conv1_2[:, :, ::2, ::2])
    conv3_3 = net.model3(conv2_2[:, :, ::2, ::2])
    conv4_3 = net.model4(conv3_3[:, :, ::2, ::2])
    conv5_3 = net.model5(conv4_3)
    conv6_3 = net.model6(conv5_3)
    conv7_3 = net.model7(conv6_3)
    conv8_up = net.model8up(conv7_3) + net.model3short8(conv3_3)
    conv8_3 = net.model8(conv8_up)
    conv9_up = net.model9up(conv8_3) + net.model2short9(conv2_2)
    conv9_3 = net.model9(conv9_up)
    conv10_up = net.model10up(conv9_3) + net.model1short10(conv1_2)
    conv10_2 = net.model10(conv10_up)
    out_reg = net.model_out(conv10_2)
    return out_reg * 110.0  # unnormalize_ab


def test_siggraph17_export_matches_the_release_forward(siggraph17) -> None:
    result, net = siggraph17
    assert result.input_shape == ("batch", 4, SIZE, SIZE) and result.output_shape == ("batch", 2, SIZE, SIZE)
    assert result.contract == preset("siggraph17").replace(render_size=SIZE)
    rng = np.random.default_rng(4)
    L = rng.uniform(0, 100, (2, 1, SIZE, SIZE))
    mask = (rng.uniform(size=(2, 1, SIZE, SIZE)) < 0.05).astype(np.float64)
    ab = rng.uniform(-80, 80, (2, 2, SIZE, SIZE)) * mask
    mask_B = mask  # the colorizers release (Caffe weights) feeds the raw 0/1 mask (mask_cent 0)
    c = result.contract
    x = np.concatenate(
        [L * c.input_scale + c.input_offset, ab * c.hint_scale, mask + c.mask_offset], axis=1
    ).astype(np.float32)
    got = _run(result.path, x)
    tensors = [torch.from_numpy(a).float() for a in (L, ab, mask_B)]
    with torch.no_grad():
        reference = _siggraph17_release_forward(net, *tensors).numpy() / 110.0
        module_forward = net(*tensors).numpy() / 110.0
    assert np.abs(module_forward - reference).max() <= 1e-6
    assert np.abs(got - reference).max() <= TOL
    assert np.abs(reference).mean() > 0.01


def test_siggraph17_without_hints_is_the_releases_automatic_colorization(siggraph17) -> None:
    """The release's demo calls ``net(L)``: input_B and mask_B default to zeros (no hint anywhere).

    The runtime's preprocess of the same L with no hints must feed the exported model the same
    4 channels, or every hint-free colorization runs the net on an input it never saw.
    """
    from colorrt.kernels.pipeline import preprocess

    result, net = siggraph17
    L = np.random.default_rng(6).uniform(0, 100, (SIZE, SIZE)).astype(np.float32)
    x = preprocess([L], result.contract)
    assert x.shape == (1, 4, SIZE, SIZE)
    assert np.abs(x[0, 0] - (L - 50.0) / 100.0).max() <= 1e-5  # same size: the resize is the identity
    with torch.no_grad():
        release = net(torch.from_numpy(L)[None, None]).numpy() / 110.0
    got = _run(result.path, x)
    assert np.abs(got - release).max() <= TOL
    assert np.abs(release).mean() > 0.01


@pytest.mark.skipif(
    importlib.util.find_spec("colorrt.models.default") is None,
    reason="colorrt/models/default.py not written yet",
)
def test_default_model_exports_with_dynamic_size(tmp_path: Path) -> None:
    result = export("colorrt-default", output=tmp_path / "d.onnx", random_init=True, size=64)
    assert result.input_shape == ("batch", 1, "height", "width")
    assert result.contract == preset("colorrt-default").replace(render_size=64)
    net = build_model("colorrt-default", random_init=True)
    x = np.random.default_rng(5).uniform(-1, 1, (2, 1, 48, 80)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = _run(result.path, x)
    assert got.shape == (2, 2, 48, 80) and np.abs(got - expected).max() <= TOL


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_model(tmp_path: Path) -> None:
    small = {"ngf": 8}
    result = export(
        "cyclegan-resnet6",
        output=tmp_path / "d.onnx",
        random_init=True,
        size=32,
        exporter="dynamo",
        options=small,
    )
    assert result.exporter == "dynamo" and result.max_abs_error <= TOL
    x = np.random.default_rng(6).uniform(-1, 1, (3, 3, 40, 24)).astype(np.float32)
    with torch.no_grad():
        expected = build_model("cyclegan-resnet6", random_init=True, options=small)(
            torch.from_numpy(x)
        ).numpy()
    assert np.abs(_run(result.path, x) - expected).max() <= TOL
