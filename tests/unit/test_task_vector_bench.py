"""benchmarks/task_vector.py's weight arithmetic and sts_loss's prepared-table reader."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from benchmarks.sts_loss import read_sts
from benchmarks.task_vector import add_vector, encoder_task_vector


def _weights(**named: list[float]) -> dict[str, torch.Tensor]:
    return {k.replace("__", "."): torch.tensor(v) for k, v in named.items()}


def test_the_task_vector_is_finetuned_minus_pretrained_on_the_encoder_only() -> None:
    pretrained = _weights(encoder__layer__w=[1.0, 2.0], heads__sts__scale=[5.0],
                          encoder__adapter__w=[0.0])
    finetuned = {"layer.w": torch.tensor([1.5, 1.0]), "pooler.w": torch.tensor([9.0])}
    tau = encoder_task_vector(finetuned, pretrained)
    # heads and encoder weights the fine-tune lacks (an adapter) get no vector; weights only
    # the fine-tune has (its pooler) are not the pipeline's
    assert set(tau) == {"encoder.layer.w"}
    assert torch.equal(tau["encoder.layer.w"], torch.tensor([0.5, -1.0]))


def test_adding_the_vector_scales_it_and_leaves_other_weights_alone() -> None:
    saved = _weights(encoder__layer__w=[2.0, 2.0], heads__sts__scale=[5.0])
    tau = {"encoder.layer.w": torch.tensor([0.5, -1.0])}
    edited = add_vector(saved, tau, 0.5)
    assert torch.equal(edited["encoder.layer.w"], torch.tensor([2.25, 1.5]))
    assert edited["heads.sts.scale"] is saved["heads.sts.scale"]
    assert torch.equal(add_vector(saved, tau, 0.0)["encoder.layer.w"], saved["encoder.layer.w"])


def test_a_soup_adds_the_task_vector_minus_the_multitask_one() -> None:
    pretrained = _weights(encoder__w=[1.0, -1.0])
    saved = _weights(encoder__w=[2.0, 4.0])
    finetuned = {"w": torch.tensor([4.0, 0.0])}
    tau = encoder_task_vector(finetuned, pretrained)
    towards_tuned = {"encoder.w": tau["encoder.w"] - (saved["encoder.w"] - pretrained["encoder.w"])}
    soup = add_vector(saved, towards_tuned, 0.25)
    assert torch.allclose(soup["encoder.w"], 0.75 * saved["encoder.w"] + 0.25 * finetuned["w"])


def test_a_different_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="not the same encoder"):
        encoder_task_vector({"w": torch.zeros(3)}, {"encoder.w": torch.zeros(2)})
    with pytest.raises(ValueError, match="shares no weight"):
        encoder_task_vector({"x": torch.zeros(2)}, {"encoder.w": torch.zeros(2)})


def test_sts_rows_come_from_a_prepared_table_as_from_the_csv(tmp_path: Path) -> None:
    table = pa.table({"id": ["a", "b"], "text_a": ["one", "two"], "text_b": ["uno", "dos"],
                      "label": [4.5, 1.0]})
    pq.write_table(table, tmp_path / "train.parquet")
    (tmp_path / "sts.csv").write_text("id\tsentence1\tsentence2\tsimilarity\n"
                                      "a\tone\tuno\t4.5\nb\ttwo\tdos\t1.0\n")
    expected = [("one", "uno", 4.5), ("two", "dos", 1.0)]
    assert read_sts(tmp_path / "train.parquet") == expected
    assert read_sts(tmp_path / "sts.csv") == expected
