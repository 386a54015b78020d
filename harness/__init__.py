"""Benchmark and evaluation harness for efficiency claims of ML methods."""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
# The Hydra configs and paper claims. A checkout keeps them at the repository's top level (conf/),
# where users read and edit them; a built wheel carries the same folder as package data of
# harness (pyproject.toml: force-include "conf" = "harness/conf"), so an installed `harness` finds
# them without the repository.
CONF_DIR = _HERE / "conf" if (_HERE / "conf").is_dir() else _HERE.parent / "conf"
