"""Instance-aware colorization as one engine: detector -> G on the crops -> placement -> GF (or GComp).

:class:`InstanceEngine` is an :class:`~colorrt.engines.base.Engine` whose input is the full-resolution
CIE L of each image (its contract's render shape is the image's own shape, so Runtime, the frame
stream and the video job feed it unchanged, batching frames of one size) and whose output is
tanh ab / 110 at the networks' size, which the usual postprocess merges with the full-resolution L.

Per batch: the detector runs on each image; every box is cropped from the full-resolution L and
resized to the networks' size, and the crops of all images go through G together (``crop_batch`` at a
time); each crop's maps are resized into its box (:mod:`.place`); GF runs on the images with boxes,
GComp on those without.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.engines.base import Engine
from colorrt.engines.bundle import DetectorContract, FusionLayer, InstanceBundle, is_bundle, read_bundle
from colorrt.engines.onnx_graph import OnnxGraph
from colorrt.errors import ContractError, InputError, ModelError
from colorrt.gpu import import_cupy
from colorrt.kernels import pipeline as kernels
from colorrt.runtime.instance.detect import Detector, select_boxes
from colorrt.runtime.instance.place import Placement, box_placement, place_layer, resize_maps

DETECTOR_FILE = "detector.onnx"  # a detector shipped inside the bundle folder, used when none is given


class FullResolutionContract(ColorContract):
    """A contract whose render shape is the image's own: the engine takes full-resolution L."""

    def render_shape(self, height: int, width: int) -> tuple[int, int]:
        if height < 1 or width < 1:
            raise ContractError(f"image size must be positive, got {height}x{width}")
        return height, width


class InstanceEngine(Engine):
    """The instance-aware pipeline of a model bundle (see the module docstring).

    Args:
        bundle: a bundle folder written by ``colorrt export --arch instcolorization``.
        detector: the detector's ``.onnx`` (default: ``detector.onnx`` inside the bundle).
        detector_contract: how to read the detector (a :class:`DetectorContract` or its dict); default:
            the one stored in the detector file, else the bundle's.
        device: ``"cpu"``, ``"cuda"`` (ONNX Runtime's CUDA provider) or ``"auto"``.
        threads: CPU threads per network.
        crop_batch: box crops per G call (crops of several images go together).
        xp: array module of the placement step (NumPy by default; CuPy on a GPU).
    """

    name = "instance"

    def __init__(
        self,
        bundle: str | os.PathLike[str],
        detector: str | os.PathLike[str] | None = None,
        *,
        detector_contract: DetectorContract | dict[str, Any] | None = None,
        device: str = "cpu",
        threads: int | None = None,
        crop_batch: int = 8,
        xp: Any = np,
    ) -> None:
        if crop_batch < 1:
            raise InputError(f"crop_batch must be >= 1, got {crop_batch}")
        self.bundle = read_bundle(bundle)
        self.device = "cpu" if device == "auto" else device
        self.crop_batch, self.xp = crop_batch, xp
        self.net_contract = self.bundle.contract
        self.size = self.net_contract.render_size
        self.contract = _runtime_contract(self.net_contract)
        self.networks = {
            role: OnnxGraph(self.bundle.path(role), self.device, threads) for role in ("G", "GF", "GComp")
        }
        _check_graphs(self.networks, self.bundle.layers, self.size)
        if isinstance(detector_contract, dict):
            detector_contract = DetectorContract.from_dict(detector_contract)
        self.detector = Detector(
            _detector_path(self.bundle, detector),
            detector_contract,
            fallback=self.bundle.detector,
            device=self.device,
            threads=threads,
        )

    def _infer_impl(self, batch: Any) -> Any:
        if hasattr(batch, "__cuda_array_interface__"):  # a CuPy batch comes back as one
            cupy = import_cupy("the instance pipeline on GPU batches")
            return cupy.asarray(self.colorize_planes(list(cupy.asnumpy(batch)[:, 0].astype(np.float32))))
        return self.colorize_planes(list(np.asarray(batch, dtype=np.float32)[:, 0]))

    def colorize_planes(self, luminances: Sequence[np.ndarray]) -> np.ndarray:
        """tanh ab / 110 ``(N, 2, S, S)`` for full-resolution CIE L planes (any sizes)."""
        boxes = [self.boxes(plane) for plane in luminances]
        return self.fuse(luminances, boxes)

    def boxes(self, luminance: np.ndarray) -> np.ndarray:
        """The integer x0 y0 x1 y1 boxes (k, 4) the pipeline colorizes separately in this image."""
        found, scores = self.detector.detect(luminance)
        return select_boxes(found, scores, luminance.shape, self.detector.contract)

    def fuse(self, luminances: Sequence[np.ndarray], boxes: Sequence[np.ndarray]) -> np.ndarray:
        """tanh ab / 110 for L planes and their boxes: GF with the placed crops, GComp without boxes."""
        images = kernels.preprocess(list(luminances), self.net_contract)
        out = np.empty((len(images), 2, self.size, self.size), dtype=np.float32)
        with_boxes = [i for i, b in enumerate(boxes) if len(b)]
        without = [i for i, b in enumerate(boxes) if not len(b)]
        if without:
            (out[without],) = self.networks["GComp"].run({"image": images[without]})
        if with_boxes:
            placed = self._placed([luminances[i] for i in with_boxes], [boxes[i] for i in with_boxes])
            feeds = {"image": images[with_boxes], **placed}
            (out[with_boxes],) = self.networks["GF"].run(feeds)
        return out

    def close(self) -> None:
        """Release the four sessions."""
        for graph in self.networks.values():
            graph.close()
        self.detector.close()
        super().close()

    def _placed(self, luminances: Sequence[np.ndarray], boxes: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """GF's 13 placed-map inputs for images with boxes: G on all crops, resized into the boxes."""
        xp, layers = self.xp, self.bundle.layers
        jobs = [(i, box) for i, image_boxes in enumerate(boxes) for box in image_boxes]
        pending: list[list[list[tuple[Any, Placement]]]] = [[[] for _ in layers] for _ in luminances]
        for start in range(0, len(jobs), self.crop_batch):
            chunk = jobs[start : start + self.crop_batch]
            crops = kernels.preprocess([_crop(luminances[i], box) for i, box in chunk], self.net_contract)
            maps = self.networks["G"].run({"crops": crops}, [layer.name for layer in layers])
            for j, (image, box) in enumerate(chunk):
                spots = _placements(box, luminances[image].shape, layers)
                for k, (layer_maps, spot) in enumerate(zip(maps, spots, strict=True)):
                    small = resize_maps(xp.asarray(layer_maps[j]), (spot.height, spot.width), xp)
                    pending[image][k].append((small, spot))
        placed = {}
        for k, layer in enumerate(layers):
            per_image = [
                place_layer([m for m, _ in items[k]], [p for _, p in items[k]], layer.size, xp)
                for items in pending
            ]
            placed[layer.name] = _to_host(xp.stack(per_image))
        return placed


def _placements(box: np.ndarray, image_hw: tuple[int, int], layers: Sequence[FusionLayer]) -> list[Placement]:
    height, width = image_hw
    return [box_placement(box, (width, height), layer.size) for layer in layers]


def _crop(luminance: np.ndarray, box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    return luminance[y0:y1, x0:x1]


def _to_host(array: Any) -> np.ndarray:
    return array.get() if hasattr(array, "__cuda_array_interface__") else np.asarray(array)


def _runtime_contract(net: ColorContract) -> FullResolutionContract:
    return FullResolutionContract(
        name=f"{net.name}-pipeline",
        input_space="L",
        input_scale=1.0,
        input_offset=0.0,
        size_rule="fixed",  # the networks' size: another render size is refused (render_shape is overridden)
        render_size=net.render_size,
        output_kind="ab",
        output_scale=net.output_scale,
        output_offset=net.output_offset,
        description=f"instance pipeline: full-resolution L in, ab / {net.output_scale:g} at "
        f"{net.render_size}x{net.render_size} out",
    )


def _detector_path(bundle: InstanceBundle, detector: str | os.PathLike[str] | None) -> os.PathLike[str] | str:
    if detector is not None:
        return detector
    inside = bundle.root / DETECTOR_FILE
    if inside.is_file():
        return inside
    raise InputError(
        f"the instance-aware bundle {bundle.root} needs an object detector",
        "pass detector='det.onnx' (--detector det.onnx): any ONNX detector returning boxes and scores, "
        f"or put it in the bundle as {DETECTOR_FILE}",
    )


def _check_graphs(networks: dict[str, OnnxGraph], layers: Sequence[FusionLayer], size: int) -> None:
    """The bundle's networks take and return what the manifest says (names, channels, sizes)."""
    wanted = {
        "G": ({"crops": (4, size)}, {layer.name: (layer.channels + 1, layer.size) for layer in layers}),
        "GF": ({"image": (4, size)} | {layer.name: (layer.channels + 1, layer.size) for layer in layers}, {}),
        "GComp": ({"image": (4, size)}, {}),
    }
    for role, (inputs, outputs) in wanted.items():
        graph = networks[role]
        for kind, expected, tensors in (("input", inputs, graph.inputs), ("output", outputs, graph.outputs)):
            got = {t.name: t.shape for t in tensors}
            for name, (channels, side) in expected.items():
                if got.get(name, (None,))[1:] != (channels, side, side):
                    raise ModelError(
                        f"bundle network {graph.path.name}: {kind} {name} should be (batch, {channels}, "
                        f"{side}, {side}), got {got.get(name, 'nothing')}",
                        "the bundle's files do not match its manifest; export it again",
                    )


__all__ = ["FullResolutionContract", "InstanceEngine", "is_bundle"]
