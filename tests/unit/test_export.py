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
    assert got == "id \t Predicted_Similiary \ns1 , 3.1416 \n"


def test_coverage_requires_every_id_exactly_once():
    check_coverage("sst", "test", ["a", "b"], ["b", "a"])
    with pytest.raises(UserError, match="miss 1"):
        check_coverage("sst", "test", ["a", "b"], ["a"])
    with pytest.raises(UserError, match="duplicate"):
        check_coverage("sst", "test", ["a"], ["a", "a"])
