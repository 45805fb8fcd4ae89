"""The version of a model folder: what makes a retrained model a different model.

A folder path alone does not identify a model: `qa train` may write a new model to
the path an index was built with. The index manifest and the embedding cache
therefore key on `path@version`, where the version is a hash of the weights,
recorded in `qa_model.json` by the tools that write folders (build-e5, train,
export-onnx) and computed from the weight files for any other folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

VERSION_FILE = "qa_model.json"
WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".bin", ".pt")


def weights_hash(folder: Path | str) -> str:
    """sha256 over the weight files of `folder` (names and contents), 12 hex digits."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    for path in files:
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:12]


def write_version(folder: Path | str, **info) -> str:
    """Hash the weights now and record the version (and `info`) in the folder."""
    folder = Path(folder)
    version = weights_hash(folder)
    (folder / VERSION_FILE).write_text(json.dumps({"version": version, **info}, indent=2, ensure_ascii=False))
    return version


def read_info(folder: Path | str) -> dict:
    try:
        return json.loads((Path(folder) / VERSION_FILE).read_text())
    except (OSError, ValueError):
        return {}


def folder_version(model: str) -> str | None:
    """The version of a local model folder; None for anything that is not a folder."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    return read_info(folder).get("version") or weights_hash(folder)
