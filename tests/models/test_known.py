"""Published checkpoints recognised by SHA-256; a file named like one but different is warned about."""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import TensorProto, helper

from colorrt.cli import main
from colorrt.modelfile import set_metadata
from colorrt.models.known import KNOWN_CHECKPOINTS, CheckpointWarning, check_published, identify

ECCV16 = KNOWN_CHECKPOINTS[0]


def test_the_eccv16_release_is_known_by_its_hash():
    sha = "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9"
    assert identify(f"sha256:{sha}") is ECCV16 and ECCV16.size == 128_976_165
    assert identify("sha256:" + "0" * 64) is None


def test_a_truncated_download_is_warned_about(tmp_path):
    path = tmp_path / "colorization_release_v2-9b330a0b.pth"
    path.write_bytes(b"\x80\x02" + b"\x00" * 1000)
    with pytest.warns(CheckpointWarning, match="truncated or altered download"):
        assert check_published(path) is None


def test_another_name_is_not_checked(tmp_path, recwarn):
    path = tmp_path / "latest_net_G.pth"
    path.write_bytes(b"\x00" * 10)
    assert check_published(path) is None and not recwarn.list


def _model_with_weights(path, weights: str):
    node = helper.make_node("Identity", ["input"], ["output"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    set_metadata(model, {"colorrt.export": json.dumps({"weights": weights})})
    onnx.save(model, path)


def test_info_names_the_published_checkpoint(tmp_path, capsys):
    _model_with_weights(tmp_path / "eccv16.onnx", f"sha256:{ECCV16.sha256}")
    assert main(["info", str(tmp_path / "eccv16.onnx")]) == 0
    out = capsys.readouterr().out
    assert "weights:    official colorization_release_v2 (Zhang et al. ECCV16" in out


def test_info_says_other_weights_are_not_published(tmp_path, capsys):
    _model_with_weights(tmp_path / "mine.onnx", "sha256:" + "ab" * 32)
    assert main(["info", str(tmp_path / "mine.onnx")]) == 0
    assert "(not a published checkpoint colorrt knows)" in capsys.readouterr().out
