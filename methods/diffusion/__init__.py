"""Diffusion samplers, one file each (file name = registered name)."""
