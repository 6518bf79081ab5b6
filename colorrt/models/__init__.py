"""colorrt.models"""
