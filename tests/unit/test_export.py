"""Prediction files match the official CS224N starter code byte for byte."""

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.export import check_coverage, render_predictions


def official(header, ids, preds):
    """What the official starter code writes (its f-strings, copied)."""
    out = f"id \t {header} \n"
    for p, s in zip(ids, preds, strict=True):
        out += f"{p} , {s} \n"
    return out


def test_sst_bytes():
    ids = ["a7d575c9ed86ea9633660c67e", "33cfa32975091f471e3a19656"]
    got = render_predictions("sst", "classification", ids, np.array([3, 0]))
    assert got == official("Predicted_Sentiment", ids, [3, 0])
    assert got.encode() == (b"id \t Predicted_Sentiment \n"
                            b"a7d575c9ed86ea9633660c67e , 3 \n33cfa32975091f471e3a19656 , 0 \n")


def test_para_bytes_use_the_starter_codes_rounded_floats():
    ids = ["x1", "x2"]
    got = render_predictions("para", "classification", ids, np.array([1, 0]))
    assert got == official("Predicted_Is_Paraphrase", ids, [np.float32(1.0), np.float32(0.0)])
    assert got.endswith("x2 , 0.0 \n")


def test_sts_header_keeps_the_official_misspelling():
    got = render_predictions("sts", "regression", ["s1"], np.array([3.14159]))
    assert got.startswith("id \t Predicted_Similiary \n")


def test_sts_bytes_are_the_starter_codes_float32_scores():
    """The starter formats float32 scores with f"{s}" (full digits, not rounded); our
    predictions are float32 model outputs stored as float64, so the bytes must agree."""
    scores = np.array([3.14159265, 0.1, 4.999, -0.25, 2.0], dtype=np.float32)
    ids = [f"s{i}" for i in range(len(scores))]
    got = render_predictions("sts", "regression", ids, scores.astype(np.float64))
    assert got == official("Predicted_Similiary", ids, list(scores))
    assert "s0 , 3.1415927410125732 \n" in got and "s4 , 2.0 \n" in got


def test_coverage_requires_every_id_exactly_once():
    check_coverage("sst", "test", ["a", "b"], ["b", "a"])
    with pytest.raises(UserError, match="miss 1"):
        check_coverage("sst", "test", ["a", "b"], ["a"])
    with pytest.raises(UserError, match="duplicate"):
        check_coverage("sst", "test", ["a"], ["a", "a"])
