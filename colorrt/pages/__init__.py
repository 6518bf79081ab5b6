"""colorrt.pages"""
