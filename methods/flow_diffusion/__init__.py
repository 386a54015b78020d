"""Flow-DiT samplers and feature caches, one file each (tasks/flow_diffusion/protocol.py)."""
