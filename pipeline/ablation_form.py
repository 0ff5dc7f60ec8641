"""The typed `Ablation` parameter model and its translation into `dvc exp run -S` overrides.

Prefect-free: the CLI's `ablate`, `pipeline.ablations` and the Prefect flows all use it, so it
lives outside `pipeline/flows/` (the flows import it; it imports no flow).

Typed fields (Literal choices, numeric bounds) make the Prefect UI render a form; each field
maps to one dotted key of params.yaml. Overrides are checked before any DVC work: the key must
exist in the project's params.yaml (DVC's `-S` would otherwise add it silently with `+` or fail
late), and the overridden params must pass `pipeline.config.parse_params`, which knows the valid
samplers, poolings and heads.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipeline import names
from pipeline.config import parse_params
from pipeline.errors import UserError

# Literal types so the Prefect UI offers a drop-down; the names are the torch-free registry's.
SamplerName = Literal[names.SAMPLERS]
PoolingName = Literal[names.POOLINGS]
SingleHeadName = Literal[names.SINGLE_HEADS]
PairHeadName = Literal[names.PAIR_HEADS]
AdapterName = Literal[names.ADAPTERS]
CombineName = Literal[names.COMBINERS]
PrecisionName = Literal[names.PRECISION_CHOICES]

# Ablation field -> dotted params.yaml key.
FIELD_KEYS: dict[str, str] = {
    "sampler": "sampler",
    "pooling": "model.pooling",
    "pair_head": "model.pair_head",
    "single_head": "model.single_head",
    "pair_encoding": "model.pair_encoding",
    "adapter": "model.adapter",
    "freeze": "model.freeze",
    "loss_combine": "loss.combine",
    "smart": "loss.smart.enabled",
    "precision": "train.precision",
    "encoder": "encoder.name",
    "lr": "train.lr",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "seed",
    "data_source": "data.source",
    "data_dir": "data.dir",
    "max_train_examples_per_task": "data.max_train_examples_per_task",
    "mlm": "mlm.enabled",
}


class AblationError(UserError):
    """An ablation that cannot run: unknown key or invalid value. Raised before any DVC work."""


class Ablation(BaseModel):
    """One experiment's changes against the committed params.yaml; unset fields keep theirs."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="experiment name (default: built from changes)")
    sampler: SamplerName | None = Field(None, title="sampler")
    pooling: PoolingName | None = Field(None, title="model.pooling")
    pair_head: PairHeadName | None = Field(None, title="model.pair_head")
    single_head: SingleHeadName | None = Field(None, title="model.single_head")
    pair_encoding: Literal["siamese", "cross"] | None = Field(None, title="model.pair_encoding")
    adapter: AdapterName | None = Field(None, title="model.adapter")
    freeze: Literal["full", "frozen", "two_stage"] | None = Field(None, title="model.freeze")
    loss_combine: CombineName | None = Field(None, title="loss.combine")
    smart: bool | None = Field(None, title="loss.smart.enabled")
    precision: PrecisionName | None = Field(None, title="train.precision")
    encoder: str | None = Field(None, title="encoder.name",
                                description="minilm-l6 | tiny-random | a folder | a hub id")
    lr: float | None = Field(None, gt=0, le=1, title="train.lr")
    epochs: int | None = Field(None, ge=1, le=100, title="train.epochs")
    batch_size: int | None = Field(None, ge=1, le=4096, title="train.batch_size")
    seed: int | None = Field(None, ge=0, title="seed")
    data_source: Literal["synthetic", "cs224n"] | None = Field(None, title="data.source")
    data_dir: str | None = Field(None, title="data.dir")
    max_train_examples_per_task: int | None = Field(None, ge=1,
                                                    title="data.max_train_examples_per_task")
    mlm: bool | None = Field(None, title="mlm.enabled")
    overrides: dict[str, str] = Field(
        default_factory=dict,
        description="any other params.yaml key: dotted key -> value (YAML), e.g. "
                    "{'train.warmup_ratio': '0.2'}")

    def to_overrides(self) -> dict[str, str]:
        """Dotted key -> value as DVC's `-S` reads it, for every field that is set."""
        out: dict[str, str] = {}
        for field, key in FIELD_KEYS.items():
            value = getattr(self, field)
            if value is not None:
                out[key] = yaml_scalar(value)
        out.update(self.overrides)
        return out


def yaml_scalar(value: Any) -> str:
    """A value as a YAML scalar (`true`, `5.0e-05`, `anneal`), the syntax `-S` accepts."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def has_key(params: dict[str, Any], key: str) -> bool:
    """Whether dotted `key` is present in the nested dicts."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def set_dotted(params: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts; AblationError when a parent of the key does not exist.

    A missing last part is added (an optional per-task field such as `tasks.sts.head` that
    params.yaml leaves out); the typed params models reject it later if it is not a param.
    """
    node: Any = params
    parts = key.split(".")
    for i, part in enumerate(parts):
        if i == len(parts) - 1 and isinstance(node, dict):
            node[part] = value
        elif not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:i]) or "the top level"
            raise AblationError(f"unknown params key '{key}': '{part}' is not in {where} of "
                                "params.yaml")
        else:
            node = node[part]


def apply_overrides(params: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """A copy of `params` with the overrides applied and validated as the stages would."""
    out = copy.deepcopy(params)
    for key, raw in overrides.items():
        if key == "ablations" or key.startswith("ablations."):
            raise AblationError(f"'{key}': the ablations section is not a pipeline param")
        set_dotted(out, key, yaml.safe_load(raw) if raw.strip() else None)
    try:
        parse_params(out, "params.yaml with the overrides")
    except UserError as err:
        raise AblationError(str(err)) from None
    return out


def read_params(project: Path) -> dict[str, Any]:
    """The project's params.yaml as a dict (AblationError when missing or not a mapping)."""
    path = project / "params.yaml"
    if not path.is_file():
        raise AblationError(f"no params.yaml in {project}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise AblationError(f"{path}: expected a mapping at the top level")
    return raw


def validate_overrides(project: Path, overrides: dict[str, str]) -> None:
    """Fail with a clear message unless every key exists and the values are valid."""
    apply_overrides(read_params(project), overrides)


def set_args(overrides: dict[str, str], params: dict[str, Any] | None = None) -> list[str]:
    """`-S key=value` arguments for `dvc exp run`; `-S ++key=value` (Hydra's add-or-override)
    for a key that `params` (the project's params.yaml) does not hold yet."""
    def arg(key: str, value: str) -> str:
        add = params is not None and not has_key(params, key)
        return f"{'++' if add else ''}{key}={value}"

    return [a for key, value in overrides.items() for a in ("-S", arg(key, value))]


def experiment_name(overrides: dict[str, str], given: str | None = None) -> str:
    """A readable, git-ref-safe experiment name: the given one, or built from the changes."""
    if given:
        base = given
    elif overrides:
        base = "-".join(f"{key.rsplit('.', 1)[-1]}-{value}" for key, value in overrides.items())
    else:
        base = "baseline-rerun"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.")
    name = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", name)).removesuffix(".lock")
    return (name or "exp")[:60].rstrip("-.")
