"""Training and evaluation scripts for colorrt's bundled default model (not part of the package)."""
