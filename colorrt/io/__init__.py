"""colorrt.io"""
