"""Load published checkpoints into the zoo's modules strictly, with readable errors.

Handles the usual packaging differences of released ``.pth`` files: a ``{"state_dict": ...}`` or
``{"model": ...}`` wrapper, the ``module.`` prefix left by ``DataParallel``, and the InstanceNorm
``running_mean`` / ``running_var`` / ``num_batches_tracked`` entries that PyTorch < 0.4.1 saved for
norm layers that have no such buffers (what pytorch-CycleGAN-and-pix2pix patches away on load).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colorrt.errors import InputError, ModelError
from colorrt.models.known import check_published

_WRAPPER_KEYS = ("state_dict", "model", "net", "netG", "generator")
_NORM_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_LISTED = 10  # keys shown per list in a mismatch error


def load_checkpoint(
    module: nn.Module,
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any],
    *,
    arch: str | None = None,
    hint: str = "",
    source: str | None = None,
) -> nn.Module:
    """Load a ``.pth`` file or state dict into ``module`` with ``strict=True``; returns ``module``.

    Raises InputError when the file is missing or unreadable, ModelError when the keys or shapes do
    not match (listing the missing and unexpected keys; ``arch`` names the architecture in the hint,
    ``hint`` adds architecture-specific advice, ``source`` names an already-read object in messages).
    """
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        raw: Any = read_checkpoint_file(path_or_state_dict)
        source = f"checkpoint {os.fspath(path_or_state_dict)}"
    else:
        raw = path_or_state_dict
        source = source or "the state dict"
    state = clean_state_dict(unwrap_state_dict(raw, source), module)
    _check_keys(module, state, source, _arch_hint(arch, hint))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:  # shape mismatches land here after the key check passed
        raise ModelError(f"{source} does not fit the model: {e}", _arch_hint(arch, hint)) from e
    return module


def missing_weights(path: Path) -> InputError:
    """The error for a weights path that is not there (checked before any model is built)."""
    return InputError(
        f"weights file not found: {path}", "check the path, or pass --random-init to export without weights"
    )


def read_checkpoint_file(path: str | os.PathLike[str]) -> Any:
    """Unpickle a checkpoint file safely (tensors and plain containers only) on the CPU."""
    file = Path(path)
    if not file.is_file():
        raise missing_weights(file)
    check_published(file)  # warns about a truncated download of a published checkpoint
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a file
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (pickle, zip, EOF) for unreadable files
        raise _unreadable_checkpoint(file, e) from e


def _unreadable_checkpoint(file: Path, error: Exception) -> InputError:
    """One line for torch.load's many-line errors: not a checkpoint, or refused by weights_only."""
    text = str(error)
    hint = "expected a PyTorch state dict saved with torch.save (.pth); the file may be truncated"
    if "Weights only load failed" not in text:
        first = text.strip().splitlines()[0] if text.strip() else ""
        return InputError(f"cannot read weights file {file}: {type(error).__name__}: {first}", hint)
    if not _looks_like_pickle(file):
        return InputError(
            f"{file} is not a PyTorch checkpoint (neither a torch.save archive nor a pickle)", hint
        )
    after = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
    reason = after[0].strip() if after else "unsupported content"
    return InputError(
        f"{file} is a pickle that safe loading (torch.load weights_only=True) refused: {reason}",
        "colorrt loads tensors and plain containers only; re-save the weights with "
        "torch.save(model.state_dict(), path) where the file came from",
    )


def _looks_like_pickle(file: Path) -> bool:
    """A torch.save zip archive, or a pickle stream (protocol 2 and up starts with 0x80 and its number)."""
    if zipfile.is_zipfile(file):
        return True
    with open(file, "rb") as handle:
        head = handle.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def unwrap_state_dict(raw: Any, source: str = "the checkpoint") -> dict[str, Any]:
    """The tensor dictionary inside a checkpoint (unwrapping ``state_dict``/``model``-style keys)."""
    for _ in range(3):  # nested wrappers such as {"model": {"state_dict": ...}} are rare but exist
        if not isinstance(raw, Mapping):
            break
        if raw and all(torch.is_tensor(v) for v in raw.values()):
            return dict(raw)
        inner = next((raw[k] for k in _WRAPPER_KEYS if isinstance(raw.get(k), Mapping)), None)
        if inner is None:
            break
        raw = inner
    kind = type(raw).__name__
    keys = sorted(raw)[:_LISTED] if isinstance(raw, Mapping) else []
    raise ModelError(
        f"{source} holds no state dict of tensors (got a {kind}{f' with keys {keys}' if keys else ''})",
        "save the generator with torch.save(net.state_dict(), path)",
    )


def clean_state_dict(state: Mapping[str, Any], module: nn.Module) -> dict[str, Any]:
    """Strip ``module.`` prefixes, drop norm statistics the module has no buffer for.

    Also fills a missing BatchNorm ``num_batches_tracked`` (absent from PyTorch < 0.4 checkpoints
    such as the original pix2pix releases; it is a training counter with no effect on inference).
    """
    cleaned: dict[str, Any] = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        cleaned[key] = value
    own = dict(module.state_dict())
    norm_layers = {
        name for name, m in module.named_modules() if isinstance(m, nn.modules.instancenorm._InstanceNorm)
    }
    for key in list(cleaned):
        owner, _, leaf = key.rpartition(".")
        if leaf in _NORM_STAT_SUFFIXES and owner in norm_layers and key not in own:
            del cleaned[key]
    for name, m in module.named_modules():
        prefix = f"{name}." if name else ""
        key = f"{prefix}num_batches_tracked"
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and key in own and key not in cleaned:
            if f"{prefix}running_mean" in cleaned:
                cleaned[key] = own[key].clone()
    return cleaned


def _check_keys(module: nn.Module, state: Mapping[str, Any], source: str, hint: str) -> None:
    expected = set(module.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if not missing and not unexpected:
        return
    parts = [f"{source} does not match the model's keys:"]
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = f", ... ({len(keys) - _LISTED} more)" if len(keys) > _LISTED else ""
            parts.append(f"  {len(keys)} {label} keys: {', '.join(keys[:_LISTED])}{more}")
    raise ModelError("\n".join(parts), hint)


def _arch_hint(arch: str | None, extra: str = "") -> str:
    where = f"'{arch}'" if arch else "this architecture"
    text = (
        f"the checkpoint was probably trained for another architecture than {where} (wrong --arch?); "
        "`colorrt export --help` lists the architectures"
    )
    return f"{text}; {extra}" if extra else text


def init_random_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded random weights that keep activations near unit scale (for tests and benchmarks).

    Convolutions get He-normal weights, linear layers LeCun-normal ones, small biases; BatchNorm gets
    non-trivial affine parameters and running statistics, so an exported graph exercises every folded
    term.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                kh, kw = m.kernel_size
                fan_in = m.in_channels * kh * kw
                if isinstance(m, nn.ConvTranspose2d):
                    fan_in //= m.stride[0] * m.stride[1]  # each output sees 1/stride² of the kernel
                m.weight.normal_(0.0, (2.0 / max(fan_in, 1)) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.01, generator=g)
            elif isinstance(m, nn.Linear):  # torch's default init would draw from the global RNG
                m.weight.normal_(0.0, (1.0 / max(m.in_features, 1)) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.01, generator=g)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.affine:
                    m.weight.uniform_(0.8, 1.2, generator=g)
                    m.bias.normal_(0.0, 0.1, generator=g)
                if m.track_running_stats:
                    m.running_mean.normal_(0.0, 0.1, generator=g)
                    m.running_var.uniform_(0.8, 1.2, generator=g)
    return module
