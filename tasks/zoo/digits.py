"""Runtime side of the digits zoo: the data (scikit-learn's digits) and the classifier class.

Tasks import this module; the training script (``tasks/zoo/train_digits.py``) imports it too, and
nothing at run time imports the training script.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn


def digits_tensor() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N, 1, 8, 8) floats in [-1, 1] and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
    return x, torch.tensor(d.target, dtype=torch.long)


def heldout_split(n: int, frac: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed train / held-out index split used for the classifier's reported accuracy."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(round(n * frac))
    return perm[k:], perm[:k]


class DigitsClassifier(nn.Module):
    """Small CNN for 8x8 digits; ``features`` returns the 128-d penultimate layer used for FID."""

    def __init__(self, width: int = 32, num_features: int = 128, num_classes: int = 10):
        super().__init__()
        self.config = {"width": width, "num_features": num_features, "num_classes": num_classes}
        self.num_features = num_features  # torchmetrics FID reads this attribute
        self.conv = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(2 * width * 16, num_features)
        self.head = nn.Linear(num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.conv(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def save_pretrained(self, folder: Path, card: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")
        (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "DigitsClassifier":
        folder = Path(folder)
        model = cls(**json.loads((folder / "config.json").read_text()))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()
