from pipeline.config import TaskConfig
from pipeline.data.cs224n import read_task_file
from pipeline.data.synthetic import write_synthetic_dataset

SIZES = {"train": 50, "dev": 20, "test": 10}
CFG = {"sst": TaskConfig(type="classification", num_labels=5, pair=False),
       "cfimdb": TaskConfig(type="classification", num_labels=2, pair=False),
       "para": TaskConfig(type="classification", num_labels=2, pair=True),
       "sts": TaskConfig(type="regression", pair=True)}


def _bytes(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    write_synthetic_dataset(tmp_path / "a", list(CFG), SIZES, seed=1)
    write_synthetic_dataset(tmp_path / "b", list(CFG), SIZES, seed=1)
    write_synthetic_dataset(tmp_path / "c", list(CFG), SIZES, seed=2)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert _bytes(tmp_path / "a") != _bytes(tmp_path / "c")


def test_files_use_the_cs224n_layouts_and_read_back_cleanly(tmp_path):
    files = write_synthetic_dataset(tmp_path, list(CFG), SIZES, seed=3)
    assert (tmp_path / "ids-sst-test-student.csv").read_text().startswith("0\t\tid\tsentence\n")
    assert (tmp_path / "quora-dev.csv").read_text().startswith(
        "\tid\tsentence1\tsentence2\tis_duplicate\n")
    for task, splits in files.items():
        for split, names in splits.items():
            res = read_task_file(tmp_path / names[0], task=task, cfg=CFG[task], split=split)
            assert res.report.kept == SIZES[split] and not res.rejected and not res.recovered
            ids = [r["id"] for r in res.rows]
            assert all(len(i) == 25 and int(i, 16) >= 0 for i in ids)
            if split != "test":
                labels = {r["label"] for r in res.rows}
                assert len(labels) > 1


def test_labels_follow_from_the_words(tmp_path):
    """sst: the sentiment words fix the class (what makes the data learnable)."""
    from pipeline.data.synthetic import SENTIMENT_WORDS

    write_synthetic_dataset(tmp_path, ["sst"], {"train": 200}, seed=5)
    res = read_task_file(tmp_path / "ids-sst-train.csv", task="sst", cfg=CFG["sst"],
                         split="train")
    for r in res.rows:
        words = set(str(r["text_a"]).split())
        levels = {i for i, ws in enumerate(SENTIMENT_WORDS) if words & set(ws)}
        assert levels == {int(r["label"])}
