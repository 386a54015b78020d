"""Launchers: where a sweep's points run (``inline``, ``process``, ``slurm``, ``ray``) and how faults in
one point are kept from the others. Entry point: ``harness.launch.launcher.launch``; the config group
is ``harness.launch.config``. Kept empty so that importing the config (as ``harness.plan`` does) pulls
in nothing that imports ``harness.plan`` back."""
