"""Efficiency methods, grouped by workload (``methods/<workload>/<name>.py``); each file registers itself once."""
