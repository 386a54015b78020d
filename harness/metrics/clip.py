"""CLIP score (Hessel et al. 2021, eq. 1 with w = 100, as torchmetrics): image-caption agreement.

``max(100 * mean_i cos(E_img(x_i), E_txt(c_i)), 0)`` through torchmetrics ``CLIPScore``, with a CLIP
model loaded from a local folder (``save_pretrained`` layout: the model plus its processor).

Why an adapter: under transformers 5, ``CLIPModel.get_image_features``/``get_text_features`` return
an output object whose ``pooler_output`` holds the projected embedding, while torchmetrics 1.9
divides their return value by its norm as if it were a tensor. ``_TensorFeatures`` returns the
tensor. torchmetrics also accepts only a few hub names as strings, so the model is passed as the
loader callable it supports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


class _TensorFeatures(nn.Module):
    """A CLIPModel whose feature methods return tensors (transformers 4 behaviour)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config

    @staticmethod
    def _tensor(out: Any) -> torch.Tensor:
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def get_image_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self._tensor(self.model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self._tensor(self.model.get_text_features(*args, **kwargs))


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1], 1 or 3 channels -> uint8 RGB, what CLIP's image processor expects."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"want images (N, 1 or 3, H, W) in [-1, 1], got shape {tuple(images.shape)}")
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).expand(-1, 3, -1, -1)


class ClipScore:
    """CLIP score of generated images against their captions, with a local CLIP model folder."""

    def __init__(self, model_path: str | Path, device: torch.device | str = "cpu"):
        from torchmetrics.multimodal.clip_score import CLIPScore
        from transformers import CLIPModel, CLIPProcessor

        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"CLIP model folder {path} has no config.json: save a CLIPModel and its "
                                    "CLIPProcessor there with save_pretrained (no download happens here)")

        def load() -> tuple[nn.Module, Any]:
            model = CLIPModel.from_pretrained(str(path)).eval()
            return _TensorFeatures(model), CLIPProcessor.from_pretrained(str(path))

        self.device = torch.device(device)
        self._metric = CLIPScore(model_name_or_path=load).to(self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, captions: list[str]) -> float:
        if len(captions) != len(images):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        self._metric.reset()
        self._metric.update(list(to_uint8_rgb(images).to(self.device)), captions)
        return float(self._metric.compute())
