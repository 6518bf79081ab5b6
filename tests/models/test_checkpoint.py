"""Strict checkpoint loading: wrappers, DataParallel prefixes, stale InstanceNorm stats, clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from colorrt.errors import InputError, ModelError  # noqa: E402
from colorrt.models import build_model  # noqa: E402
from colorrt.models.checkpoint import clean_state_dict, load_checkpoint, read_checkpoint_file  # noqa: E402
from colorrt.models.cyclegan import ResnetGenerator  # noqa: E402


def _old_style_checkpoint(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What DataParallel + PyTorch 0.4.0 saved: ``module.`` prefix and InstanceNorm running stats."""
    old = {f"module.{k}": v.clone() for k, v in state.items()}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            channels = m.num_features
            old[f"module.{name}.running_mean"] = torch.zeros(channels)
            old[f"module.{name}.running_var"] = torch.ones(channels)
            old[f"module.{name}.num_batches_tracked"] = torch.tensor(7)
    return old


def test_old_dataparallel_checkpoint_loads_strict(tmp_path: Path) -> None:
    source = build_model("cyclegan-resnet6", random_init=True, seed=5)
    state = source.state_dict()
    old = _old_style_checkpoint(state, source)
    assert len(old) == len(state) + 3 * 17  # 17 InstanceNorm layers in resnet_6blocks
    path = tmp_path / "latest_net_G.pth"
    torch.save({"state_dict": old, "epoch": 200}, path)
    loaded = build_model("cyclegan-resnet6", weights=path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))


def test_model_wrapper_and_dict_input() -> None:
    source = build_model("cyclegan-resnet6", random_init=True, seed=6)
    target = ResnetGenerator(n_blocks=6)
    load_checkpoint(target, {"model": source.state_dict()})
    assert torch.equal(target.state_dict()["model.23.weight"], source.state_dict()["model.23.weight"])


def test_batchnorm_checkpoint_without_num_batches_tracked_loads() -> None:
    # PyTorch < 0.4 (the original pix2pix releases) saved no num_batches_tracked.
    source = build_model("cyclegan-resnet6", random_init=True, options={"norm": "batch"})
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    target = ResnetGenerator(n_blocks=6, norm="batch")
    load_checkpoint(target, state)
    assert torch.equal(target.model[2].running_var, source.model[2].running_var)


def test_norm_stats_kept_where_the_module_has_buffers() -> None:
    module = torch.nn.Sequential(torch.nn.InstanceNorm2d(4, track_running_stats=True))
    state = {f"module.{k}": v for k, v in module.state_dict().items()}
    assert set(clean_state_dict(state, module)) == {
        "0.running_mean",
        "0.running_var",
        "0.num_batches_tracked",
    }


def test_wrong_checkpoint_lists_missing_and_unexpected_keys(tmp_path: Path) -> None:
    path = tmp_path / "unet.pth"
    torch.save(build_model("pix2pix-unet128", random_init=True).state_dict(), path)
    with pytest.raises(ModelError) as info:
        build_model("cyclegan-resnet6", weights=path)
    message = str(info.value)
    assert "36 missing keys: model.1.bias, model.1.weight" in message
    assert "unexpected keys: model.model.0.weight" in message
    assert "more)" in message  # long lists are cut to the first ten with a count
    assert "wrong --arch?" in message and "'cyclegan-resnet6'" in message


def test_resnet_with_fewer_blocks_reports_the_missing_blocks() -> None:
    state = build_model("cyclegan-resnet6", random_init=True).state_dict()
    with pytest.raises(ModelError) as info:
        build_model("cyclegan-resnet9", weights=state)
    message = str(info.value)
    assert "missing keys" in message and "model.16.conv_block.1.weight" in message
    # resnet6's upsampling convs are layers 16 and 19, its last conv 23.
    assert "4 unexpected keys: model.16.bias, model.16.weight, model.23.bias, model.23.weight" in message


def test_shape_mismatch_is_a_model_error() -> None:
    state = ResnetGenerator(n_blocks=6, ngf=32).state_dict()
    with pytest.raises(ModelError, match="size mismatch"):
        load_checkpoint(ResnetGenerator(n_blocks=6), state, arch="cyclegan-resnet6")


def test_missing_corrupt_and_non_state_dict_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="weights file not found"):
        build_model("cyclegan-resnet6", weights=tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="cannot read weights file"):
        build_model("cyclegan-resnet6", weights=corrupt)
    not_weights = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(ModelError, match="holds no state dict"):
        build_model("cyclegan-resnet6", weights=not_weights)


def test_random_bytes_are_not_a_checkpoint_in_one_line(tmp_path):
    junk = tmp_path / "random.bin"
    junk.write_bytes(random.Random(0).randbytes(3000))
    with pytest.raises(InputError) as caught:
        read_checkpoint_file(junk)
    assert (
        caught.value.what == f"{junk} is not a PyTorch checkpoint (neither a torch.save archive nor a pickle)"
    )


def test_pickle_refused_by_weights_only_says_so_in_one_line(tmp_path):
    import datetime
    import pickle

    path = tmp_path / "odd.pth"
    path.write_bytes(pickle.dumps({"when": datetime.date(2020, 1, 1)}, protocol=4))
    with pytest.raises(InputError) as caught:
        read_checkpoint_file(path)
    what = caught.value.what
    assert "\n" not in what and "safe loading (torch.load weights_only=True) refused" in what
