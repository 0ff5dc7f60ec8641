"""MLM further pre-training: it learns (held-out perplexity drops), train loads what it wrote,
no dev/test sentence reaches its corpus, and masking follows the configured ratios."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from pipeline.config import SPLITS, MlmConfig, parse_params
from pipeline.data.prepare import prepare
from pipeline.errors import UserError
from pipeline.io import read_json, write_json
from pipeline.mlm.corpus import normalise, split_sentences
from pipeline.mlm.masking import collate, encode, make_masker
from pipeline.mlm.run import CORPUS_FILE, run_mlm
from pipeline.model.encoder import load_tokenizer
from pipeline.train.run import build_model
from tests.conftest import tiny_params_dict

MLM_ON = {"enabled": True, "epochs": 1, "lr": 1.0e-3, "batch_size": 32, "max_length": 48,
          "heldout_fraction": 0.1, "device": "cpu"}


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("mlm")
    params = parse_params(tiny_params_dict(mlm=MLM_ON))
    prepare(params, work / "prepared")
    out = work / "mlm"
    out.mkdir()
    manifest, metrics = run_mlm(params, work / "prepared", out, work / "live")
    write_json(out / "manifest.json", manifest)
    return params, work, manifest, metrics


@pytest.mark.slow  # the module's MLM run (~70 s on a busy core)
def test_heldout_perplexity_drops(mlm_run):
    _, work, _, metrics = mlm_run
    assert metrics["steps"] > 0
    assert metrics["heldout_perplexity_after"] < 0.8 * metrics["heldout_perplexity_before"]
    # DVCLive curve of the training loss, one point per log interval
    assert (work / "live" / "plots" / "metrics" / "train" / "loss.tsv").is_file()


@pytest.mark.slow  # the module's MLM run (~70 s on a busy core)
def test_train_loads_the_pretrained_encoder(mlm_run):
    params, work, manifest, _ = mlm_run
    written = load_file(str(work / "mlm" / manifest["weights_dir"] / "model.safetensors"))
    assert not any(k.startswith("cls.") for k in written)  # the encoder alone, no MLM head
    tuned = build_model(params, manifest, work / "mlm").encoder.state_dict()
    base = build_model(params, None).encoder.state_dict()
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(tuned[key], written[key])
    assert not torch.equal(tuned[key], base[key])
    assert sum(not torch.equal(tuned[k], base[k]) for k in base) > len(base) // 2


@pytest.mark.slow  # the module's MLM run (~70 s on a busy core)
def test_corpus_holds_no_dev_or_test_sentence(mlm_run):
    params, work, _, metrics = mlm_run
    used = pq.read_table(work / "mlm" / CORPUS_FILE).to_pydict()
    assert set(used["part"]) == {"train", "heldout"}
    corpus = {normalise(t) for t in used["text"]}
    held_out_text = {normalise(s) for task, cfg in params.tasks.items() for split in SPLITS
                     if split != "train"
                     for s in split_sentences(work / "prepared", task, cfg, split)}
    train_text = {normalise(s) for task, cfg in params.tasks.items()
                  for s in split_sentences(work / "prepared", task, cfg, "train")}
    assert corpus and not corpus & held_out_text
    assert corpus <= train_text
    # the synthetic generator repeats sentences across splits: the exclusion did real work
    assert metrics["excluded_dev_test_overlap"] == len(train_text & held_out_text) > 0


def test_disabled_writes_only_a_manifest(tmp_path):
    params = parse_params(tiny_params_dict())
    manifest, metrics = run_mlm(params, tmp_path / "absent", tmp_path, tmp_path / "live")
    assert manifest["weights_dir"] is None and metrics == {"enabled": False}
    assert list(tmp_path.iterdir()) == []


SENTENCES = [f"the quick brown fox number {i} jumps over the remarkably lazy dog again"
             for i in range(200)] + ["short one", "a b", "unbelievably multitudinous words"]


def _mask_stats(cfg: MlmConfig, batches: int = 60) -> dict[str, float]:
    tok = load_tokenizer(parse_params(tiny_params_dict()).encoder)
    enc = encode(tok, SENTENCES, 64, cfg.whole_word)
    masker = make_masker(tok, cfg, seed=0)
    pad, mask_id = tok.pad_token_id, tok.mask_token_id
    special_ids = set(tok.all_special_ids)
    counts = dict(eligible=0, masked=0, as_mask=0, kept=0, words=0, masked_words=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(batches):
        rows = torch.randperm(len(SENTENCES), generator=gen)[:32].tolist()
        batch = collate(enc, rows, pad, masker)
        originals = [enc.input_ids[i] for i in rows]
        for r, ids in enumerate(originals):
            labels = batch["labels"][r]
            inputs = batch["input_ids"][r]
            masked = labels != -100
            # special tokens and padding are never chosen
            assert not masked[len(ids):].any()
            for j, token in enumerate(ids):
                if token in special_ids:
                    assert not masked[j]
            assert (labels[masked] == torch.tensor(ids)[masked[:len(ids)]]).all()
            counts["eligible"] += sum(t not in special_ids for t in ids)
            counts["masked"] += int(masked.sum())
            counts["as_mask"] += int((inputs[masked] == mask_id).sum())
            counts["kept"] += int((inputs[masked] == labels[masked]).sum())
            if cfg.whole_word:
                word_ids = batch_word_ids(enc.offsets[rows[r]], enc.special[rows[r]])
                chosen = {w for j, w in enumerate(word_ids) if w >= 0 and masked[j]}
                # a word is masked whole or not at all
                for j, w in enumerate(word_ids):
                    if w in chosen:
                        assert masked[j]
                counts["words"] += len({w for w in word_ids if w >= 0})
                counts["masked_words"] += len(chosen)
    return {"masked": counts["masked"] / counts["eligible"],
            "as_mask": counts["as_mask"] / counts["masked"],
            "kept": counts["kept"] / counts["masked"],
            "masked_words": counts["masked_words"] / max(counts["words"], 1)}


def batch_word_ids(offsets: list[tuple[int, int]], special: list[int]) -> list[int]:
    """Word index of each token (-1 for special tokens): a new word starts at a gap."""
    out, word, prev_end = [], -1, None
    for (start, end), is_special in zip(offsets, special, strict=True):
        if is_special:
            out.append(-1)
            prev_end = None
            continue
        if prev_end is None or start != prev_end:
            word += 1
        out.append(word)
        prev_end = end
    return out


# Over ~60 batches x ~14 eligible tokens x 32 rows (~25k tokens, ~3.8k masked) the binomial
# standard error of each ratio is under 0.01; the tolerance is 0.02 (about 3 sigma).
TOLERANCE = 0.02


@pytest.mark.parametrize("ratios", [(0.15, 0.8, 0.1), (0.3, 0.5, 0.2)])
def test_masking_ratios_match_config(ratios):
    prob, as_mask, random = ratios
    stats = _mask_stats(MlmConfig(mask_prob=prob, mask_replace_prob=as_mask,
                                  random_replace_prob=random))
    assert abs(stats["masked"] - prob) < TOLERANCE
    assert abs(stats["as_mask"] - as_mask) < TOLERANCE
    # "kept" also catches the rare random replacement that draws the original token
    assert abs(stats["kept"] - (1 - as_mask - random)) < TOLERANCE + 0.005


def test_whole_word_masking_masks_words_whole():
    stats = _mask_stats(MlmConfig(whole_word=True, mask_prob=0.15))
    assert abs(stats["masked_words"] - 0.15) < TOLERANCE
    assert stats["as_mask"] == 1.0  # whole-word masking always uses [MASK]


def test_invalid_ratios_fail_fast():
    with pytest.raises(UserError, match="mask_replace_prob \\+ random_replace_prob"):
        parse_params(tiny_params_dict(mlm={"mask_replace_prob": 0.7, "random_replace_prob": 0.4}))


@pytest.mark.slow  # the module's MLM run (~70 s on a busy core)
def test_manifest_is_read_relative_to_the_mlm_folder(mlm_run, tmp_path):
    params, work, manifest, _ = mlm_run
    assert not Path(manifest["weights_dir"]).is_absolute()
    assert read_json(work / "mlm" / "manifest.json")["weights_dir"] == manifest["weights_dir"]


def test_masked_only_loss_equals_the_full_forward_loss():
    """The fast path (vocabulary projection on masked rows only) is the library's loss."""
    from pipeline.mlm.pretrain import load_mlm_model, masked_lm_loss

    params = parse_params(tiny_params_dict())
    model = load_mlm_model(params.encoder, 0).model.eval()
    tok = load_tokenizer(params.encoder)
    enc = encode(tok, SENTENCES[:40], 64, False)
    batch = collate(enc, list(range(40)), tok.pad_token_id, make_masker(tok, MlmConfig(), 0))
    with torch.no_grad():
        fast = masked_lm_loss(model, batch, torch.device("cpu"))
        full = model(**batch).loss
    assert torch.allclose(fast, full, atol=1e-5)


def test_the_disabled_stage_writes_its_manifest_without_torch(tmp_path):
    """MLM is off by default, so the stage must not pay torch's import on every repro: in a
    fresh interpreter the disabled path writes the manifest and loads neither library."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = ("import json, sys\nfrom pathlib import Path\n"
            "from pipeline.config import parse_params\nfrom pipeline.mlm.run import run_mlm\n"
            f"params = parse_params({tiny_params_dict()!r})\n"
            "manifest, metrics = run_mlm(params, Path('none'), Path('out'), Path('live'))\n"
            "loaded = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
            "print(json.dumps([manifest, metrics, loaded]))")
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    manifest, metrics, loaded = json.loads(out.splitlines()[-1])
    assert manifest == {"enabled": False, "encoder": "tiny-random", "revision": None,
                        "weights_dir": None}
    assert metrics == {"enabled": False} and loaded == []
