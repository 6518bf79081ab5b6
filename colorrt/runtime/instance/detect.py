"""The detector slot of the instance pipeline: any ONNX object detector, read through a small contract."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from colorrt.engines.bundle import DETECTOR_KEY, LAYOUTS, DetectorContract
from colorrt.engines.onnx_graph import OnnxGraph
from colorrt.errors import ContractError, ModelError
from colorrt.kernels.resize import resize_bilinear

_RANKS = {"boxes": (2, 3), "scores": (1, 2), "detections": (2, 3)}  # allowed ranks of each output


class Detector:
    """Runs an ONNX detector on the grey image of a luminance plane and returns its boxes.

    Args:
        path: the detector's ``.onnx`` file.
        contract: how to feed it and read it; a contract stored in the file (metadata
            ``colorrt.detector``) is used when this is None.
        fallback: the contract used when neither is given (the bundle's).
        device, threads: as for :class:`~colorrt.engines.onnx_graph.OnnxGraph`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        contract: DetectorContract | None = None,
        *,
        fallback: DetectorContract | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        self.graph = OnnxGraph(path, device, threads)
        self.name = self.graph.path.name
        self.contract = contract or _stored(self.graph) or fallback or DetectorContract()
        if len(self.graph.inputs) != 1:
            names = [t.name for t in self.graph.inputs]
            raise ModelError(
                f"detector {self.name} has inputs {names}; colorrt feeds detectors one image input"
            )
        self.input = self.graph.inputs[0]
        self.dtype = self.graph.input_dtype(self.input.name)
        self.input_size = self.contract.input_size or _static_size(self.input.shape, self.contract)
        self.output_names = self._output_names()

    def detect(self, luminance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (n, 4) x0 y0 x1 y1 in the image's pixels, scores (n,)) for a CIE L plane (H, W)."""
        height, width = luminance.shape
        grey = luminance * np.float32(self.contract.input_scale)
        if self.input_size is not None:
            grey = resize_bilinear(grey, self.input_size)
        planes = np.repeat(grey[None], self.contract.channels, axis=0)
        if self.dtype == np.uint8:
            planes = np.clip(np.rint(planes), 0, 255)
        feed = planes[None] if self.contract.input_layout == "NCHW" else planes
        outputs = self.graph.run({self.input.name: feed.astype(self.dtype)}, self.output_names)
        boxes, scores = self._parse(outputs)
        fed_h, fed_w = grey.shape
        boxes = boxes * np.array([width / fed_w, height / fed_h] * 2)
        return boxes, scores

    def close(self) -> None:
        """Drop the detector's session."""
        self.graph.close()

    def _output_names(self) -> list[str]:
        layout = self.contract.output_layout
        wanted = 2 if layout == "boxes_scores" else 1
        available = {t.name: t for t in self.graph.outputs}
        names = list(self.contract.outputs) or list(available)[:wanted]
        if len(names) != wanted or any(n not in available for n in names):
            self._layout_error({t.name: t.shape for t in self.graph.outputs})
        kinds = ("boxes", "scores") if layout == "boxes_scores" else ("detections",)
        for name, kind in zip(names, kinds, strict=True):
            if available[name].shape and len(available[name].shape) not in _RANKS[kind]:
                self._layout_error({n: available[n].shape for n in names})
        return names

    def _parse(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        arrays = [np.asarray(o) for o in outputs]
        try:
            if self.contract.output_layout == "boxes_scores":
                boxes, scores = _squeeze(arrays[0], 2), _squeeze(arrays[1], 1)
                if scores.ndim == 2 and scores.shape[1] == 1:
                    scores = scores[:, 0]
                valid = boxes.ndim == 2 and boxes.shape[1] == 4 and scores.shape == (boxes.shape[0],)
            else:
                rows = _squeeze(arrays[0], 2)
                valid = rows.ndim == 2 and rows.shape[1] >= 5
                boxes, scores = (rows[:, :4], rows[:, 4]) if valid else (rows, rows)
        except IndexError:
            valid = False
        if not valid:
            self._layout_error(dict(zip(self.output_names, (a.shape for a in arrays), strict=False)))
        return boxes.astype(np.float64), scores.astype(np.float64)

    def _layout_error(self, got: dict) -> None:
        layout = self.contract.output_layout
        shown = ", ".join(f"{name} {tuple(shape)}" for name, shape in got.items()) or "no outputs"
        raise ModelError(
            f"detector {self.name}: output layout '{layout}' expects {LAYOUTS[layout]}; got {shown}",
            "describe the detector in its contract: output_layout 'boxes_scores' or 'detections' and "
            f"outputs=[names] (detector_contract=..., or metadata '{DETECTOR_KEY}' in the detector file)",
        )


def select_boxes(
    boxes: np.ndarray, scores: np.ndarray, image_hw: tuple[int, int], contract: DetectorContract
) -> np.ndarray:
    """Integer x0 y0 x1 y1 boxes (k, 4) to colorize: above the threshold, highest scores first.

    Boxes are clipped to the image and truncated to integers (as the official code does); boxes
    that are then empty, or not finite, are dropped before the ``max_boxes`` highest are kept.
    """
    height, width = image_hw
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    keep = finite & (scores > contract.score_threshold)
    boxes, scores = boxes[keep], scores[keep]
    clipped = np.clip(boxes, 0, [width, height, width, height]).astype(np.int64)
    nonempty = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    clipped, scores = clipped[nonempty], scores[nonempty]
    order = np.argsort(-scores, kind="stable")[: contract.max_boxes]
    return clipped[order]


def _squeeze(array: np.ndarray, rank: int) -> np.ndarray:
    return array[0] if array.ndim == rank + 1 and array.shape[0] == 1 else array


def _stored(graph: OnnxGraph) -> DetectorContract | None:
    text = graph.metadata.get(DETECTOR_KEY)
    if text is None:
        return None
    try:
        return DetectorContract.from_dict(json.loads(text))
    except (json.JSONDecodeError, TypeError, ContractError) as e:
        raise ContractError(
            f"detector {graph.path.name}: its '{DETECTOR_KEY}' metadata is invalid: {e}"
        ) from e


def _static_size(shape: tuple, contract: DetectorContract) -> tuple[int, int] | None:
    spatial = shape[2:4] if contract.input_layout == "NCHW" else shape[1:3]
    if len(spatial) == 2 and all(isinstance(d, int) and d > 0 for d in spatial):
        return int(spatial[0]), int(spatial[1])
    return None
