"""The code deps of each DVC stage, computed from its imports, so they cannot drift.

A stage's outputs depend on every project file its module runs. Listed by hand, dvc.yaml
missed ``pipeline/config.py`` everywhere and most of what ``mlm`` imports, and ``dvc repro``
then said "didn't change" after an edit that changes the outputs. Here a stage's code deps are
its module's transitive project imports (:func:`pipeline.import_graph.loaded_by`: every import
statement, function-level ones included, and the packages above them); a folder every one of
whose modules is imported is listed as the folder.

``python -m pipeline.stage_deps --check`` exits 1 and prints the differences when dvc.yaml's
code deps are not these; ``--write`` rewrites them in place. Only the ``pipeline/`` and
``stages/`` entries of each ``deps:`` list change (placed first, sorted); data and model deps,
comments and everything else in the file keep their text and order.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from pipeline.import_graph import PROJECT_PACKAGES, loaded_by

ROOT = Path(__file__).resolve().parents[1]
DVC_YAML = "dvc.yaml"
STAGE_CMD = re.compile(r"python -m (stages\.\w+)\b")
STAGE_LINE = re.compile(r"^  ([\w-]+):\s*$")
DEP_LINE = re.compile(r"^      - (\S.*?)\s*$")


def is_code(dep: str) -> bool:
    """Whether a dep is project code (the part this module owns)."""
    return dep.split("/")[0] in PROJECT_PACKAGES


def stage_modules(dvc_yaml: dict) -> dict[str, str]:
    """Stage name -> the ``stages.*`` module its ``cmd`` runs."""
    out = {}
    for name, stage in (dvc_yaml.get("stages") or {}).items():
        match = STAGE_CMD.search(str(stage.get("cmd", "")))
        if match is None:
            raise ValueError(f"stage '{name}': cmd does not run `python -m stages.<name>`")
        out[name] = match.group(1)
    return out


def _folded(files: set[Path], root: Path) -> list[str]:
    """``files`` as dep paths, a folder replacing its files when all its modules are there."""
    out: set[str] = set()
    for f in files:
        top = f
        for folder in f.parents[:-1]:  # innermost first; stop before the root ('.')
            modules = {p.relative_to(root) for p in (root / folder).rglob("*.py")}
            if modules <= files:
                top = folder
        out.add(top.as_posix())
    return sorted(out, key=lambda d: (not d.startswith("stages"), d))


def code_deps(module: str, root: Path = ROOT) -> list[str]:
    """The code deps of the stage running ``module``, as dvc.yaml lists them."""
    return _folded(loaded_by(module, root), root)


def covered(path: Path, deps: list[str]) -> bool:
    """Whether a file is one of ``deps`` or lies inside one of them (a folder dep)."""
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


def wanted_deps(root: Path = ROOT) -> dict[str, list[str]]:
    """Stage -> its code deps as they should be."""
    spec = yaml.safe_load((root / DVC_YAML).read_text(encoding="utf-8"))
    return {stage: code_deps(module, root) for stage, module in stage_modules(spec).items()}


def rewrite(text: str, wanted: dict[str, list[str]]) -> str:
    """dvc.yaml's text with each stage's code deps replaced by ``wanted[stage]``."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    in_stages, stage = False, None
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if line[:1] not in ("", " ", "\n", "#"):  # a top-level key
            in_stages, stage = line.startswith("stages:"), None
        match = STAGE_LINE.match(line)
        if in_stages and match:
            stage = match.group(1)
        if stage in wanted and line.rstrip() == "    deps:":
            kept: list[str] = []
            while i < len(lines) and (DEP_LINE.match(lines[i])
                                      or lines[i].lstrip().startswith("#")):
                dep = DEP_LINE.match(lines[i])
                if dep is None or not is_code(dep.group(1)):
                    kept.append(lines[i])
                i += 1
            out.extend(f"      - {d}\n" for d in wanted[stage])
            out.extend(kept)
    return "".join(out)


def current_deps(root: Path = ROOT) -> dict[str, list[str]]:
    """Stage -> the code deps dvc.yaml lists now."""
    spec = yaml.safe_load((root / DVC_YAML).read_text(encoding="utf-8"))
    return {name: [d for d in stage.get("deps") or [] if is_code(str(d))]
            for name, stage in spec["stages"].items()}


def differences(root: Path = ROOT) -> list[str]:
    """One line per stage whose code deps differ from its imports (empty: all agree)."""
    have, want = current_deps(root), wanted_deps(root)
    out = []
    for stage, deps in want.items():
        missing = sorted(set(deps) - set(have.get(stage, [])))
        extra = sorted(set(have.get(stage, [])) - set(deps))
        if missing or extra:
            out.append(f"{stage}: missing {missing or '-'}; not imported {extra or '-'}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml's code deps "
                      "differ from the stages' imports")
    mode.add_argument("--write", action="store_true", help="rewrite them in dvc.yaml")
    parser.add_argument("--root", type=Path, default=ROOT, help="project folder")
    args = parser.parse_args(argv)
    path = args.root / DVC_YAML
    if args.write:
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, wanted_deps(args.root))
        if new != text:
            path.write_text(new, encoding="utf-8")
        print(f"{path}: code deps {'rewritten' if new != text else 'already up to date'}")
        return 0
    text = path.read_text(encoding="utf-8")
    problems = differences(args.root)
    if not problems and rewrite(text, wanted_deps(args.root)) != text:
        problems = ["code deps in another order than --write puts them"]
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("fix: python -m pipeline.stage_deps --write", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
