"""The instance-aware pipeline (runtime/instance): detector -> G -> placement -> GF / GComp.

The networks are random-init InstColorization networks at a small width and size (exported once as
a bundle); the detectors are synthetic ONNX graphs returning known boxes. The runtime's fused output
is compared with a straight torch re-implementation of the official forward pass.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from colorrt.engines.bundle import DetectorContract, read_bundle  # noqa: E402
from colorrt.errors import InputError, ModelError  # noqa: E402
from colorrt.kernels import pipeline as kernels  # noqa: E402
from colorrt.models import instcolorization as ic  # noqa: E402
from colorrt.runtime import Runtime  # noqa: E402
from colorrt.runtime.instance import InstanceEngine  # noqa: E402
from colorrt.runtime.instance.detect import select_boxes  # noqa: E402
from colorrt.runtime.instance.place import box_placement, place_layer, resize_maps  # noqa: E402
from tests.instance_zoo import TEST_WIDTH, detector_model, sample_luminance, tiny_bundle  # noqa: E402
from tests.instcolorization_official import get_box_info, official_colorize  # noqa: E402

SEED = 7
H, W = 48, 60  # test image: not square, not a multiple of the render size
# In the networks' output units (tanh ab / 110), as colorrt's export parity measures: 10x tighter than
# 1e-4. Measured about 2e-6 (2e-4 in CIE ab units), the float32 floor of ONNX Runtime vs torch
# convolutions: each network alone differs from torch by about 1.5e-6 on the same input.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("instance"), SEED)


@pytest.fixture(scope="module")
def reference():
    return ic.random_init(TEST_WIDTH, SEED)  # the same weights as the bundle


def _engine(bundle, tmp_path, boxes, scores=None, **options):
    scores = [0.9 - 0.01 * i for i in range(len(boxes))] if scores is None else scores
    return InstanceEngine(bundle, detector_model(tmp_path / "det.onnx", boxes, scores), **options)


def _official(reference, contract, plane, boxes):
    image = torch.from_numpy(kernels.preprocess([plane], contract))
    crops = [plane[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
    crops = torch.from_numpy(kernels.preprocess(crops, contract)) if crops else None
    return official_colorize(reference, image, crops, boxes, (plane.shape[1], plane.shape[0])).numpy()


CASES = {
    "one box": [[10, 8, 41, 33]],
    "eight boxes": [[5 * i, 3 * i, 5 * i + 17, 3 * i + 20] for i in range(8)],
    "boxes on the border": [[0, 0, W, H], [0, 30, 12, H], [W - 1, 0, W, 9], [52, 44, W, H]],
    "overlapping boxes": [[4, 4, 40, 40], [20, 10, 58, 30], [25, 15, 35, 25]],
}


@pytest.mark.parametrize("case", CASES)
def test_fused_output_equals_the_official_forward_pass(bundle, reference, tmp_path, case) -> None:
    boxes = CASES[case]
    plane = sample_luminance(H, W)
    with _engine(bundle, tmp_path, boxes) as engine:
        assert engine.boxes(plane).tolist() == boxes  # scores were given in decreasing order
        got = engine.colorize_planes([plane])
        expected = _official(reference, engine.net_contract, plane, boxes)
    assert got.shape == expected.shape == (1, 2, 32, 32)
    assert np.abs(expected).mean() > 0.05  # a real colour signal, not a saturated or empty one
    assert np.max(np.abs(got - expected)) <= TOLERANCE


def test_no_box_runs_gcomp(bundle, reference, tmp_path) -> None:
    plane = sample_luminance(H, W)
    with _engine(bundle, tmp_path, [[3, 3, 20, 20]], scores=[0.7]) as engine:  # 0.7 is not above 0.7
        assert engine.boxes(plane).shape == (0, 4)
        got = engine.colorize_planes([plane])
    with torch.no_grad():
        expected = reference.gcomp(torch.from_numpy(kernels.preprocess([plane], engine.net_contract)))
    assert np.max(np.abs(got - expected.numpy())) <= TOLERANCE
    assert not np.allclose(got, _official(reference, engine.net_contract, plane, [[3, 3, 20, 20]]))


def test_fractional_boxes_are_truncated_like_the_official_code(bundle, tmp_path) -> None:
    with _engine(bundle, tmp_path, [[10.9, 8.2, 41.7, 33.99], [-3.0, -1.0, 80.0, 70.0]]) as engine:
        assert engine.boxes(sample_luminance(H, W)).tolist() == [[10, 8, 41, 33], [0, 0, W, H]]


def test_more_boxes_than_the_maximum_keeps_the_highest_scores(bundle, tmp_path) -> None:
    boxes = [[i, i, i + 10, i + 10] for i in range(11)]
    scores = [0.71, 0.95, 0.8, 0.99, 0.75, 0.9, 0.85, 0.72, 0.97, 0.5, 0.93]
    with _engine(bundle, tmp_path, boxes, scores) as engine:
        kept = engine.boxes(sample_luminance(H, W))
    order = [3, 8, 1, 10, 5, 6, 2, 4]  # the 8 highest of the 10 above 0.7, highest first
    assert kept.tolist() == [boxes[i] for i in order]


def test_select_boxes_drops_empty_and_non_finite_boxes_before_the_top_k() -> None:
    boxes = np.array([[5, 5, 5.5, 9], [np.nan, 0, 3, 3], [1, 1, 4, 4], [2, 2, 8, 9]], dtype=float)
    scores = np.array([0.99, 0.98, 0.8, 0.9])
    kept = select_boxes(boxes, scores, (10, 10), DetectorContract(max_boxes=2))
    assert kept.tolist() == [[2, 2, 8, 9], [1, 1, 4, 4]]


def test_wrong_output_layout_is_one_clear_error(bundle, tmp_path) -> None:
    path = detector_model(tmp_path / "boxes_only.onnx", [[1, 1, 9, 9]], [0.9], layout="boxes_only")
    with pytest.raises(ModelError) as err:
        InstanceEngine(bundle, path)
    message = str(err.value)
    assert "output layout 'boxes_scores' expects two outputs: boxes (N, 4)" in message
    assert "got boxes (1, 4)" in message and "output_layout" in message
    detections = {"output_layout": "detections"}  # contract says one (N, >=5) output; it gets boxes (N, 4)
    plain = detector_model(tmp_path / "plain.onnx", [[1, 1, 9, 9]], [0.9])
    with InstanceEngine(bundle, plain, detector_contract=detections) as engine:
        with pytest.raises(ModelError, match=r"'detections' expects one output \(N, K\).*got boxes \(1, 4\)"):
            engine.boxes(sample_luminance(H, W))


def test_detections_layout_with_batch_axis_and_stored_contract(bundle, tmp_path) -> None:
    path = detector_model(
        tmp_path / "rows.onnx",
        [[1, 2, 30, 40], [5, 5, 9, 9]],
        [0.9, 0.95],
        layout="detections",
        batch_dim=True,
        contract={"output_layout": "detections", "score_threshold": 0.92},  # stored in the file
    )
    with InstanceEngine(bundle, path) as engine:
        assert engine.boxes(sample_luminance(H, W)).tolist() == [[5, 5, 9, 9]]


def test_fixed_size_detector_boxes_are_scaled_back(bundle, tmp_path) -> None:
    contract = {"input_size": [24, 30]}  # the detector sees the image at half size
    with _engine(bundle, tmp_path, [[5, 4, 20, 16]], detector_contract=contract) as engine:
        assert engine.boxes(sample_luminance(H, W)).tolist() == [[10, 8, 40, 32]]


def test_batches_across_images_equal_single_runs(bundle, tmp_path) -> None:
    planes = [sample_luminance(H, W, seed) for seed in range(3)]
    boxes = [np.array(CASES["overlapping boxes"]), np.zeros((0, 4), int), np.array(CASES["one box"])]
    with _engine(bundle, tmp_path, [[0, 0, 1, 1]], crop_batch=2) as engine:  # crops of 2 images per G call
        together = engine.fuse(planes, boxes)
        alone = [engine.fuse([p], [b]) for p, b in zip(planes, boxes, strict=True)]
    np.testing.assert_allclose(together, np.concatenate(alone), atol=1e-6)


def _resized(maps, spots, xp=np):
    return [resize_maps(xp.asarray(m), (p.height, p.width), xp) for m, p in zip(maps, spots, strict=True)]


def _official_pad(crop: np.ndarray, info: list[int]):
    """The official resize_and_pad: bilinear to the box (height info[5], width info[4]), zero padding."""
    grown = torch.nn.functional.interpolate(torch.from_numpy(crop[None]), (info[5], info[4]), mode="bilinear")
    return torch.nn.functional.pad(grown, tuple(info[:4])).double()


def test_placement_equals_the_official_resize_pad_and_softmax() -> None:
    rng = np.random.default_rng(1)
    size, image_wh = 16, (50, 40)
    boxes = [[0, 0, 50, 40], [10, 5, 30, 38], [49, 0, 50, 3], [20, 20, 21, 21]]
    crops = [rng.normal(size=(4, 8, 8)).astype(np.float32) for _ in boxes]  # 3 features + 1 logit
    crops = [np.concatenate([c[:3], np.abs(c[3:]) * 3]) for c in crops]  # logits are ReLU outputs
    spots = [box_placement(b, image_wh, size) for b in boxes]
    placed = place_layer(_resized(crops, spots), spots, size)
    infos = [get_box_info(box, image_wh, size) for box in boxes]
    assert [[i[2], i[0], i[5], i[4]] for i in infos] == [[p.top, p.left, p.height, p.width] for p in spots]
    grown = [_official_pad(crop, info) for crop, info in zip(crops, infos, strict=True)]
    union = torch.zeros(1, 1, size, size, dtype=torch.float64)
    for p in spots:
        union[0, 0, p.top : p.top + p.height, p.left : p.left + p.width] = 1
    background, bg_logit = rng.normal(size=(1, 3, size, size)), rng.normal(size=(1, 1, size, size))
    logits = [g[:, 3:] for g in grown] + [torch.from_numpy(bg_logit) + (1 - union) * 1e5]
    weights = torch.softmax(torch.cat(logits, 1), 1)
    features = [g[:, :3] for g in grown] + [torch.from_numpy(background)]
    official = sum(weights[:, i : i + 1] * f for i, f in enumerate(features))
    share = 1 / (1 + np.exp(-(placed[3:].astype(np.float64) - bg_logit[0])))
    ours = share * placed[:3] + (1 - share) * background[0]
    np.testing.assert_allclose(ours, official[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("out_hw", [(5, 3), (8, 8), (21, 13), (1, 30), (40, 2)])
def test_resize_maps_equals_torch_bilinear(out_hw) -> None:
    maps = np.random.default_rng(2).normal(size=(3, 8, 11)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(maps[None]), size=out_hw, mode="bilinear")
    np.testing.assert_allclose(resize_maps(maps, out_hw), expected[0].numpy(), atol=3e-7)


@pytest.mark.requires_cuda
def test_placement_on_cupy_equals_numpy() -> None:
    import cupy

    rng = np.random.default_rng(3)
    maps = [rng.normal(size=(5, 8, 8)).astype(np.float32) for _ in range(3)]
    spots = [box_placement(b, (40, 30), 16) for b in ([0, 0, 20, 20], [10, 10, 40, 30], [39, 29, 40, 30])]
    host = place_layer(_resized(maps, spots), spots, 16)
    device = place_layer(_resized(maps, spots, cupy), spots, 16, cupy)
    np.testing.assert_allclose(cupy.asnumpy(device), host, rtol=1e-5, atol=1e-5)


def test_runtime_merges_chroma_with_the_full_resolution_luminance(bundle, tmp_path) -> None:
    detector = detector_model(tmp_path / "det.onnx", CASES["overlapping boxes"], [0.9, 0.8, 0.85])
    grey = np.clip(sample_luminance(H, W) * 2.55, 0, 255).astype(np.uint8)
    with Runtime(bundle, detector=detector) as runtime:
        assert runtime.contract.render_shape(H, W) == (H, W)
        colour = runtime.colorize(grey)
        frames = list(runtime.stream([grey, grey[::-1].copy(), grey], temporal=0))
        plane = kernels.luminance(grey)
        ab = runtime.engine.colorize_planes([plane])[0] * 110
    assert colour.shape == (H, W, 3)
    np.testing.assert_array_equal(colour, kernels.merge(plane, ab))
    assert np.median(np.abs(kernels.luminance(colour) - plane)) < 1.0  # chroma only (bar gamut clipping)
    assert np.array_equal(frames[0], colour) and np.array_equal(frames[2], colour)


def test_runtime_and_bundle_errors(bundle, tmp_path, zoo_models) -> None:
    with pytest.raises(InputError, match="needs an object detector"):
        Runtime(bundle)
    with pytest.raises(InputError, match="model bundles only"):
        Runtime(zoo_models["ab"], detector=tmp_path / "det.onnx")
    with pytest.raises(InputError, match="does not apply to a model bundle"):
        Runtime(bundle, contract="siggraph17", detector=tmp_path / "det.onnx")
    assert read_bundle(bundle).layers[0].size == 32


def test_cli_colorize_with_a_bundle_and_a_detector(bundle, tmp_path) -> None:
    from PIL import Image

    from colorrt.cli import main

    detector = detector_model(tmp_path / "det.onnx", CASES["one box"], [0.9])
    src = tmp_path / "photo.png"
    Image.fromarray(np.clip(sample_luminance(H, W) * 2.55, 0, 255).astype(np.uint8)).save(src)
    code = main(["colorize", str(src), "-o", str(tmp_path / "out.png"), "--model", str(bundle),
                 "--detector", str(detector), "-q"])  # fmt: skip
    assert code == 0
    with Runtime(bundle, detector=detector) as runtime:
        expected = runtime.colorize(np.asarray(Image.open(src)))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png").convert("RGB")), expected)
