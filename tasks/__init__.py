"""Workloads, one package each (``tasks/<workload>/``): the task, its method protocol, its metrics.

``zoo/`` holds the embedded models shared by workloads.
"""
