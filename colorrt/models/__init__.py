"""Model zoo: torch definitions of colorization generators and their official-checkpoint loaders.

The architecture table (:data:`ARCHITECTURES`) imports no torch; the torch modules
(``cyclegan``, ``zhang``, ``checkpoint``, ``default``) load only when a model is built.
"""

from __future__ import annotations

from colorrt.models.registry import ARCHITECTURES, ArchSpec, arch_names, build_model, get_arch

__all__ = ["ARCHITECTURES", "ArchSpec", "arch_names", "build_model", "get_arch"]
