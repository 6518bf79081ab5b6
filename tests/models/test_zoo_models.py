"""The zoo's torch definitions: every architecture builds, and state-dict keys match the official releases."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from colorrt.errors import InputError, ModelError  # noqa: E402
from colorrt.models import ARCHITECTURES, arch_names, build_model, get_arch  # noqa: E402

HAS_DEFAULT = importlib.util.find_spec("colorrt.models.default") is not None


def _arch_params() -> list:
    skip = pytest.mark.skipif(
        not HAS_DEFAULT, reason="colorrt/models/default.py (DefaultColorizer) not written yet"
    )
    several = pytest.mark.skip(reason="NHWC or several inputs: built and run in test_families.py")
    families = {"chromagan", "iizuka2016", "comicolorization"}
    return [
        pytest.param(n, marks=skip)
        if n == "colorrt-default"
        else pytest.param(n, marks=several)
        if n in families
        else n
        for n in arch_names()
    ]


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_table_has_the_promised_architectures() -> None:
    assert set(ARCHITECTURES) == {
        "cyclegan-resnet9",
        "cyclegan-resnet6",
        "pix2pix-unet256",
        "pix2pix-unet128",
        "pix2pix-colorization",
        "eccv16",
        "siggraph17",
        "colorrt-default",
        "cyclegan-sketch",
        "chromagan",
        "iizuka2016",
        "comicolorization",
    }
    assert ARCHITECTURES["colorrt-default"].factory == "colorrt.models.default:DefaultColorizer"
    assert ARCHITECTURES["colorrt-default"].contract == "colorrt-default"
    with pytest.raises(TypeError):
        ARCHITECTURES["cyclegan-resnet9"].kwargs["n_blocks"] = 3  # type: ignore[index]


@pytest.mark.parametrize("name", _arch_params())
def test_every_architecture_builds_and_maps_contract_channels(name: str) -> None:
    spec = get_arch(name)
    model = build_model(name, random_init=True, seed=1)
    assert not model.training  # eval policy
    contract = spec.contract_for(model)
    assert contract.input_channels == spec.input_channels
    assert contract.output_channels == spec.output_channels
    side = spec.size_multiple * math.ceil(32 / spec.size_multiple)
    x = torch.rand(1, spec.input_channels, side, side) * 2 - 1
    with torch.no_grad():
        y = spec.export_module(model)(x)
    out_side = side // 4 if contract.output_kind == "ab_bins" else side
    assert tuple(y.shape) == (1, spec.output_channels, out_side, out_side)
    assert torch.isfinite(y).all()


def test_random_init_is_seeded() -> None:
    a = build_model("cyclegan-resnet6", random_init=True, seed=3).state_dict()
    b = build_model("cyclegan-resnet6", random_init=True, seed=3).state_dict()
    c = build_model("cyclegan-resnet6", random_init=True, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.1.weight"], c["model.1.weight"])


def test_resnet9_instance_norm_keys_match_official() -> None:
    shapes = _shapes(build_model("cyclegan-resnet9", random_init=True))
    assert len(shapes) == 48
    layers = ["model.1", "model.4", "model.7"]
    layers += [f"model.{i}.conv_block.{j}" for i in range(10, 19) for j in (1, 5)]
    layers += ["model.19", "model.22", "model.26"]
    assert set(shapes) == {f"{layer}.{p}" for layer in layers for p in ("weight", "bias")}
    assert shapes["model.1.weight"] == (64, 3, 7, 7)
    assert shapes["model.4.weight"] == (128, 64, 3, 3)
    assert shapes["model.7.weight"] == (256, 128, 3, 3)
    assert shapes["model.14.conv_block.5.weight"] == (256, 256, 3, 3)
    assert shapes["model.19.weight"] == (256, 128, 3, 3)  # ConvTranspose2d: (in, out, k, k)
    assert shapes["model.22.weight"] == (128, 64, 3, 3)
    assert shapes["model.26.weight"] == (3, 64, 7, 7)
    assert shapes["model.26.bias"] == (3,)


def test_parameter_counts_match_the_official_printouts() -> None:
    # pytorch-CycleGAN-and-pix2pix prints "[Network G] Total number of parameters : 11.378 M" (resnet_9blocks)
    # and "54.414 M" (unet_256) for 3->3 channel generators.
    def millions(name: str) -> float:
        return round(sum(p.numel() for p in build_model(name, random_init=True).parameters()) / 1e6, 3)

    assert millions("cyclegan-resnet9") == 11.378
    assert millions("pix2pix-unet256") == 54.414


def test_resnet_batch_norm_and_dropout_options_change_keys_like_official() -> None:
    batch = _shapes(build_model("cyclegan-resnet6", random_init=True, options={"norm": "batch"}))
    assert "model.1.bias" not in batch  # conv before BatchNorm has no bias
    assert batch["model.2.running_mean"] == (64,)
    assert batch["model.23.bias"] == (3,)  # the last conv (layer 23 with 6 blocks) always has one
    dropout = _shapes(build_model("cyclegan-resnet6", random_init=True, options={"use_dropout": True}))
    assert "model.10.conv_block.6.weight" in dropout and "model.10.conv_block.5.weight" not in dropout


def test_unet_keys_follow_nested_skip_blocks() -> None:
    shapes = _shapes(build_model("pix2pix-unet256", random_init=True))
    assert shapes["model.model.0.weight"] == (64, 3, 4, 4)
    assert "model.model.0.bias" not in shapes  # batch norm: no bias on the outer down conv
    assert shapes["model.model.3.weight"] == (128, 3, 4, 4)
    assert shapes["model.model.3.bias"] == (3,)
    assert shapes["model.model.1.model.2.running_var"] == (128,)
    innermost = "model.model.1" + ".model.3" * 6
    assert shapes[f"{innermost}.model.1.weight"] == (512, 512, 4, 4)
    assert shapes[f"{innermost}.model.3.weight"] == (512, 512, 4, 4)
    assert f"{innermost}.model.3.model.1.weight" not in shapes  # 8 levels for unet_256
    colorization = _shapes(build_model("pix2pix-colorization", random_init=True))
    assert colorization["model.model.0.weight"] == (64, 1, 4, 4)
    assert colorization["model.model.3.weight"] == (128, 2, 4, 4)
    unet128 = _shapes(build_model("pix2pix-unet128", random_init=True))
    assert len(unet128) == len(shapes) - 12  # one 512-channel level less: conv, convT, 2 BatchNorms


def test_eccv16_keys_match_release() -> None:
    shapes = _shapes(build_model("eccv16", random_init=True))
    assert shapes["model1.0.weight"] == (64, 1, 3, 3)
    assert shapes["model1.2.weight"] == (64, 64, 3, 3)
    assert shapes["model1.4.running_mean"] == (64,)
    assert shapes["model3.6.weight"] == (256,)
    assert shapes["model5.0.weight"] == (512, 512, 3, 3)
    assert shapes["model8.0.weight"] == (512, 256, 4, 4)
    assert shapes["model8.6.weight"] == (313, 256, 1, 1)
    assert shapes["model_out.weight"] == (2, 313, 1, 1)
    assert "model_out.bias" not in shapes and "model8.7.weight" not in shapes
    prefixes = {k.split(".")[0] for k in shapes}
    assert prefixes == {f"model{i}" for i in range(1, 9)} | {"model_out"}


def test_siggraph17_keys_match_release() -> None:
    shapes = _shapes(build_model("siggraph17", random_init=True))
    expected = {
        "model1.0.weight": (64, 4, 3, 3),
        "model1.4.running_var": (64,),
        "model3.6.weight": (256,),
        "model8up.0.weight": (512, 256, 4, 4),
        "model3short8.0.weight": (256, 256, 3, 3),
        "model8.1.weight": (256, 256, 3, 3),
        "model8.5.running_mean": (256,),
        "model9up.0.weight": (256, 128, 4, 4),
        "model2short9.0.weight": (128, 128, 3, 3),
        "model9.3.weight": (128,),
        "model10up.0.weight": (128, 128, 4, 4),
        "model1short10.0.weight": (128, 64, 3, 3),
        "model10.1.weight": (128, 128, 3, 3),
        "model_class.0.weight": (529, 256, 1, 1),
        "model_out.0.weight": (2, 128, 1, 1),
        "model_out.0.bias": (2,),
    }
    assert {k: shapes.get(k) for k in expected} == expected
    assert "model10.2.weight" not in shapes  # LeakyReLU, no norm at the last level


def test_unknown_architecture_suggests_closest() -> None:
    with pytest.raises(ModelError) as info:
        get_arch("cyclegan-resnet-9")
    assert "did you mean 'cyclegan-resnet9'" in str(info.value)
    assert "siggraph17" in str(info.value)  # lists the choices


def test_build_model_needs_weights_or_random_init() -> None:
    with pytest.raises(InputError, match="needs weights"):
        build_model("cyclegan-resnet6")
    with pytest.raises(InputError, match="both"):
        build_model("cyclegan-resnet6", weights={}, random_init=True)
    with pytest.raises(InputError, match="no option"):
        build_model("cyclegan-resnet6", random_init=True, options={"blocks": 3})


def test_importing_the_table_does_not_import_torch() -> None:
    code = "import sys, colorrt.models, colorrt.export; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
