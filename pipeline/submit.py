"""Pack the CS224N prediction files into one zip for the leaderboard upload.

The zip holds ``predictions/{task}-{split}-output.csv`` byte for byte as export wrote them,
with fixed timestamps so the same files give the same zip. Files that do not start with the
official header line are refused: a zip of wrong files would only fail on the server.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from pipeline.errors import UserError
from pipeline.io import atomic_path

ARC_DIR = "predictions"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def pack_submission(predictions_dir: Path, out: Path) -> list[str]:
    """Write ``out`` (zip) with every ``*-output.csv`` of ``predictions_dir``; return names."""
    if not predictions_dir.is_dir():
        raise UserError(f"predictions folder not found: {predictions_dir} "
                        "(run `dvc repro` first, or pass --predictions)")
    files = sorted(predictions_dir.glob("*-output.csv"))
    if not files:
        raise UserError(f"no *-output.csv files in {predictions_dir}")
    for f in files:
        with f.open("rb") as fh:
            first = fh.readline()
        if not first.startswith(b"id \t ") or not first.endswith(b" \n"):
            raise UserError(f"{f}: not a CS224N prediction file (first line {first[:40]!r})")
    names = []
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            name = f"{ARC_DIR}/{f.name}"
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, f.read_bytes())
            names.append(name)
    return names
