"""WiSE-FT (`train.wise_ft_alpha`): the saved model is alpha * trained + (1 - alpha) * step 0."""

from __future__ import annotations

import pytest
import torch
import yaml

from pipeline.cli import main as cli_main
from pipeline.config import parse_params
from pipeline.errors import UserError
from pipeline.io import read_json
from pipeline.model.multitask import MultitaskModel
from pipeline.train.run import train
from pipeline.train.wise_ft import interpolate_weights
from pipeline.wise_ft_sweep import recover_trained, sweep, sweep_table
from tests.conftest import prepare_for_training, tiny_params_dict

SMALL = {"train": {"epochs": 1, "precision": "fp32", "lr": 1e-3, "head_lr": 1e-3},
         "data": {"synthetic": {"train_size": 120, "dev_size": 30, "test_size": 10}}}


def test_the_mix_is_linear_in_alpha_and_keeps_integer_buffers():
    trained = {"w": torch.tensor([2.0, 4.0]), "ids": torch.tensor([3, 4])}
    start = {"w": torch.tensor([0.0, 1.0]), "ids": torch.tensor([3, 4])}
    assert torch.equal(interpolate_weights(trained, start, 1.0)["w"], trained["w"])
    assert torch.equal(interpolate_weights(trained, start, 0.0)["w"], start["w"])
    assert torch.allclose(interpolate_weights(trained, start, 0.25)["w"], torch.tensor([0.5, 1.75]))
    assert interpolate_weights(trained, start, 0.5)["ids"].dtype == torch.int64


@pytest.mark.parametrize("start, message", [
    ({"w": torch.zeros(2)}, "differs from the trained one in: ids"),
    ({"w": torch.zeros(3), "ids": torch.tensor([3, 4])}, "'w': shape (2,)"),
])
def test_a_start_that_does_not_match_is_refused(start, message):
    trained = {"w": torch.ones(2), "ids": torch.tensor([3, 4])}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        interpolate_weights(trained, start, 0.5)


def test_alpha_outside_zero_to_one_fails_at_validation():
    with pytest.raises(UserError, match="wise_ft_alpha"):
        parse_params(tiny_params_dict(train={"wise_ft_alpha": 1.5}))


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    work = tmp_path_factory.mktemp("wise")
    params = parse_params(tiny_params_dict(**SMALL))
    prepare_for_training(params, work)
    return work


def trained_weights(work, name: str, **train_params) -> tuple[dict[str, torch.Tensor], dict]:
    params = small_params(**train_params)
    out = work / name
    train(params, work / "tok", work / "mlm", out, work / f"live-{name}")
    model = MultitaskModel.load(out, torch.device("cpu"))
    return model.state_dict(), read_json(out / "train_summary.json")


def small_params(**train_params):
    return parse_params(tiny_params_dict(**{**SMALL, "train": {**SMALL["train"],
                                                               **train_params}}))


@pytest.fixture(scope="module")
def runs(tokenized):
    """One trajectory saved four ways: never trained, trained, and mixed at alpha 0 and 0.5."""
    return {"step0": trained_weights(tokenized, "step0", epochs=0),
            "full": trained_weights(tokenized, "full"),
            "alpha0": trained_weights(tokenized, "alpha0", wise_ft_alpha=0.0),
            "half": trained_weights(tokenized, "half", wise_ft_alpha=0.5)}


def test_the_saved_model_is_the_mix_of_the_trained_and_the_step_0_model(runs):
    step0, _ = runs["step0"]
    full, full_summary = runs["full"]
    at_start, _ = runs["alpha0"]
    half, summary = runs["half"]
    moved = [k for k in full if full[k].is_floating_point()
             and not torch.equal(full[k], step0[k])]
    assert any(k.startswith("encoder.") for k in moved) and any(k.startswith("heads.")
                                                                for k in moved)
    # alpha 0 rebuilds exactly the model training started from (same seed, same head fits)
    assert all(torch.equal(at_start[k], step0[k]) for k in step0)
    for k in moved:
        assert torch.allclose(half[k], (full[k] + step0[k]) / 2, atol=1e-6), k
    assert full_summary["wise_ft"] is None
    assert summary["wise_ft"]["alpha"] == 0.5
    # best_dev stays the trained model's; the mix is scored on its own
    assert summary["best_dev"]["overall"] == pytest.approx(full_summary["best_dev"]["overall"])
    assert summary["wise_ft"]["dev"]["overall"] != summary["best_dev"]["overall"]


# ``python -m pipeline wise-ft-sweep``: other alphas scored from the saved model alone

def test_the_trained_weights_come_back_from_the_mix(runs):
    recovered = recover_trained(runs["half"][0], runs["step0"][0], 0.5)
    full = runs["full"][0]
    assert all(torch.allclose(recovered[k], full[k], atol=1e-6) for k in full)
    assert recover_trained(full, runs["step0"][0], None) == full
    with pytest.raises(UserError, match="alpha 0, which is the step-0 model"):
        recover_trained(runs["alpha0"][0], runs["step0"][0], 0.0)


def test_the_sweep_scores_each_alpha_as_a_run_trained_with_it_would(tokenized, runs):
    result = sweep(small_params(wise_ft_alpha=0.5), tokenized / "tok", tokenized / "mlm",
                   tokenized / "half", [0.0, 0.5, 1.0])
    by_alpha = {row["alpha"]: row["overall"] for row in result["rows"]}
    assert result["run_alpha"] == 0.5
    assert by_alpha[0.5] == pytest.approx(runs["half"][1]["wise_ft"]["dev"]["overall"], abs=1e-6)
    assert by_alpha[1.0] == pytest.approx(runs["full"][1]["best_dev"]["overall"], abs=1e-6)
    assert by_alpha[0.0] == pytest.approx(runs["step0"][1]["best_dev"]["overall"], abs=1e-6)
    table = sweep_table(result)
    assert table[0].startswith("| alpha | ") and "| 0.5 (saved) |" in table[3]
    assert len(table) == 2 + 3


def test_the_sweep_refuses_params_that_no_longer_describe_the_run(tokenized, runs):
    with pytest.raises(UserError, match="no longer describe the run"):
        # another seed rebuilds another step-0 model, so the recovered weights are wrong
        other_seed = parse_params(tiny_params_dict(
            **{**SMALL, "seed": 99, "train": {**SMALL["train"], "wise_ft_alpha": 0.5}}))
        sweep(other_seed, tokenized / "tok", tokenized / "mlm", tokenized / "half", [0.5])


@pytest.mark.parametrize("alphas, message", [([1.5], "alphas must be in"), ([], "alphas must")])
def test_the_sweep_refuses_alphas_outside_zero_to_one(tokenized, alphas, message):
    with pytest.raises(UserError, match=message):
        sweep(small_params(), tokenized / "tok", tokenized / "mlm", tokenized / "half", alphas)


def test_the_sweep_command_names_a_missing_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()))
    assert cli_main(["wise-ft-sweep", "--model", "nowhere"]) == 2
    assert "no trained model in nowhere" in capsys.readouterr().err
