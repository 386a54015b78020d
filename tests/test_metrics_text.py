"""Text metrics against independent references: NLTK corpus BLEU, hand-computed chrF, textbook values."""

from __future__ import annotations

import math

import pytest
import torch
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

from harness.analysis import is_quality
from harness.metrics import METRICS, info
from harness.metrics.text import accuracy, bits_per_byte, chrf, corpus_bleu, exact_match, perplexity
from harness.registry import load_plugins

HYPS = ["it is a guide to action which ensures that the military always obeys the commands of the party",
        "he read the book because he was interested in world history"]
REFS = [["it is a guide to action that ensures that the military will forever heed party commands",
         "it is the guiding principle which guarantees the military forces always being under the command of the "
         "party"],
        ["he was interested in world history because he read the book",
         "he read the book since he was interested in the history of the world"]]


def test_sacrebleu_corpus_bleu_equals_nltk_corpus_bleu() -> None:
    # tokenize='none' splits on spaces, as NLTK's token lists; both use corpus-level counts and the
    # shorter reference on length ties. Every order has matches here, so smoothing plays no part.
    ours = corpus_bleu(HYPS, REFS, tokenize="none")
    ref = 100 * nltk_corpus_bleu([[r.split() for r in rs] for rs in REFS], [h.split() for h in HYPS])
    assert ours == pytest.approx(ref, abs=1e-9)
    assert corpus_bleu(HYPS, [[h, h] for h in HYPS]) == pytest.approx(100.0)


def test_chrf_by_hand() -> None:
    # "abc" vs "abd": 1-grams P = R = 2/3, 2-grams 1/2, 3-grams 0; orders 4-6 have no n-grams and
    # drop out (sacrebleu's effective order). Mean P = mean R = 7/18, so F_beta = 7/18 for any beta.
    assert chrf(["abc"], [["abd"]]) == pytest.approx(100 * 7 / 18, abs=1e-9)
    assert chrf(["a b c"], [["abc"]]) == pytest.approx(100.0)  # whitespace is removed
    assert chrf(["xyz"], [["abc"]]) == 0.0


def test_reference_lists_must_line_up() -> None:
    with pytest.raises(ValueError, match="same number"):
        corpus_bleu(["a", "b"], [["a"], ["b", "c"]])
    with pytest.raises(ValueError, match="one list of references per hypothesis"):
        chrf(["a"], [["a"], ["b"]])


def test_accuracy_exact_match_perplexity_bpb() -> None:
    assert accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])) == 0.5
    assert accuracy(["a", "b"], ["a", "b"]) == 1.0
    assert exact_match([" Paris ", "rome"], ["Paris", "Rome"]) == 0.5
    assert exact_match([" Paris"], ["Paris"], strip=False) == 0.0
    # uniform model over 256 bytes: NLL = ln 256 per byte -> perplexity 256, 8 bits per byte
    n = 1000
    assert perplexity(n * math.log(256), n) == pytest.approx(256.0)
    assert bits_per_byte(n * math.log(256), n) == pytest.approx(8.0)
    # a token model: 500 tokens for the same 1000 bytes, same total NLL -> same bpb, higher perplexity
    assert bits_per_byte(n * math.log(256), 1000) == pytest.approx(8.0)
    assert perplexity(n * math.log(256), 500) == pytest.approx(256.0**2)
    with pytest.raises(ValueError, match="n_bytes must be >= 1"):
        bits_per_byte(1.0, 0)
    with pytest.raises(ValueError, match="equally many"):
        accuracy([1], [1, 2])


def test_every_quality_metric_declares_direction_unit_and_aggregation() -> None:
    load_plugins()  # workloads declare their own metrics
    quality = [name for name, m in METRICS.items() if is_quality(name)]
    assert {"fid", "bleu", "coverage", "bleu_max_abs_error", "exact_match"} <= set(quality)
    for name in quality:
        m = info(name)
        assert m.aggregation and m.description and m.higher_is_better is not None, name
    assert METRICS["perplexity"].higher_is_better is False and METRICS["bleu"].higher_is_better is True
    assert METRICS["kid_std"].higher_is_better is None  # a spread, not a quality direction


def test_metric_registry_names_each_metric_once() -> None:
    # A dict literal silently keeps the last of two equal keys; two tasks once defined "bleu" apart.
    import ast
    import collections

    import harness.metrics as m

    tree = ast.parse(open(m.__file__).read())
    keys = [k.value for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys
            if isinstance(k, ast.Constant)]
    assert [k for k, c in collections.Counter(keys).items() if c > 1] == []
