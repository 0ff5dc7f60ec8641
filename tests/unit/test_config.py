import pytest

from pipeline.config import load_params, parse_params
from pipeline.errors import UserError
from tests.conftest import ROOT, deep_merge, default_params_dict


def test_default_params_file_is_valid():
    p = load_params(ROOT / "params.yaml")
    assert p.sampler == "round_robin"
    assert set(p.tasks) == {"sst", "para", "sts", "cfimdb"}
    assert p.data.source == "synthetic"


def test_unknown_sampler_fails_listing_valid_choices():
    with pytest.raises(UserError) as err:
        parse_params(deep_merge(default_params_dict(), {"sampler": "anel"}))
    msg = str(err.value)
    assert "sampler" in msg and "anel" in msg
    for name in ("anneal", "round_robin", "proportional", "temperature"):
        assert name in msg


def test_unknown_key_is_rejected_with_its_path():
    with pytest.raises(UserError, match=r"train\.learning_rate: unknown key"):
        parse_params(deep_merge(default_params_dict(), {"train": {"learning_rate": 0.1}}))


@pytest.mark.parametrize("section,key,value,expected", [
    ("model", "pooling", "avg", "cls, max, mean"),
    ("model", "pair_head", "nope", "linear, sbert"),
    ("data", "source", "s3", "synthetic"),
])
def test_invalid_choice_lists_valid_names(section, key, value, expected):
    with pytest.raises(UserError) as err:
        parse_params(deep_merge(default_params_dict(), {section: {key: value}}))
    assert f"{section}.{key}" in str(err.value) and expected.split(",")[0] in str(err.value)


def test_cs224n_source_needs_a_dir():
    with pytest.raises(UserError, match="data.dir"):
        parse_params(deep_merge(default_params_dict(), {"data": {"source": "cs224n"}}))


def test_classification_task_needs_num_labels():
    raw = deep_merge(default_params_dict(), {"tasks": {"mine": {"type": "classification",
                                                                "pair": False}}})
    with pytest.raises(UserError, match="num_labels"):
        parse_params(raw)


def test_missing_params_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")
