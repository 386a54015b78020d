"""Per-sentence BLEU implementations, one file each (file name = registered name)."""
