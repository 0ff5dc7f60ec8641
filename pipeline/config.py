"""Typed params: one pydantic model per ``params.yaml`` section; unknown keys are rejected.

Library code receives these objects (never the raw YAML). Names that select an implementation
(sampler, pooling, head, ...) are checked against ``pipeline.names`` (no torch: validating
params never imports a model), and the error lists the valid choices, so a typo in
``dvc exp run -S sampler=anel`` fails before any work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline import names
from pipeline.errors import UserError

SPLITS = ("train", "dev", "test")
Split = Literal["train", "dev", "test"]


def _check_choice(kind: str, value: str, valid: Iterable[str]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {kind} '{value}'; valid choices: {', '.join(sorted(valid))}")
    return value


def registered(kind: str, valid: Iterable[str]) -> Any:
    """A str type whose value must be one of ``valid`` (from the torch-free
    ``pipeline.names``); the error lists the valid names."""
    return Annotated[str, AfterValidator(lambda value: _check_choice(kind, value, valid))]


PoolingName = registered("pooling", names.POOLINGS)
HeadName = registered("head", names.HEADS)
# A registered head or ``auto`` (cosine where it fits the task, else sbert).
PairHeadName = registered("head", names.PAIR_HEADS)
AdapterName = registered("adapter", names.ADAPTERS)
ScheduleName = registered("schedule", names.SCHEDULES)
PrecisionName = registered("precision", names.PRECISION_CHOICES)
CombineName = registered("loss combination", names.COMBINERS)
SamplerName = registered("sampler", names.SAMPLERS)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(Strict):
    """One task. Built-in tasks (sst, para, sts, cfimdb) know their CS224N file names;
    a user task names its files (relative to ``data.dir`` or absolute)."""

    type: Literal["classification", "regression"]
    pair: bool
    num_labels: int | None = Field(default=None, ge=2)
    min_label: float = 0.0
    max_label: float = 5.0
    head: HeadName | None = None
    # Pair tasks only: siamese | cross (null: model.pair_encoding).
    encoding: Literal["siamese", "cross"] | None = None
    # Dropout on this task's adapter branch (null: model.adapter_dropout).
    adapter_dropout: float | None = Field(default=None, ge=0.0, lt=1.0)
    # Whether this task's score counts in `overall` (the CS224N leaderboard averages sst, para
    # and sts; cfimdb is an extra task).
    in_overall: bool = True
    # false: the task is left out of every stage (an ablation can drop it with -S).
    enabled: bool = True
    # Per split, file names relative to data.dir (or absolute); a split left out keeps the
    # built-in names; a name ending in "?" is optional (skipped, and recorded, when missing).
    files: dict[Split, list[str]] | None = None
    label_column: str | None = None

    @model_validator(mode="after")
    def _labels(self) -> TaskConfig:
        if self.type == "classification" and self.num_labels is None:
            raise ValueError("a classification task needs num_labels (>= 2)")
        if self.type == "regression" and not self.min_label < self.max_label:
            raise ValueError("a regression task needs min_label < max_label")
        return self

    @property
    def output_size(self) -> int:
        return self.num_labels if self.type == "classification" else 1


def overall_tasks(tasks: Mapping[str, TaskConfig]) -> set[str]:
    """The tasks whose scores make up ``overall`` (``in_overall``)."""
    return {name for name, cfg in tasks.items() if cfg.in_overall}


class SyntheticConfig(Strict):
    train_size: int = Field(default=800, ge=10)
    dev_size: int = Field(default=200, ge=10)
    test_size: int = Field(default=200, ge=1)


class DataConfig(Strict):
    source: Literal["synthetic", "cs224n"] = "synthetic"
    dir: str | None = None
    max_train_examples_per_task: int | None = Field(default=None, ge=1)
    max_dev_examples_per_task: int | None = Field(default=None, ge=1)
    strict: bool = False
    # Train rows whose text (a sentence, or a pair in either order; normalised) also occurs in
    # the task's dev or test split are dropped, so dev scores measure unseen examples.
    drop_eval_overlap: bool = True
    # Repeated train rows (same normalised text) are dropped after the first.
    dedupe_train: bool = True
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _dir_given(self) -> DataConfig:
        if self.source == "cs224n" and not self.dir:
            raise ValueError("data.source=cs224n needs data.dir (the folder with the CS224N files)")
        return self


class TokenizeConfig(Strict):
    max_length: int = Field(default=128, ge=8, le=512)
    batch_size: int = Field(default=2000, ge=1)
    # Batched tokenizer calls use every core (the Rust thread pool); false: one core.
    parallel: bool = True


class EncoderConfig(Strict):
    name: str = "minilm-l6"
    revision: str | None = None
    # Encoders allowed to run Python code from their own repository (Hugging Face
    # ``trust_remote_code``). Off for every model unless its name is listed here, so switching
    # ``encoder.name`` never silently carries the trust over to another model.
    trust_remote_code: list[str] = []

    @field_validator("trust_remote_code", mode="before")
    @classmethod
    def _named_models_only(cls, v: Any) -> Any:
        if v is False or v is None:
            return []
        if v is True:
            raise ValueError("trust_remote_code must name the models it trusts, e.g. "
                             "[org/model]; true for every model is not allowed")
        return v

    @property
    def trusts_remote_code(self) -> bool:
        """Whether the selected encoder may run code from its repository."""
        return self.name in self.trust_remote_code


class MlmConfig(Strict):
    """Masked-LM further pre-training of the shared encoder on the train splits' text."""

    enabled: bool = False
    mask_prob: float = Field(default=0.15, gt=0.0, lt=1.0)  # share of tokens (or words) masked
    mask_replace_prob: float = Field(default=0.8, ge=0.0, le=1.0)  # of those: [MASK]
    random_replace_prob: float = Field(default=0.1, ge=0.0, le=1.0)  # a random token; rest kept
    whole_word: bool = False  # mask every piece of a chosen word ([MASK] only, as in BERT-wwm)
    epochs: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)  # stop earlier than `epochs` allow
    lr: float = Field(default=5e-5, gt=0)
    batch_size: int = Field(default=32, ge=1)
    warmup_ratio: float = Field(default=0.06, ge=0, le=1)
    weight_decay: float = Field(default=0.01, ge=0)
    max_length: int = Field(default=128, ge=8)
    heldout_fraction: float = Field(default=0.05, gt=0.0, lt=1.0)
    max_heldout_sentences: int = Field(default=2000, ge=1)
    log_every: int = Field(default=10, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _ratios(self) -> MlmConfig:
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError("mask_replace_prob + random_replace_prob must be at most 1 (the "
                             "rest of the masked tokens are kept unchanged)")
        return self


class ModelConfig(Strict):
    pooling: PoolingName = "mean"
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    pair_encoding: Literal["siamese", "cross"] = "siamese"
    single_head: HeadName = "linear"  # single sentences and cross-encoded pairs
    pair_head: PairHeadName = "auto"  # siamese pairs (auto: cosine where it fits, else sbert)
    mlp_hidden: int = Field(default=256, ge=1)
    adapter: AdapterName = "none"
    pal_size: int | None = Field(default=None, ge=1)
    adapter_rank: int = Field(default=8, ge=1)
    lora_alpha: float = Field(default=16.0, gt=0)
    # Attention projections LoRA adapts (the SMARTer report adapted query and key only).
    lora_targets: list[Literal["query", "key", "value"]] = Field(
        default=["query", "key", "value"], min_length=1)
    adapter_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    freeze: Literal["full", "frozen", "two_stage"] = "full"
    two_stage_epochs: int = Field(default=1, ge=1)
    # zero_shot: before the first step, fit the heads that have a fit on frozen features
    # (cosine: scale/shift; linear: a logistic-regression probe) to the train split, so step 0
    # predicts the untrained encoder's zero-shot scores (pipeline/model/head_init.py).
    head_init: Literal["zero_shot", "random"] = "zero_shot"
    head_init_rows: int = Field(default=2000, ge=10)  # train rows per task for that fit


    @field_validator("lora_targets")
    @classmethod
    def _distinct_targets(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"lora_targets lists a projection twice: {v}")
        return v


class TrainConfig(Strict):
    # 0: no training step; dev is scored on the initial model (the zero-shot reference).
    epochs: int = Field(default=3, ge=0)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    batches_per_epoch: int | None = Field(default=None, ge=1)
    sampler_temperature: float = Field(default=2.0, gt=0)
    sampler_cap: int = Field(default=3, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(default=None, ge=1)
    head_lr: float | None = Field(default=None, gt=0)  # heads and adapters (null: lr)
    # Layer-wise lr decay (Sun et al. 2019): encoder layer l at lr * decay ** (L - l), the
    # embeddings at lr * decay ** L; 1: one rate for the whole encoder.
    layer_lr_decay: float = Field(default=1.0, gt=0, le=1)
    log_every: int = Field(default=10, ge=1)
    eval_batch_size: int = Field(default=128, ge=1)
    # Per-task batch size overriding batch_size, e.g. {para: 64}.
    task_batch_size: dict[str, int] = {}
    # Per task, a factor on the encoder's lr on the optimizer steps that draw that task
    # (loss.combine sampled only), e.g. {sst: 2.0}; heads keep head_lr. Missing: 1.
    task_encoder_lr_scale: dict[str, float] = {}
    # Per task, a factor on the sampler's share of steps for that task, the shares then
    # renormalised (loss.combine sampled; not round_robin), e.g. {sst: 0.5}. Missing: 1.
    task_sampling_weight: dict[str, float] = {}
    schedule: ScheduleName = "linear"
    lr_decay: float = Field(default=0.5, gt=0, le=1)  # exponential schedule: factor per epoch
    grad_accum_steps: int = Field(default=1, ge=1)
    precision: PrecisionName = "auto"
    early_stopping_patience: int | None = Field(default=None, ge=1)
    checkpoint_every: int | None = Field(default=None, ge=1)  # optimizer steps; null: epoch ends
    resume: Literal["auto", "never"] = "auto"
    devices: int = Field(default=1, ge=1)  # >1: DDP processes (spawned unless under torchrun)
    # CUDA: deterministic kernels (cuDNN/cuBLAS; slower). CPU runs are always deterministic.
    deterministic: bool = True
    # Batches of rows of similar length (shuffled within pools of 50 batches, batch order
    # shuffled), so each batch pads little; the sampler's task proportions are unchanged.
    length_bucketing: bool = True
    # torch.compile the encoder (dynamic shapes); pays a compile time up front.
    compile: bool = False
    # WiSE-FT (pipeline/train/wise_ft.py): the saved weights are alpha * trained + (1 - alpha)
    # * the step-0 model. null: off (the trained weights as they are).
    wise_ft_alpha: float | None = Field(default=None, ge=0, le=1)
    # Checkpoint averaging (pipeline/train/averaging.py): the trained weights are the mean of
    # the weights at the ends of the last k epochs, not the best epoch's (WiSE-FT then mixes
    # that mean with the step-0 model). null: off.
    average_last_epochs: int | None = Field(default=None, ge=1)
    # How many evenly spaced points of each averaged epoch join that mean, the last at the
    # epoch's end (1: the epoch end only; 4: after every quarter of the epoch's steps). Above
    # 1, the summary also scores the epoch ends' own mean (average.epoch_ends), paired.
    average_points_per_epoch: int = Field(default=1, ge=1)

    @field_validator("task_batch_size")
    @classmethod
    def _task_batch_size(cls, v: dict[str, int]) -> dict[str, int]:
        for t, n in v.items():
            if n < 1:
                raise ValueError(f"batch size of task '{t}' must be >= 1 (got {n})")
        return v

    @field_validator("task_encoder_lr_scale")
    @classmethod
    def _task_encoder_lr_scale(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {t: f for t, f in v.items() if not f > 0}
        if bad:
            raise ValueError(f"encoder lr factors must be > 0 (1: the encoder's own lr); got {bad}")
        return v

    @field_validator("task_sampling_weight")
    @classmethod
    def _task_sampling_weight(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {t: w for t, w in v.items() if not w > 0}
        if bad:
            raise ValueError(f"task sampling weights must be > 0 (1: the sampler's own share; "
                             f"disable a task with tasks.<name>.enabled=false); got {bad}")
        return v

    @model_validator(mode="after")
    def _fp16_needs_cuda(self) -> TrainConfig:
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("precision fp16 needs CUDA (GradScaler); use bf16 or fp32 on CPU")
        return self

    def batch_size_of(self, task: str) -> int:
        return self.task_batch_size.get(task, self.batch_size)


class SmartConfig(Strict):
    """SMART (Jiang et al., 2020); defaults follow the paper's settings."""

    enabled: bool = False
    eps: float = Field(default=1e-5, ge=0)  # radius of the embedding perturbation (inf-norm)
    step_size: float = Field(default=1e-3, ge=0)  # one normalised ascent step
    lambda_s: float = Field(default=1.0, ge=0)  # weight of the smoothness term
    mu: float = Field(default=1.0, ge=0)  # weight of the Bregman proximal term (0: no teacher)
    ema_momentum: float = Field(default=0.99, ge=0, lt=1)  # teacher = EMA of the weights


class LossConfig(Strict):
    combine: CombineName = "sampled"
    weights: dict[str, float] = {}  # loss.combine=weighted: per-task weights (missing: 1)
    # Regression loss: squared error in label units (label) or on the label range rescaled
    # to [0, 1] (unit: SBERT's CosineSimilarityLoss; 25x smaller on sts' 0-5 range).
    regression_target: Literal["label", "unit"] = "label"
    # Label smoothing (Szegedy et al. 2016, section 7) per classification task: the
    # cross-entropy target is (1 - eps) * one-hot + eps / K, e.g. {sst: 0.1}. Missing: 0.
    label_smoothing: dict[str, float] = {}
    # R-Drop (Liang et al. 2021) per classification task: alpha of the symmetric KL between
    # two dropout passes of each batch, e.g. {sst: 1.0} (pipeline/train/rdrop.py). Missing: off.
    rdrop: dict[str, float] = {}
    # In-batch negatives (Henderson et al. 2017) per siamese binary pair task: the weight of
    # the multiple negatives ranking loss added to the task's loss, e.g. {para: 1.0}, and the
    # scale of its cosines (pipeline/train/in_batch.py). Missing: off.
    in_batch_negatives: dict[str, float] = {}
    in_batch_scale: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    smart: SmartConfig = SmartConfig()

    @field_validator("label_smoothing")
    @classmethod
    def _smoothing_is_a_share(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {t: e for t, e in v.items() if not 0 <= e < 1}
        if bad:
            raise ValueError(f"label smoothing must be in [0, 1) (the share of the target "
                             f"spread over the classes); got {bad}")
        return v

    @field_validator("rdrop", "in_batch_negatives")
    @classmethod
    def _finite_weights(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        """A per-task weight of an added loss term: finite and >= 0 (0: off)."""
        name, meaning = {"rdrop": ("alpha", "the weight of the KL term; 0: off"),
                         "in_batch_negatives": ("the weight", "0: off")}[info.field_name]
        bad = {t: a for t, a in v.items() if not 0 <= a < float("inf")}
        if bad:
            raise ValueError(f"loss.{info.field_name}: {name} must be a finite number >= 0 "
                             f"({meaning}); got {bad}")
        return v

    @field_validator("combine", mode="before")
    @classmethod
    def _random_task_is_a_sampler(cls, v: Any) -> Any:
        """``random_task`` once meant two things; it is now the sampler only, and the old
        spelling here says where it went instead of listing every combination."""
        if v == "random_task":
            raise ValueError("'random_task' is a sampler, not a loss combination: use "
                             "loss.combine=sampled (one task per step) with sampler=random_task "
                             "(that task drawn uniformly at random)")
        return v


class EvaluateConfig(Strict):
    batch_size: int = Field(default=128, ge=1)
    # false: score and predict dev only (a sweep compares dev scores; export then writes the
    # dev prediction files only). Submissions need true.
    predict_test: bool = True


class AblationSpec(Strict):
    """One declared experiment of ``params.yaml``'s ``ablations:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    report: str = Field(min_length=1)        # where it comes from: a report's title
    description: str = Field(min_length=1)   # one line: what it tests, against what baseline
    claim: str | None = None                 # the direction of effect the report claimed
    # The same claim per dev score (`overall` or a task name) vs the baseline, so the
    # ablation table can say where our runs agree with the report.
    expect: dict[str, Literal["up", "down", "flat"]] = {}
    changes: dict[str, Any] = Field(default_factory=dict, alias="set")  # dotted key -> value

    @model_validator(mode="after")
    def _lr_reaches_what_trains(self) -> AblationSpec:
        """With the encoder frozen, ``train.lr`` reaches only weights that do not move: the
        heads and adapters train at ``train.head_lr``. (The first frozen ablations set only
        ``train.lr`` and so measured the zero-shot floor again.)"""
        if (self.changes.get("model.freeze") == "frozen" and "train.lr" in self.changes
                and "train.head_lr" not in self.changes):
            raise ValueError("model.freeze=frozen with train.lr but no train.head_lr: the "
                             "frozen encoder ignores train.lr; set train.head_lr, the rate "
                             "of the heads and adapters that train")
        return self


class BudgetSpec(Strict):
    """A named compute budget: params every ablation run under it shares (``budgets:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    description: str = Field(min_length=1)
    changes: dict[str, Any] = Field(default_factory=dict, alias="set")


# params.yaml's sections that describe experiments (read by `ablate` and the flows) rather
# than configure the run a stage makes
CATALOGUE_SECTIONS = ("ablations", "budgets")


def without_catalogue(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` params without the ablation catalogue: what one run trains with."""
    return {k: v for k, v in raw.items() if k not in CATALOGUE_SECTIONS}


class Params(Strict):
    seed: int = 13
    sampler: SamplerName = "round_robin"
    tasks: dict[str, TaskConfig]
    data: DataConfig = DataConfig()
    tokenize: TokenizeConfig = TokenizeConfig()
    encoder: EncoderConfig = EncoderConfig()
    mlm: MlmConfig = MlmConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    loss: LossConfig = LossConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    # Named ablations and budgets are read by `python -m pipeline ablate` and the flows, never
    # by a stage (pipeline/ablations.py expands them into `dvc exp run -S` overrides).
    ablations: dict[str, AblationSpec] = {}
    budgets: dict[str, BudgetSpec] = {}

    @model_validator(mode="after")
    def _heads_fit_tasks(self) -> Params:
        for name, cfg in self.tasks.items():
            encoding = (cfg.encoding or self.model.pair_encoding) if cfg.pair else "single"
            siamese = encoding == "siamese"
            if cfg.head is not None:
                head, where = cfg.head, f"tasks.{name}.head"
            elif siamese:
                head = names.resolve_head(self.model.pair_head, cfg.type, cfg.output_size, siamese)
                where = "model.pair_head"
            else:
                head, where = self.model.single_head, "model.single_head"
            problem = names.head_problem(head, cfg.type, cfg.output_size, siamese)
            if problem:
                raise ValueError(
                    f"{where}={head} does not fit task '{name}' ({encoding} {cfg.type}): "
                    f"{problem}; valid heads for it: "
                    f"{', '.join(names.valid_heads(cfg.type, cfg.output_size, siamese))}")
        return self

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: dict[str, TaskConfig]) -> dict[str, TaskConfig]:
        for name in v:
            if not name.isidentifier():
                raise ValueError(f"task name '{name}' must be a plain identifier (letters, _)")
        enabled = {name: cfg for name, cfg in v.items() if cfg.enabled}
        if not enabled:
            raise ValueError("at least one enabled task is needed")
        return enabled

    def _siamese_binary(self, cfg: TaskConfig) -> bool:
        """A pair task encoded siamese with two classes (a duplicate / not label)."""
        return (cfg.pair and (cfg.encoding or self.model.pair_encoding) == "siamese"
                and cfg.type == "classification" and cfg.output_size == 2)

    @model_validator(mode="after")
    def _task_keys_known(self) -> Params:
        for where, keys in (("train.task_batch_size", self.train.task_batch_size),
                            ("train.task_encoder_lr_scale", self.train.task_encoder_lr_scale),
                            ("train.task_sampling_weight", self.train.task_sampling_weight),
                            ("loss.weights", self.loss.weights),
                            ("loss.label_smoothing", self.loss.label_smoothing),
                            ("loss.rdrop", self.loss.rdrop),
                            ("loss.in_batch_negatives", self.loss.in_batch_negatives)):
            unknown = sorted(set(keys) - set(self.tasks))
            if unknown:
                raise ValueError(f"{where}: unknown task(s) {', '.join(unknown)}; "
                                 f"tasks: {', '.join(self.tasks)}")
        classification_only = (
            ("loss.label_smoothing", self.loss.label_smoothing, "no classes to smooth over"),
            ("loss.rdrop", self.loss.rdrop, "no class distributions to compare"))
        for where, keys, why in classification_only:
            regression = sorted(t for t in keys if self.tasks[t].type == "regression")
            if regression:
                classification = [t for t, c in self.tasks.items() if c.type != "regression"]
                raise ValueError(f"{where}: {', '.join(regression)} is a regression task "
                                 f"({why}); classification tasks: {', '.join(classification)}")
        ranked = [t for t, c in self.tasks.items() if self._siamese_binary(c)]
        unfit = sorted(t for t in self.loss.in_batch_negatives if t not in ranked)
        if unfit:
            raise ValueError(f"loss.in_batch_negatives: {', '.join(unfit)} is not a siamese "
                             f"binary pair task (the loss ranks a positive pair's second "
                             f"sentence among the batch's); tasks it fits: "
                             f"{', '.join(ranked) or 'none'}")
        per_step = (("train.task_encoder_lr_scale", self.train.task_encoder_lr_scale),
                    ("train.task_sampling_weight", self.train.task_sampling_weight))
        for where, factors in per_step:  # options that act on the steps drawing one task
            changed = {t: f for t, f in factors.items() if f != 1.0}
            if changed and self.loss.combine != "sampled":
                raise ValueError(f"{where} {changed} needs loss.combine=sampled (one task per "
                                 f"step); with combine={self.loss.combine} every step trains "
                                 f"every task: weigh them with loss.combine=weighted and "
                                 f"loss.weights")
        weighted = {t: w for t, w in self.train.task_sampling_weight.items() if w != 1.0}
        if weighted and self.sampler == "round_robin":
            others = ", ".join(s for s in names.SAMPLERS if s != "round_robin")
            raise ValueError(f"train.task_sampling_weight {weighted} needs a sampler with "
                             f"shares to weigh; round_robin gives equal turns. Samplers that "
                             f"take weights: {others}")
        return self


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, section by section (neither is modified)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = (deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict)
                  else v)
    return out


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid params in {source}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not a known param; check the spelling)"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise UserError(format_validation_error(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; any problem raises one ``UserError`` naming the key."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"params file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{p}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{p}: expected a mapping of sections at the top level")
    return parse_params(raw, str(p))
