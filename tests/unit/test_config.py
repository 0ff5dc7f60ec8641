import pytest

from pipeline.config import load_params, parse_params
from pipeline.errors import UserError
from tests.conftest import ROOT, deep_merge, default_params_dict


def test_default_params_file_is_valid():
    p = load_params(ROOT / "params.yaml")
    assert p.sampler == "round_robin"
    assert set(p.tasks) == {"sst", "para", "sts", "cfimdb"}
    assert p.data.source == "cs224n"


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
        parse_params(deep_merge(default_params_dict(), {"data": {"source": "cs224n",
                                                                 "dir": None}}))


def test_defaults_read_the_shipped_cs224n_data():
    params = parse_params(default_params_dict())
    assert (params.data.source, params.data.dir) == ("cs224n", "data/cs224n")
    assert (ROOT / "data" / "cs224n" / "quora-train-extra.csv").is_file()


def test_classification_task_needs_num_labels():
    raw = deep_merge(default_params_dict(), {"tasks": {"mine": {"type": "classification",
                                                                "pair": False}}})
    with pytest.raises(UserError, match="num_labels"):
        parse_params(raw)


def test_missing_params_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("key,value", [
    *[("model.adapter", a) for a in ("none", "pal", "pal_lora", "lora")],
    *[("model.pair_head", h) for h in ("sbert", "linear", "mlp", "bilstm", "cosine",
                                       "projected_cosine", "cosine_penalty")],
    *[("model.single_head", h) for h in ("linear", "mlp", "bilstm")],
    *[("model.freeze", f) for f in ("full", "frozen", "two_stage")],
    *[("model.pair_encoding", e) for e in ("siamese", "cross")],
])
def test_every_model_option_is_accepted(key, value):
    section, name = key.split(".")
    p = parse_params(deep_merge(default_params_dict(), {section: {name: value}}))
    assert getattr(getattr(p, section), name) == value


def test_head_that_does_not_fit_a_task_names_the_valid_ones():
    raw = deep_merge(default_params_dict(), {"model": {"pair_head": "relu_cos5"}})
    with pytest.raises(UserError) as err:  # relu_cos5 scores similarity: not para's labels
        parse_params(raw)
    assert "model.pair_head=relu_cos5 does not fit task 'para'" in str(err.value)
    assert ("valid heads for it: linear, mlp, sbert, cosine, projected_cosine, cosine_penalty,"
            " bilstm") in str(err.value)


def test_auto_pair_head_is_cosine_where_it_fits_else_sbert():
    from pipeline.model.multitask import TaskSpec

    raw = deep_merge(default_params_dict(), {"tasks": {"nli": {
        "type": "classification", "num_labels": 3, "pair": True}}})
    params = parse_params(raw)  # a 3-class pair task is valid under the default head
    heads = {n: TaskSpec.from_config(n, c, params.model).head for n, c in params.tasks.items()}
    assert params.model.pair_head == "auto"
    assert heads == {"sst": "linear", "para": "cosine", "sts": "cosine", "cfimdb": "linear",
                     "nli": "sbert"}
    with pytest.raises(UserError, match="unknown head 'cosin'; valid choices: auto, bilstm"):
        parse_params(deep_merge(raw, {"model": {"pair_head": "cosin"}}))


def test_params_yaml_survives_dvcs_rewrite_for_exp_run():
    """`dvc exp run -S key=value` loads params.yaml with ruamel's round trip, sets the value
    and dumps the file again; what it dumps must still parse, to the same params."""
    from dvc.utils.serialize._yaml import dumps_yaml, parse_yaml, parse_yaml_for_update

    text = (ROOT / "params.yaml").read_text()
    data = parse_yaml_for_update(text, "params.yaml")
    data["seed"] = 14
    again = parse_yaml(dumps_yaml(data), "params.yaml (rewritten)")
    before = load_params(ROOT / "params.yaml").model_dump()
    assert parse_params(dict(again)).model_dump() == {**before, "seed": 14}
