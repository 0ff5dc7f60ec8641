import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import parse_params
from pipeline.data.prepare import prepare
from pipeline.data.tokenize import tokenize_all
from pipeline.model.encoder import load_tokenizer
from pipeline.model.stage_tokenizer import load_stage_tokenizer
from tests.conftest import tiny_params_dict


def _run(tmp_path, name):
    params = parse_params(tiny_params_dict(data={"synthetic": {"train_size": 40, "dev_size": 20,
                                                                "test_size": 10}}))
    prepare(params, tmp_path / "prepared")
    tokenize_all(tmp_path / "prepared", tmp_path / name, params.tasks,
                 load_stage_tokenizer(params.encoder), params.tokenize, params.encoder.name)
    return params


def test_tokenized_output_is_byte_identical_on_rerun(tmp_path):
    _run(tmp_path, "tok1")
    _run(tmp_path, "tok2")
    files1 = sorted(p.relative_to(tmp_path / "tok1") for p in (tmp_path / "tok1").rglob("*.*"))
    files2 = sorted(p.relative_to(tmp_path / "tok2") for p in (tmp_path / "tok2").rglob("*.*"))
    assert files1 == files2 and len(files1) == 13  # 4 tasks x 3 splits + meta.json
    for f in files1:
        assert (tmp_path / "tok1" / f).read_bytes() == (tmp_path / "tok2" / f).read_bytes()


def test_columns_follow_the_contract(tmp_path):
    params = _run(tmp_path, "tok")
    tok = load_tokenizer(params.encoder)  # the reference: transformers' own call
    single = pq.read_table(tmp_path / "tok" / "sst" / "train.parquet")
    assert {"id", "label", "input_ids", "attention_mask", "length"} <= set(single.column_names)
    assert single.schema.field("input_ids").type.value_type == pa.int32()
    pair = pq.read_table(tmp_path / "tok" / "para" / "dev.parquet")
    for c in ("input_ids", "token_type_ids", "a_input_ids", "b_input_ids", "a_attention_mask"):
        assert c in pair.column_names
    row = pair.slice(0, 1).to_pylist()[0]
    prep = pq.read_table(tmp_path / "prepared" / "para" / "dev.parquet").slice(0, 1).to_pylist()[0]
    assert row["input_ids"] == tok(prep["text_a"], prep["text_b"])["input_ids"]
    assert row["a_input_ids"] == tok(prep["text_a"])["input_ids"]
    assert row["length"] == len(row["input_ids"]) == sum(row["attention_mask"])
    test = pq.read_table(tmp_path / "tok" / "sst" / "test.parquet")
    assert test.column("label").null_count == test.num_rows
