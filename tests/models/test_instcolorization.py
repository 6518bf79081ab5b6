"""InstColorization's torch networks (G, GF, GComp), their strict loading and the bundle export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from colorrt.engines.bundle import MANIFEST, read_bundle  # noqa: E402
from colorrt.errors import InputError, ModelError  # noqa: E402
from colorrt.export.instance_bundle import export_bundle  # noqa: E402
from colorrt.modelfile import metadata  # noqa: E402
from colorrt.models import get_arch  # noqa: E402
from colorrt.models import instcolorization as ic  # noqa: E402
from colorrt.models.zhang import SIGGRAPHGenerator  # noqa: E402
from tests.instance_zoo import TEST_SIZE, TEST_WIDTH, tiny_bundle  # noqa: E402
from tests.instcolorization_official import get_box_info  # noqa: E402

WIDTH = TEST_WIDTH


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_official_key_names_and_shapes() -> None:
    with torch.device("meta"):
        model = ic.build()
        siggraph = SIGGRAPHGenerator()  # the SIGGRAPH17 release's layout (107 keys)
    g, gf, gcomp = (_shapes(m) for m in model.modules().values())
    assert g == gcomp == _shapes(siggraph) and len(g) == 107
    assert len(gf) == 275
    heads = {f"{name}.simple_{kind}_conv.{i}.{p}" for name in (*ic.WEIGHT_LAYERS, "weight_layerout")
             for kind in ("instance", "bg") for i in (0, 2, 4) for p in ("weight", "bias")}  # fmt: skip
    assert set(gf) == set(g) | heads
    assert gf["weight_layer4.simple_instance_conv.0.weight"] == (16, 512, 3, 3)
    assert gf["weight_layer10_2.simple_bg_conv.4.weight"] == (1, 16, 3, 3)
    assert gf["weight_layerout.simple_bg_conv.0.weight"] == (16, 2, 3, 3)
    assert round(sum(p.numel() for p in model.g.parameters()) / 1e6, 2) == 34.19


def test_box_info_port_keeps_the_official_thin_box_rule() -> None:
    assert get_box_info([0, 0, 100, 50], (100, 50), 256) == [0, 0, 0, 0, 256, 256]
    assert get_box_info([10, 20, 11, 21], (100, 50), 32) == [3, 28, 12, 19, 1, 1]  # grows to the far side
    assert get_box_info([99, 49, 100, 50], (100, 50), 32) == [31, 0, 31, 0, 1, 1]  # at the edge: near side


def _write_official(folder, model: ic.InstColorization) -> None:
    """Checkpoints as the official code has them: GF saved from DataParallel (``module.`` prefix)."""
    folder.mkdir(exist_ok=True)
    torch.save(model.g.state_dict(), folder / "latest_net_G.pth")
    torch.save({f"module.{k}": v for k, v in model.gf.state_dict().items()}, folder / "latest_net_GF.pth")
    torch.save(model.gcomp.state_dict(), folder / "latest_net_GComp.pth")


def test_official_format_checkpoints_load_strictly(tmp_path) -> None:
    written = ic.random_init(WIDTH, seed=5)
    _write_official(tmp_path / "ckpt", written)
    assert len(torch.load(tmp_path / "ckpt" / "latest_net_GF.pth")) == 275 - 168 + 14 * 12  # 275 keys
    loaded = ic.load(tmp_path / "ckpt", width=WIDTH)
    for role, module in loaded.modules().items():
        want = written.modules()[role].state_dict()
        assert all(torch.equal(want[k], v) for k, v in module.state_dict().items()), role
        assert not module.training


def test_wrong_family_and_missing_files_are_refused(tmp_path) -> None:
    model = ic.random_init(WIDTH, seed=5)
    _write_official(tmp_path / "swapped", model)
    with pytest.raises(ModelError, match="size mismatch"):
        ic.load(tmp_path / "swapped", width=0.25)  # the right names at another width: shapes differ
    gf_file = tmp_path / "swapped" / "latest_net_GF.pth"
    gf_file.replace(tmp_path / "gf.pth")
    (tmp_path / "swapped" / "latest_net_G.pth").replace(gf_file)  # G's weights where GF's belong
    (tmp_path / "gf.pth").replace(tmp_path / "swapped" / "latest_net_G.pth")
    with pytest.raises(ModelError) as err:
        ic.load(tmp_path / "swapped", width=WIDTH)
    assert "168 unexpected keys: weight_layer" in str(err.value) and "latest_net_G.pth" in str(err.value)
    (tmp_path / "swapped" / "latest_net_GComp.pth").unlink()
    with pytest.raises(InputError, match="lacks latest_net_GComp.pth"):
        ic.load(tmp_path / "swapped", width=WIDTH)


def test_fusion_without_instances_is_the_plain_trunk() -> None:
    model = ic.random_init(WIDTH, seed=2)
    x = torch.rand(2, 4, TEST_SIZE, TEST_SIZE) - 0.5
    placed = []
    for _, channels, level in ic.LAYERS:  # lam = -1e5 everywhere: no pixel is in a box
        side = TEST_SIZE >> level
        maps = torch.randn(2, ic.scaled(channels, WIDTH) + 1, side, side)
        maps[:, -1] = -1e5
        placed.append(maps)
    with torch.no_grad():
        torch.testing.assert_close(model.gf(x, placed), model.gf.trunk(x), rtol=0, atol=0)


@pytest.fixture(scope="module")
def cli_bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("instance"))  # written by `colorrt export`, shared


def test_cli_export_writes_a_verified_bundle(cli_bundle) -> None:
    import onnx

    bundle = read_bundle(cli_bundle)  # checks every file's SHA-256
    assert sorted(p.name for p in cli_bundle.iterdir()) == ["G.onnx", "GComp.onnx", "GF.onnx", MANIFEST]
    assert [layer.name for layer in bundle.layers] == [name for name, _, _ in ic.LAYERS]
    assert bundle.layers[3].channels == 64 and bundle.layers[3].size == TEST_SIZE // 8
    assert bundle.detector.score_threshold == 0.7 and bundle.detector.max_boxes == 8
    assert bundle.contract.mask_offset == -0.5 and bundle.contract.render_size == TEST_SIZE
    g = onnx.load(str(cli_bundle / "G.onnx"))
    assert [o.name for o in g.graph.output] == [name for name, _, _ in ic.LAYERS]
    assert json.loads(metadata(g)["colorrt.bundle_role"])["role"] == "G"
    gf = onnx.load(str(cli_bundle / "GF.onnx"), load_external_data=False)
    assert [i.name for i in gf.graph.input] == ["image", *(name for name, _, _ in ic.LAYERS)]


def test_gcomp_of_a_bundle_runs_alone_like_any_model(cli_bundle) -> None:
    from colorrt.runtime import Runtime

    with Runtime(cli_bundle / "GComp.onnx") as runtime:
        assert runtime.contract.name == "instcolorization"
        assert runtime.colorize(np.full((20, 30), 128, np.uint8)).shape == (20, 30, 3)


def test_export_is_atomic_and_replaces_only_bundles(cli_bundle, tmp_path) -> None:
    with pytest.raises(ModelError, match="differs from torch"):
        export_bundle(None, tmp_path / "b", random_init=True, size=TEST_SIZE, width=WIDTH, tolerance=1e-15)
    assert list(tmp_path.iterdir()) == []  # no bundle, no temporary folder
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(InputError, match="not a model bundle"):
        export_bundle(None, tmp_path / "notes", random_init=True, size=TEST_SIZE, width=WIDTH)
    copy = shutil.copytree(cli_bundle, tmp_path / "old" / "bundle")
    export_bundle(None, copy, random_init=True, seed=9, size=TEST_SIZE, width=WIDTH, check=False)
    assert read_bundle(copy).facts["seed"] == 9 != read_bundle(cli_bundle).facts["seed"]
    assert [p.name for p in copy.parent.iterdir()] == ["bundle"]  # the old one and the temporary are gone


def test_single_model_export_points_to_the_bundle() -> None:
    with pytest.raises(ModelError, match="bundle folder"):
        get_arch("instcolorization")
