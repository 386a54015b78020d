"""Embedded models trained by ``tasks/zoo/train_digits.py`` and shipped as safetensors."""

from __future__ import annotations

import os
import re
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


# What a hub id looks like (``name`` or ``org/name``); anything else that is not a folder is a mistake.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def check_source(source: object, field: str, kind: str, marker: str | None = None) -> None:
    """Fail before any point runs if ``source`` cannot name a model: a shipped ``zoo:NAME``, an
    existing local folder (with ``marker``, the file that folder must hold), or a hub id. With
    ``HF_HUB_OFFLINE=1`` a hub id must already be in the local cache. ``field`` names the config key."""
    expected = f"expected zoo:NAME (shipped: {', '.join(_shipped())}), a local {kind} folder, or a hub id (org/name)"
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{field}={source!r}: {expected}")
    if source.startswith("zoo:") and (not (ZOO_DIR / source[4:]).is_dir() or source[4:] in ("", ".", "..")):
        raise ValueError(f"{field}={source!r}: no such embedded model; {expected}")
    path = ZOO_DIR / source[4:] if source.startswith("zoo:") else Path(source).expanduser()
    if path.is_dir():
        if marker and not (path / marker).exists():
            raise ValueError(f"{field}={source!r}: the folder has no {marker}; expected a {kind} folder "
                             f"(as save_pretrained writes it)")
        return
    if path.exists():
        raise ValueError(f"{field}={source!r} is a file; {expected}")
    if source.startswith(("/", ".", "~")) or not _HUB_ID.match(source) or "--" in source or ".." in source:
        raise ValueError(f"{field}={source!r}: no such folder; {expected}")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            snapshot_download(source, local_files_only=True)
        except (LocalEntryNotFoundError, OSError, ValueError):
            raise ValueError(f"{field}={source!r}: no such folder, and not in the local Hugging Face cache while "
                             f"HF_HUB_OFFLINE=1; {expected}") from None


def _shipped() -> list[str]:
    return sorted(p.name for p in ZOO_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
