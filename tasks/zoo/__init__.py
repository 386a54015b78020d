"""Embedded models trained by ``tasks/zoo/train_digits.py`` and shipped as safetensors."""

from __future__ import annotations

from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent


def resolve(source: str) -> str:
    """``zoo:NAME`` names a shipped model folder; anything else (a path or hub id) passes through."""
    if source.startswith("zoo:"):
        folder = ZOO_DIR / source[4:]
        if not folder.is_dir():
            shipped = sorted(p.name for p in ZOO_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
            raise FileNotFoundError(f"no embedded model {source!r}; shipped: {', '.join(shipped)}. "
                                    "Regenerate with: python -m tasks.zoo.train_digits")
        return str(folder)
    return source
