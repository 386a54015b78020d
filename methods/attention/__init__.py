"""Attention implementations, one file each (file name = registered name)."""
