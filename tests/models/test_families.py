"""ChromaGAN, Iizuka et al. 2016 and Comicolorization: torch definitions and official-format loaders.

Each loader reads a file written in the official layout from random weights (tests/models/
official_files.py) and must reproduce the writing model exactly; a file of another family is refused
with the lists of missing and unexpected keys. Full-width sizes are checked on the meta device.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")
pytest.importorskip("torchfile")

from colorrt.errors import ModelError  # noqa: E402
from colorrt.models import build_model, get_arch  # noqa: E402
from colorrt.models.chromagan import ChromaGAN  # noqa: E402
from colorrt.models.comicolorization import Comicolorization  # noqa: E402
from colorrt.models.iizuka import Iizuka2016  # noqa: E402
from tests.models import official_files as official  # noqa: E402

SMALL = {
    "chromagan": {"width": 1 / 16},
    "iizuka2016": {"width": 1 / 16},
    "comicolorization": {"width": 1 / 16, "sr_width": 1 / 8},
}


def _inputs(name: str) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(5)
    if name == "chromagan":
        return (torch.rand(2, 224, 224, 3, generator=g),)
    if name == "iizuka2016":
        return torch.rand(2, 1, 48, 72, generator=g) - 0.5, torch.rand(2, 1, 224, 224, generator=g) - 0.5
    palette = (torch.rand(2, 216, generator=g) > 0.8).float()
    return (
        torch.rand(2, 3, 224, 224, generator=g),
        palette,
        (torch.rand(2, 1, 448, 448, generator=g) > 0.3).float(),
    )


def _outputs(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(*inputs)
    return list(out) if isinstance(out, tuple) else [out]


def _official_file(name: str, model: torch.nn.Module, folder: Path) -> Path:
    if name == "chromagan":
        return official.write_chromagan_h5(folder / "my_model_colorization.h5", model)
    if name == "iizuka2016":
        return official.write_iizuka_t7(folder / "colornet.t7", model, mean=0.4509)
    return official.write_comicolorization_folder(folder / "model", model)


@pytest.mark.parametrize("name", list(SMALL))
def test_official_file_loads_into_the_same_network(name: str, tmp_path: Path) -> None:
    source = build_model(name, random_init=True, seed=1, options=SMALL[name])
    path = _official_file(name, source, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = build_model(name, weights=path, options=SMALL[name])
    assert not loaded.training
    for a, b in zip(_outputs(source, _inputs(name)), _outputs(loaded, _inputs(name)), strict=True):
        assert torch.equal(a, b)
    if name == "iizuka2016":
        assert float(loaded.mean) == pytest.approx(0.4509)
        assert any("CC BY-NC-SA 4.0" in str(w.message) for w in caught)  # the licence, where it is loaded
        assert get_arch(name).contract_for(loaded).input_offset == pytest.approx(-0.4509)


def test_output_shapes_and_layouts() -> None:
    shapes = {}
    for name, options in SMALL.items():
        model = build_model(name, random_init=True, options=options)
        shapes[name] = [tuple(o.shape) for o in _outputs(model, _inputs(name))]
    assert shapes["chromagan"] == [(2, 224, 224, 2), (2, 1000)]  # NHWC ab and the class head
    assert shapes["iizuka2016"] == [(2, 2, 24, 36)]  # half the local input
    assert shapes["comicolorization"] == [(2, 3, 448, 448)]  # the super-resolution stage's Lab


def test_full_width_sizes_match_the_releases() -> None:
    with torch.device("meta"):
        chromagan, iizuka, comico = ChromaGAN(), Iizuka2016(), Comicolorization()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert round(count(chromagan) / 1e6, 1) == 171.2  # ~171M, 124M of them in the class head
    assert round(count(chromagan.class_dense) / 1e6) == 124
    shared = count(iizuka) - count(iizuka.net.global_low_level)
    assert round(shared / 1e6) == 42  # one low-level network's weights, stored per input in the .t7
    # Chainer snapshots are compressed npz: the released 158.4 MB / 69.2 MB hold these raw float32s.
    assert 158.4e6 < count(comico.ltbc) * 4 < 158.4e6 * 1.1
    assert 69.2e6 < count(comico.super_resolution) * 4 < 69.2e6 * 1.1


def test_chainer_keys_are_the_link_paths(tmp_path: Path) -> None:
    model = build_model("comicolorization", random_init=True, options=SMALL["comicolorization"])
    folder = official.write_comicolorization_folder(tmp_path / "model", model)
    with np.load(folder / "comicolorization" / "550000.model") as stage1:
        keys = set(stage1.files)
    assert {"low_level/conv1_1/W", "global_network/l3_1/W", "fusion_layer/conv/b"} <= keys
    assert {"colorization/bn3_1/avg_var", "classification_network/l1/W", "low_level/bn1_1/N"} <= keys
    with np.load(folder / "super_resolution" / "80000.model") as stage2:
        assert {"c0/W", "dc8/W", "bnd1/gamma"} <= set(stage2.files)
        assert stage2["c0/W"].shape[1] == 4  # Otsu line drawing + Lab / 100


def _wrong_h5(path: Path) -> Path:
    import h5py

    layers = [
        {"name": "input_1", "class_name": "InputLayer", "config": {}, "inbound_nodes": []},
        {
            "name": "conv2d_1",
            "class_name": "Conv2D",
            "config": {"strides": [1, 1]},
            "inbound_nodes": [[["input_1", 0, 0, {}]]],
        },
    ]
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {"layers": layers}}).encode()
        group = f.create_group("model_weights").create_group("conv2d_1")
        group.attrs["weight_names"] = [b"conv2d_1/kernel:0", b"conv2d_1/bias:0"]
        group.create_dataset("conv2d_1/kernel:0", data=np.zeros((3, 3, 3, 8), np.float32))
        group.create_dataset("conv2d_1/bias:0", data=np.zeros(8, np.float32))
    return path


def _wrong_t7(path: Path) -> Path:
    conv = official.T7Object(
        "nn.SpatialConvolution",
        nInputPlane=3,
        nOutputPlane=8,
        kW=3,
        kH=3,
        dW=1,
        dH=1,
        padW=1,
        padH=1,
        weight=np.zeros((8, 3, 3, 3), np.float32),
        bias=np.zeros(8, np.float32),
    )
    return official.write_t7(path, {"mean": 0.5, "model": official.T7Object("nn.Sequential", modules=[conv])})


def _wrong_chainer(folder: Path) -> Path:
    model = build_model("comicolorization", random_init=True, options=SMALL["comicolorization"])
    swapped = {"comicolorization": model.super_resolution, "super_resolution": model.ltbc}
    for sub, part in swapped.items():  # each stage's snapshot where the other belongs
        (folder / sub).mkdir(parents=True)
        with open(folder / sub / "1.model", "wb") as f:
            np.savez_compressed(f, **official.chainer_arrays(part))
    return folder


@pytest.mark.parametrize(
    "name, writer",
    [("chromagan", _wrong_h5), ("iizuka2016", _wrong_t7), ("comicolorization", _wrong_chainer)],
)
def test_a_file_of_another_family_is_refused_with_the_keys(name: str, writer, tmp_path: Path) -> None:
    path = writer(tmp_path / {"chromagan": "other.h5", "iizuka2016": "other.t7"}.get(name, "model"))
    with pytest.raises(ModelError) as error:
        build_model(name, weights=path, options=SMALL[name])
    message = str(error.value)
    assert "missing keys" in message and "unexpected keys" in message
    assert "wrong --arch" in message  # the hint names the likely cause


@pytest.mark.parametrize(("arch", "name"), [("chromagan", "my_model.h5"), ("iizuka2016", "colornet.t7")])
def test_a_missing_official_file_is_refused_before_the_model_is_built(
    arch: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colorrt.errors import InputError
    from colorrt.models.registry import ArchSpec

    def no_build(self, options=None):
        raise AssertionError("the network was built before the weights path was checked")

    monkeypatch.setattr(ArchSpec, "build", no_build)
    with pytest.raises(InputError, match="weights file not found"):
        build_model(arch, weights=tmp_path / name)
