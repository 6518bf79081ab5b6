"""An export's interface: sample inputs, tensor names, dynamic axes and the parity check vs torch.

A model takes the contract's main input (NCHW, or NHWC per its ``layout``) and then its extra inputs
in the contract's order (a fixed-size global copy, a reference palette, a line drawing), and returns
the architecture's outputs (``ArchSpec.outputs``; the contract's ``output_name`` first, e.g.
ChromaGAN's ``ab`` then its unused ``classes``). Batch is dynamic everywhere; height and width of
the main input where the architecture allows, and of every output that follows them (an output at
half or twice the input size gets its own axis names).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import ModelError

if TYPE_CHECKING:
    import onnx
    import torch

    from colorrt.models.registry import ArchSpec

log = logging.getLogger(__name__)


def tensor_names(spec: ArchSpec, contract: ColorContract) -> tuple[list[str], list[str]]:
    """(input names, output names) of the exported graph."""
    inputs = [contract.input_name, *(e.name for e in contract.extra_inputs)]
    outputs = list(spec.outputs) or [contract.output_name]
    if outputs[0] != contract.output_name:
        raise ModelError(f"'{spec.name}': the contract's output {contract.output_name!r} must come first")
    return inputs, outputs


def sample_inputs(contract: ColorContract, batch: int, side: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Seeded inputs spanning the contract's normalized range: the main input, then each extra input."""
    import torch
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(seed)
    main = _main_sample(contract, batch, side, g)
    samples = [main.permute(0, 2, 3, 1).contiguous() if contract.layout == "NHWC" else main]
    for extra in contract.extra_inputs:
        if extra.kind == "global":
            size = (extra.size, extra.size)
            copy = F.interpolate(main, size=size, mode="bilinear", align_corners=False, antialias=True)
            samples.append(copy)
        elif extra.kind == "palette":
            samples.append((torch.rand((batch, extra.bins**3), generator=g) < 0.2).float())
        else:
            shape = (batch, 1, side * extra.scale, side * extra.scale)
            samples.append((torch.rand(shape, generator=g) < 0.7).float())
    return tuple(samples)


def _main_sample(contract: ColorContract, batch: int, side: int, g: torch.Generator) -> torch.Tensor:
    """NCHW main input (hint mask ~5 % set)."""
    import torch

    shape = (batch, 1, side, side)
    if contract.input_space in ("gray_rgb", "gray"):
        channels = contract.input_channels  # independent grey channels test more of the graph
        grey = torch.rand((batch, channels, side, side), generator=g)
        return grey * contract.input_scale + contract.input_offset
    l_norm = torch.rand(shape, generator=g) * 100.0 * contract.input_scale + contract.input_offset
    if contract.input_space in ("L", "L_tiled"):
        return l_norm.repeat(1, contract.input_channels, 1, 1)
    mask = (torch.rand(shape, generator=g) < 0.05).float()
    ab = (torch.rand((batch, 2, side, side), generator=g) * 220.0 - 110.0) * mask
    if contract.input_space == "L_ab":
        return torch.cat([l_norm, ab * contract.hint_scale], dim=1)
    return torch.cat([l_norm, ab * contract.hint_scale, mask + contract.mask_offset], dim=1)


def torch_outputs(module: torch.nn.Module, samples: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """The module's outputs on the samples, as arrays."""
    import torch

    with torch.no_grad():
        out = module(*samples)
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def torchscript_axes(
    contract: ColorContract,
    names: tuple[list[str], list[str]],
    expected: list[np.ndarray],
    dynamic: bool,
) -> dict[str, dict[int, str]]:
    """``dynamic_axes`` for the TorchScript exporter (see the module docstring)."""
    inputs, outputs = names
    spatial = (1, 2) if contract.layout == "NHWC" else (2, 3)
    axes = {inputs[0]: {0: "batch"} | ({spatial[0]: "height", spatial[1]: "width"} if dynamic else {})}
    axes |= {name: {0: "batch"} for name in inputs[1:]}
    for name, value in zip(outputs, expected, strict=True):
        axes[name] = {0: "batch"}
        if dynamic and value.ndim == 4:
            suffix = "" if value.shape[spatial[0]] == contract.render_size else f"_{name}"
            axes[name] |= {spatial[0]: f"height{suffix}", spatial[1]: f"width{suffix}"}
    return axes


def dynamo_shapes(
    contract: ColorContract, count: int, spatial_multiple: int | None
) -> tuple[dict[int, Any], ...]:
    """``dynamic_shapes`` for torch.export: the batch shared by every input, the main input's sides."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=1024)
    main: dict[int, Any] = {0: batch}
    if spatial_multiple:  # torch.export proves the size rule: height = multiple * k
        h, w = (1, 2) if contract.layout == "NHWC" else (2, 3)
        top = 8192 // spatial_multiple
        main[h] = spatial_multiple * Dim(f"height_div{spatial_multiple}", min=1, max=top)
        main[w] = spatial_multiple * Dim(f"width_div{spatial_multiple}", min=1, max=top)
    return (main, *({0: batch} for _ in range(count - 1)))


def parity(
    proto: onnx.ModelProto,
    samples: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    expected: list[np.ndarray],
    tolerance: float,
    arch: str,
) -> float:
    """Max abs difference of ONNX Runtime (CPU, FP32) vs torch over every output; raises above tolerance."""
    import onnxruntime as ort

    inputs, outputs = names
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(outputs, {n: s.numpy() for n, s in zip(inputs, samples, strict=True)})
    error = 0.0
    for name, value, reference in zip(outputs, got, expected, strict=True):
        if value.shape != reference.shape:
            raise ModelError(f"{arch}: ONNX output {name!r} has shape {value.shape}, torch {reference.shape}")
        error = max(error, float(np.max(np.abs(value.astype(np.float64) - reference.astype(np.float64)))))
    if not error <= tolerance:  # also catches NaN
        raise ModelError(
            f"{arch}: ONNX Runtime output differs from torch by {error:.3g} (max abs, FP32), "
            f"above the tolerance {tolerance:g}",
            "the export is not faithful; try --exporter dynamo or another --opset, and report the model",
        )
    log.info("%s: parity vs torch, max abs error %.3g", arch, error)
    return error
