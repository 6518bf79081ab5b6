"""colorrt.calibration"""
