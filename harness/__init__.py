"""Benchmark and evaluation harness for efficiency claims of ML methods."""
