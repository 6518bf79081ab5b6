"""ECCV16 ``ab_bins`` decoding against the paper's annealed mean, written here in float64.

Zhang et al. 2016, eq. 5: H(Z) = E[f_T(Z)], f_T(z) = exp(log z / T) / sum_q exp(log z_q / T), with z
the softmax of the logits and T = 0.38, the expectation taken over the bins' ab centres. The
reference below follows that text literally (probabilities raised to 1/T and renormalized), not the
``softmax(logits / T)`` shortcut colorrt uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from colorrt.contract import eccv16_contract
from colorrt.kernels.pipeline import decode_ab

GRID = np.array([(a, b) for a in range(-110, 111, 10) for b in range(-110, 111, 10)], dtype=np.float64)
CENTRES = GRID[np.argsort(np.hypot(*GRID.T), kind="stable")][:313]  # 313 grid-10 bins, like pts_in_hull


def papers_annealed_mean(logits: np.ndarray, centres: np.ndarray, temperature: float) -> np.ndarray:
    """(N, 2, h, w) ab from (N, Q, h, w) logits: z = softmax, f_T(z) = z^(1/T) renormalized, E[centre]."""
    x = logits.astype(np.float64)
    z = np.exp(x - x.max(axis=1, keepdims=True))
    z /= z.sum(axis=1, keepdims=True)
    f = np.exp(np.log(z) / temperature)
    f /= f.sum(axis=1, keepdims=True)
    return np.einsum("nqhw,qc->nchw", f, centres)


@pytest.mark.parametrize("temperature", [0.38, 1.0, 0.1])
@pytest.mark.parametrize("spread", [0.5, 3.0, 12.0])  # logits' std: nearly flat .. nearly one-hot
def test_decode_is_the_papers_annealed_mean(temperature: float, spread: float) -> None:
    contract = eccv16_contract(CENTRES).replace(annealing_temperature=temperature)
    rng = np.random.default_rng(int(spread * 10))
    logits = (rng.normal(0, spread, (2, 313, 6, 7)) + rng.uniform(-40, 40)).astype(np.float32)
    got = decode_ab(logits, contract)
    expected = papers_annealed_mean(logits, CENTRES, temperature)
    assert got.shape == (2, 2, 6, 7) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 2e-3  # CIE ab units
    assert np.abs(expected).max() > 1.0  # not decoding to grey everywhere: the check has bite


def test_decode_of_float16_logits_matches_the_reference() -> None:
    logits = np.random.default_rng(3).normal(0, 4, (1, 313, 5, 5)).astype(np.float16)  # an FP16 engine
    got = decode_ab(logits, eccv16_contract(CENTRES))
    expected = papers_annealed_mean(logits.astype(np.float64), CENTRES, 0.38)
    assert np.abs(got - expected).max() <= 2e-3


def test_annealing_sharpens_towards_the_mode_and_t1_is_the_plain_mean() -> None:
    logits = np.full((1, 313, 1, 1), 0.0, np.float32)
    logits[0, [20, 200], 0, 0] = [6.0, 5.0]  # two colour modes, one likelier
    plain = decode_ab(logits, eccv16_contract(CENTRES).replace(annealing_temperature=1.0))[0, :, 0, 0]
    annealed = decode_ab(logits, eccv16_contract(CENTRES))[0, :, 0, 0]
    z = np.exp(logits[0, :, 0, 0].astype(np.float64))
    np.testing.assert_allclose(plain, (z / z.sum()) @ CENTRES, atol=1e-3)  # the release's model_out
    mode = CENTRES[20]
    assert np.linalg.norm(annealed - mode) < 0.5 * np.linalg.norm(plain - mode)


def test_runtime_colorizes_an_eccv16_export_with_the_papers_decode(tmp_path: Path) -> None:
    """Exported ECCV16 (release layout, grid bin centres) through Runtime vs a float64 chain.

    Reference: skimage L -> (L - 50) / 100 -> torch float64 logits -> paper's annealed mean ->
    bilinear upsample (half-pixel) to the image size -> skimage Lab -> sRGB -> uint8.
    """
    torch = pytest.importorskip("torch")
    from colorrt.export import export
    from colorrt.models import build_model
    from colorrt.runtime import Runtime

    size = 32  # pixels: render size; logits at 8 x 8
    net = build_model("eccv16", random_init=True, seed=1)
    with torch.no_grad():
        net.model_out.weight.copy_(torch.from_numpy(CENTRES.T / 110.0)[:, :, None, None])
        net.model8[6].weight.mul_(12.0)  # spread the logits so T matters
    result = export("eccv16", weights=net.state_dict(), output=tmp_path / "eccv16.onnx", size=size)
    np.testing.assert_allclose(np.array(result.contract.bin_centers), CENTRES, atol=1e-4)

    ramp = np.linspace(20, 235, size)
    grey = np.round(np.add.outer(ramp, ramp[::-1]) / 2).astype(np.uint8)
    with Runtime(result.path, device="cpu", backend="onnxruntime") as runtime:
        got = runtime.colorize(grey)

    lightness = rgb2lab(np.repeat(grey[..., None] / 255.0, 3, axis=2))[..., 0]
    with torch.no_grad():
        logits = net.double().logits(torch.from_numpy((lightness - 50.0) / 100.0)[None, None]).numpy()
    assert logits.std() > 1.0
    ab = papers_annealed_mean(logits, CENTRES, 0.38)
    ab_full = torch.nn.functional.interpolate(torch.from_numpy(ab), size=(size, size), mode="bilinear")
    lab = np.concatenate([lightness[None], ab_full[0].numpy()]).transpose(1, 2, 0)
    expected = np.round(np.clip(lab2rgb(lab), 0, 1) * 255)
    assert got.shape == (size, size, 3)
    assert np.abs(got.astype(int) - expected).max() <= 2  # uint8 codes
    assert np.abs(expected.max(axis=2) - expected.min(axis=2)).mean() > 5  # the result has colour
