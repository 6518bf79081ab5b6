"""colorrt.export"""
