"""The colour contract: what a model eats and what it returns, stored inside every ONNX file.

:mod:`~colorrt.contract.core` defines :class:`ColorContract` and its JSON / ONNX metadata round trip;
:mod:`~colorrt.contract.presets` holds the presets of every model family.
"""

from colorrt.contract.core import (
    CONTRACT_VERSION,
    METADATA_KEY,
    ColorContract,
    ExtraInput,
    InputSpace,
    OutputKind,
    SizeRule,
    read_from_onnx,
    write_to_onnx,
)
from colorrt.contract.presets import PRESETS, chosen_contract, eccv16_contract, iizuka_contract, preset

__all__ = [
    "CONTRACT_VERSION",
    "METADATA_KEY",
    "PRESETS",
    "ColorContract",
    "ExtraInput",
    "InputSpace",
    "OutputKind",
    "SizeRule",
    "chosen_contract",
    "eccv16_contract",
    "iizuka_contract",
    "preset",
    "read_from_onnx",
    "write_to_onnx",
]
