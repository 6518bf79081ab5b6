"""colorrt.runtime"""
