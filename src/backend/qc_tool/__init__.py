"""Drone photo QC for telecom tower sites."""
