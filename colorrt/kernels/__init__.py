"""colorrt.kernels"""
