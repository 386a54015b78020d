"""CLIP score through torchmetrics with a tiny CLIP built offline, against the score written out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.metrics.clip import ClipScore, to_uint8_rgb


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIPModel from tiny configs and a byte-level BPE tokenizer with no merges (CLIP's
    vocabulary starts with the 256 byte symbols and their end-of-word forms), saved like a hub model."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    torch.manual_seed(0)
    text = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, max_position_embeddings=64,
                          bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                          pad_token_id=vocab["<|endoftext|>"])
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16))
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    folder = tmp_path_factory.mktemp("tiny_clip")
    model.save_pretrained(str(folder))
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder


def _by_hand(folder: Path, images: torch.Tensor, captions: list[str]) -> float:
    """max(100 * mean cos, 0) from the raw model: vision/text towers, projections, cosine."""
    from transformers import CLIPModel, CLIPProcessor

    model, proc = CLIPModel.from_pretrained(str(folder)).eval(), CLIPProcessor.from_pretrained(str(folder))
    with torch.no_grad():
        pix = proc(images=list(to_uint8_rgb(images)), return_tensors="pt")["pixel_values"]
        img = model.visual_projection(model.vision_model(pixel_values=pix).pooler_output)
        tok = proc(text=captions, return_tensors="pt", padding=True)
        txt = model.text_projection(model.text_model(input_ids=tok["input_ids"],
                                                     attention_mask=tok["attention_mask"]).pooler_output)
    cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
    return max(float(100 * cos.mean()), 0.0)


def test_clip_score_matches_the_model_by_hand(tiny_clip: Path) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    captions = ["a photo of a cat", "a digit", "two dogs", "zero"]
    metric = ClipScore(tiny_clip)
    assert metric(images, captions) == pytest.approx(_by_hand(tiny_clip, images, captions), abs=1e-4)
    gray = images[:, :1]  # 1-channel images (the digits task) are repeated to RGB
    assert metric(gray, captions) == pytest.approx(_by_hand(tiny_clip, gray, captions), abs=1e-4)


def test_clip_score_errors(tmp_path: Path, tiny_clip: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no config.json"):
        ClipScore(tmp_path)
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        ClipScore(tiny_clip)(torch.zeros(2, 3, 32, 32), ["x"])
