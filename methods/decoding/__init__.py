"""Decoding methods, one file each (file name = registered name)."""
