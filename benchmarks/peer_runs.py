"""The peers of ``benchmarks/peers.py``: what a CS224N user would run instead of this project.

- ``trainer-sst``, ``trainer-para``, ``trainer-sts``: Hugging Face ``transformers.Trainer``,
  one task each, on the default encoder's weights with a fresh sequence-classification head:
  SST-5 (one sentence, 5 labels), Quora and STS as cross-encoders (both sentences in one
  sequence; Quora 2 labels, STS one output regressed on label/5 with MSE).
- ``st-multi``: sentence-transformers' own multi-dataset trainer (``SentenceTransformerTrainer``
  with a dict of datasets and round-robin sampling): CoSENT on STS (label/5), in-batch
  negatives (MultipleNegativesRankingLoss) on the duplicate Quora pairs, and the library's
  BatchAllTripletLoss (default margin) on (sentence, label) of SST-5.

Every peer trains for a budget of training seconds. Its learning rate follows the usual linear
schedule with warmup over 0.1 of the *planned* steps, where the plan is the steps that fit in
the budget at the speed measured so far (:class:`BudgetPlan`), because a wall budget, not an
epoch count, is what is compared. Dev is scored on a fixed subset every ``eval_every`` steps
by :class:`DevClock`, whose clock stops while it scores.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.stats import pearsonr
from transformers import TrainerCallback

Scores = dict[str, float]
Scorer = Callable[[Any, str], Scores]  # (model, "subset" | "full") -> task -> score

WARMUP_RATIO = 0.1
CALIBRATION_STEPS = 10  # steps timed before the plan trusts its speed estimate
GUESS_STEPS_PER_S = 2.0  # the plan before any step was timed (measured minilm-l6, 2 cores)


@dataclass
class BudgetPlan:
    """A linear warmup-then-decay learning-rate factor over the steps the budget allows.

    ``total`` starts as ``max_steps`` (or a guess from ``budget_s``) and, after the first
    ``CALIBRATION_STEPS``, is re-estimated at every step as the steps done plus the remaining
    budget at the measured speed (never beyond ``max_steps``), so the decay reaches zero about
    when the budget ends."""

    budget_s: float
    max_steps: int | None = None
    total: float = 0.0

    def __post_init__(self) -> None:
        guess = self.budget_s * GUESS_STEPS_PER_S
        self.total = float(min(self.max_steps, guess) if self.max_steps else guess)

    def update(self, step: int, train_seconds: float) -> None:
        if step < CALIBRATION_STEPS or train_seconds <= 0:
            return
        rate = step / train_seconds
        total = step + max(self.budget_s - train_seconds, 0.0) * rate
        if self.max_steps:
            total = min(total, self.max_steps)
        self.total = max(total, float(step))

    def factor(self, step: int) -> float:
        """The learning-rate multiplier at ``step`` (as ``get_linear_schedule_with_warmup``)."""
        warmup = max(1.0, WARMUP_RATIO * self.total)
        if step < warmup:
            return step / warmup
        return max(0.0, (self.total - step) / max(1.0, self.total - warmup))


class BudgetScheduleMixin:
    """A Trainer whose scheduler follows a :class:`BudgetPlan` (set ``plan`` before train)."""

    plan: BudgetPlan

    def create_scheduler(self, num_training_steps: int,
                         optimizer: torch.optim.Optimizer | None = None) -> Any:
        if self.lr_scheduler is None:  # type: ignore[has-type]
            opt = optimizer or self.optimizer  # type: ignore[attr-defined]
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(opt, self.plan.factor)
            self._created_lr_scheduler = True
        return self.lr_scheduler


@dataclass
class DevClock(TrainerCallback):
    """Sums the training loop's seconds (dev scoring excluded), scores dev every
    ``eval_every`` steps and at the end, and stops training when the budget is spent.

    A step's seconds run from the end of the previous step (after any scoring) to the end
    of this one, so fetching and collating its batch count, as in the project's own curve."""

    scorer: Scorer
    plan: BudgetPlan
    eval_every: int
    log: Callable[[str], None] = print
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time over the same spans (all threads)
    curve: list[dict[str, Any]] = field(default_factory=list)
    _mark: float = 0.0
    _cpu_mark: float = 0.0

    def _score(self, model: Any, step: int) -> None:
        model.eval()
        with torch.inference_mode():
            dev = self.scorer(model, "subset")
        model.train()
        self.curve.append({"step": step, "train_seconds": round(self.train_seconds, 2),
                           "cpu_seconds": round(self.cpu_seconds, 2),
                           "dev": {t: round(v, 4) for t, v in dev.items()}})
        self.log(f"  step {step:>6}  {self.train_seconds:8.1f} s  "
                 + "  ".join(f"{t} {v:.4f}" for t, v in dev.items()))

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._score(kw["model"], 0)
        self._restart()

    def _restart(self) -> None:
        self._mark, self._cpu_mark = time.perf_counter(), time.process_time()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        self.train_seconds += time.perf_counter() - self._mark
        self.cpu_seconds += time.process_time() - self._cpu_mark
        step = state.global_step
        self.plan.update(step, self.train_seconds)
        done = (self.train_seconds >= self.plan.budget_s
                or (self.plan.max_steps is not None and step >= self.plan.max_steps))
        if done or step % self.eval_every == 0:
            self._score(kw["model"], step)
        if done:
            control.should_training_stop = True
        self._restart()
        return control


@dataclass
class PeerSettings:
    """What every peer shares (CLI arguments of peers.py)."""

    model_path: str
    budget_s: float
    max_steps: int | None
    eval_every: int
    lr: float
    batch_size: int
    max_length: int
    seed: int


def trainer_args(s: PeerSettings, out: str, cls: Any = None, **extra: Any) -> Any:
    """TrainingArguments shared by the peers: no saving, logging, reporting or hub access;
    ``max_steps`` only bounds the loop, the budget and the plan end it."""
    from transformers import TrainingArguments

    cls = cls or TrainingArguments
    return cls(output_dir=out, per_device_train_batch_size=s.batch_size, learning_rate=s.lr,
               max_steps=s.max_steps or 10**7, seed=s.seed, data_seed=s.seed,
               save_strategy="no", eval_strategy="no", logging_strategy="no",
               report_to="none", disable_tqdm=True, dataloader_num_workers=0,
               dataloader_pin_memory=torch.cuda.is_available(), **extra)


def peer_config(s: PeerSettings, **extra: Any) -> dict[str, Any]:
    return {"lr": s.lr, "batch_size": s.batch_size, "max_length": s.max_length,
            "precision": "fp32", "schedule": f"linear, warmup {WARMUP_RATIO} of planned steps",
            "budget_s": s.budget_s, "max_steps": s.max_steps, "eval_every": s.eval_every,
            "seed": s.seed, **extra}


def accuracy(gold: np.ndarray, pred: np.ndarray) -> float:
    return float((np.asarray(gold) == np.asarray(pred)).mean())


def pearson(gold: np.ndarray, pred: np.ndarray) -> float:
    r = pearsonr(np.asarray(gold, dtype=float), np.asarray(pred, dtype=float))[0]
    return 0.0 if math.isnan(r) else float(r)


def _fit_clock(trainer: Any, clock: DevClock, plan: BudgetPlan, scorer: Scorer,
               started: float) -> dict[str, Any]:
    """Train, then score the full dev split (or the subset, as peers.py asks)."""
    trainer.plan = plan
    trainer.train()
    model = trainer.model
    model.eval()
    with torch.inference_mode():
        final = scorer(model, "full")
    return {"curve": clock.curve, "train_seconds": round(clock.train_seconds, 1),
            "cpu_seconds": round(clock.cpu_seconds, 1),
            "steps": clock.curve[-1]["step"] if clock.curve else 0,
            "final": {"dev": {t: round(v, 4) for t, v in final.items()}},
            "wall_seconds": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------- HF Trainer peers


def cross_scorer(tok: Any, dev: dict[str, dict[str, Any]], task: str, regression: bool,
                 max_length: int, batch: int = 128) -> Scorer:
    """Dev score of a sequence-classification model on ``dev[which]`` (``subset``/``full``),
    each a dict with ``a``, ``b`` (or None) and ``label``."""

    def score(model: Any, which: str) -> Scores:
        d = dev[which]
        order = np.argsort([len(x) for x in d["a"]], kind="stable")  # less padding
        out = np.empty(len(order), dtype=float)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            enc = tok([d["a"][j] for j in idx],
                      None if d["b"] is None else [d["b"][j] for j in idx],
                      truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            logits = model(**{k: v.to(model.device) for k, v in enc.items()}).logits
            out[idx] = (logits[:, 0] if regression else logits.argmax(-1)).float().cpu().numpy()
        gold = np.asarray(d["label"], dtype=float)
        return {task: pearson(gold, out) if regression else accuracy(gold, out)}

    return score


def run_trainer_peer(s: PeerSettings, task: str, train: dict[str, Any],
                     dev: dict[str, dict[str, Any]], num_labels: int,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """One HF Trainer single-task run (``num_labels`` 1: regression on label/5)."""
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
    )

    class BudgetTrainer(BudgetScheduleMixin, Trainer):
        pass

    started = time.perf_counter()
    regression = num_labels == 1
    tok = AutoTokenizer.from_pretrained(s.model_path, local_files_only=True)
    torch.manual_seed(s.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        s.model_path, num_labels=num_labels, local_files_only=True,
        problem_type="regression" if regression else "single_label_classification")
    enc = tok(train["a"], train["b"], truncation=True, max_length=s.max_length)
    labels = ([float(y) / 5.0 for y in train["label"]] if regression
              else [int(y) for y in train["label"]])
    data = Dataset.from_dict({**{k: list(v) for k, v in enc.items()}, "labels": labels})
    plan = BudgetPlan(s.budget_s, s.max_steps)
    scorer = cross_scorer(tok, dev, task, regression, s.max_length)
    clock = DevClock(scorer, plan, s.eval_every, log)
    with tempfile.TemporaryDirectory(prefix="peer-") as out:
        trainer = BudgetTrainer(model=model, args=trainer_args(s, out), train_dataset=data,
                                data_collator=DataCollatorWithPadding(tok), callbacks=[clock])
        result = _fit_clock(trainer, clock, plan, scorer, started)
    what = "single sentence" if train["b"] is None else "cross-encoder (pair in one sequence)"
    what += ", one output regressed on label/5 (MSE)" if regression else ""
    result["config"] = peer_config(s, trainer="transformers.Trainer",
                                   model="AutoModelForSequenceClassification",
                                   num_labels=num_labels, input=what,
                                   train_rows=len(labels), weight_decay=0.0)
    return result


# ------------------------------------------------------- sentence-transformers peer


@dataclass
class ProbeSamples:
    """Seeded train samples the embedding scorers fit their probes on (not trained on)."""

    sst: dict[str, Any] | None  # a, label
    para: dict[str, Any] | None  # a, b, label


def _embed(model: Any, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=128, convert_to_numpy=True, show_progress_bar=False)


def _pair_cosine(model: Any, a: list[str], b: list[str]) -> np.ndarray:
    from pipeline.model.head_init import cosine

    return cosine(_embed(model, a), _embed(model, b)).astype(np.float64)


def embedding_scorer(dev: dict[str, dict[str, dict[str, Any]]], probes: ProbeSamples) -> Scorer:
    """Scores of a sentence embedder by the project's zero-shot protocol
    (``pipeline/model/head_init.py``): sts = Pearson r of the cosine; para = accuracy of a
    one-feature logistic regression on the cosine, fitted on ``probes.para``; sst = accuracy of
    the project's regularised linear probe (one-scale standardised embeddings, ``PROBE_C``),
    fitted on ``probes.sst``."""
    from sklearn.linear_model import LogisticRegression

    from pipeline.model.head_init import PROBE_C, PROBE_TOL, standardiser

    def score(model: Any, which: str) -> Scores:
        out: Scores = {}
        if "sts" in dev:
            d = dev["sts"][which]
            out["sts"] = pearson(d["label"], _pair_cosine(model, d["a"], d["b"]))
        if "para" in dev and probes.para is not None:
            p = probes.para
            lr = LogisticRegression(C=1e4, max_iter=1000).fit(
                _pair_cosine(model, p["a"], p["b"])[:, None], np.asarray(p["label"], int))
            d = dev["para"][which]
            out["para"] = accuracy(d["label"], lr.predict(
                _pair_cosine(model, d["a"], d["b"])[:, None]))
        if "sst" in dev and probes.sst is not None:
            x = _embed(model, probes.sst["a"]).astype(np.float64)
            mean, scale = standardiser(x)
            lr = LogisticRegression(C=PROBE_C, tol=PROBE_TOL, max_iter=5000).fit(
                (x - mean) / scale, np.asarray(probes.sst["label"], int))
            d = dev["sst"][which]
            xd = (_embed(model, d["a"]).astype(np.float64) - mean) / scale
            out["sst"] = accuracy(d["label"], lr.predict(xd))
        return out

    return score


def st_datasets(train: dict[str, dict[str, Any]], use_sst: bool) -> dict[str, Any]:
    """The dict of datasets: sts (sentence1, sentence2, score = label/5), para (anchor,
    positive: the duplicate pairs only, for in-batch negatives), sst (sentence, label)."""
    from datasets import Dataset

    sets = {}
    if "sts" in train:
        t = train["sts"]
        sets["sts"] = Dataset.from_dict({"sentence1": t["a"], "sentence2": t["b"],
                                         "score": [float(y) / 5.0 for y in t["label"]]})
    if "para" in train:
        t = train["para"]
        dup = [i for i, y in enumerate(t["label"]) if int(y) == 1]
        sets["para"] = Dataset.from_dict({"anchor": [t["a"][i] for i in dup],
                                          "positive": [t["b"][i] for i in dup]})
    if use_sst and "sst" in train:
        t = train["sst"]
        sets["sst"] = Dataset.from_dict({"sentence": t["a"],
                                         "label": [int(y) for y in t["label"]]})
    return sets


def run_st_peer(s: PeerSettings, train: dict[str, dict[str, Any]],
                dev: dict[str, dict[str, dict[str, Any]]], probes: ProbeSamples,
                use_sst: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    """SentenceTransformerTrainer on a dict of datasets, round-robin (see the module doc)."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import (
        BatchAllTripletLoss,
        CoSENTLoss,
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.training_args import (
        MultiDatasetBatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    class BudgetSTTrainer(BudgetScheduleMixin, SentenceTransformerTrainer):
        pass

    started = time.perf_counter()
    torch.manual_seed(s.seed)
    model = SentenceTransformer(s.model_path, device="cuda" if torch.cuda.is_available()
                                else "cpu", local_files_only=True)
    model.max_seq_length = s.max_length
    sets = st_datasets(train, use_sst)
    losses = {"sts": CoSENTLoss(model), "para": MultipleNegativesRankingLoss(model),
              "sst": BatchAllTripletLoss(model)}
    plan = BudgetPlan(s.budget_s, s.max_steps)
    scorer = embedding_scorer(dev, probes)
    clock = DevClock(scorer, plan, s.eval_every, log)
    with tempfile.TemporaryDirectory(prefix="peer-") as out:
        args = trainer_args(s, out, SentenceTransformerTrainingArguments,
                            multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN)
        trainer = BudgetSTTrainer(model=model, args=args, train_dataset=sets,
                                  loss={k: losses[k] for k in sets}, callbacks=[clock])
        result = _fit_clock(trainer, clock, plan, scorer, started)
    result["config"] = peer_config(
        s, trainer="sentence_transformers.SentenceTransformerTrainer",
        multi_dataset_batch_sampler="round_robin",
        losses={"sts": "CoSENTLoss on label/5", "para": "MultipleNegativesRankingLoss on "
                "duplicate pairs (in-batch negatives)",
                **({"sst": "BatchAllTripletLoss (library defaults) on (sentence, label)"}
                   if "sst" in sets else {})},
        train_rows={k: len(v) for k, v in sets.items()},
        scoring="sts: Pearson r of cosine; para: one-feature logistic regression on cosine "
                "fitted on a seeded train sample; sst: the project's linear probe "
                "(pipeline/model/head_init.py) on embeddings, fitted on a seeded train sample",
        probe_rows={k: len(v["label"]) for k, v in (("sst", probes.sst), ("para", probes.para))
                    if v is not None})
    return result
