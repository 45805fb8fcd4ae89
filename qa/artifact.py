"""The index artifact on disk: one versioned build folder per ingest, made current atomically.

Layout of the index folder (`embeddings/` by default):

    CURRENT                 name of the active build folder (swapped atomically)
    build-<time>-<rand>/    one complete build:
        manifest.json       format version, model, dimension, corpus hash, counts, file hashes
        sections.json       articles and sections (the text that is returned)
        vectors.faiss       FAISS inner-product index over normalised chunk vectors
                            (exact; IVF above `approximate_above` vectors)
        rows.npz            FAISS row -> section number and row kind (a chunk of the
                            section, the article's title/tags, or a member phrasing);
                            phrasing -> the section it is mapped to; the query
                            vectors of the written unanswerable questions
        means.npz           per-language mean vectors (subtracted before indexing)
        synonyms.json       the operator's synonym groups, applied to questions
        rules.json          the support team's rules (pin, hide, boost), applied to results
        lexical/            BM25 index over the same sections
        models/             only in builds made by `qa adapt` (qa/adapt/): the encoder
                            (and second stage) the build was embedded with; the manifest's
                            `models` names them, and a replica serving the build loads them
    cache/                  embeddings keyed by model and chunk-text hash
    adapt/                  `qa adapt`'s status, lock, work and kept-aside builds

A build is written into its own folder, and only once complete does `CURRENT` point
to it (`os.replace` of a small file is atomic). A crash mid-build therefore leaves the
previous build active; a reader never sees a half-written index.

A `CURRENT` that cannot be read (missing, not UTF-8, not a build's name, naming a
folder that is not there) is an `IndexCorrupt` like a damaged build: the service
falls back to the newest intact build, newest by the manifest's `build_time`, never
by folder name; pruning keeps intact builds by the same order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from .corpus import Article, Section, Synonyms
from .errors import IndexCorrupt, IndexLoadError, IndexNotFound, ModelMismatch
from .index import FORMAT_VERSION, IVF_NPROBE, Index
from .lexical import LexicalIndex
from .rerank.late import LateTokens
from .rules import Rules

CURRENT = "CURRENT"
MODELS = "models"  # a build's own model folders (builds made by `qa adapt`)
FILES = ("sections.json", "vectors.faiss", "rows.npz", "means.npz", "synonyms.json", "rules.json")
LATE_FILES = ["late_tokens.npy", "late_offsets.npy"]  # only in builds of an encoder that gives token states


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _article_record(a: Article) -> dict:
    record = dataclasses.asdict(a)
    record.pop("sections")
    return record


def save_index(index: Index, root: Path | str, keep: int = 2, current: bool = True) -> Path:
    """Write `index` as a new build under `root` and make it current, atomically
    (`current=False`: only write it; `qa adapt` decides later whether it becomes current)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"build-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    folder = root / name
    folder.mkdir()
    with open(folder / "sections.json", "w", encoding="utf-8") as f:
        json.dump(
            {
                "articles": [_article_record(a) for a in index.articles],
                "sections": [dataclasses.asdict(s) for s in index.sections],
                "section_article": index.section_article.tolist(),
            },
            f,
            ensure_ascii=False,
        )
    faiss.write_index(index.faiss_index, str(folder / "vectors.faiss"))
    np.savez(folder / "rows.npz", rows=index.rows, row_kind=index.row_kind, phrasing_section=index.phrasing_section,
             unanswerable=index.unanswerable)
    np.savez(folder / "means.npz", **index.means)
    (folder / "synonyms.json").write_text(json.dumps(index.synonyms.to_json(), ensure_ascii=False), encoding="utf-8")
    (folder / "rules.json").write_text(json.dumps(index.rules.to_json(), ensure_ascii=False), encoding="utf-8")
    index.lexical.save(folder / "lexical")
    names = list(FILES)
    if index.late is not None:  # late interaction's token states (qa/rerank/late.py)
        np.save(folder / LATE_FILES[0], index.late.vectors)
        np.save(folder / LATE_FILES[1], index.late.offsets)
        names += LATE_FILES
    files = {n: _sha256(folder / n) for n in names}
    files.update({f"lexical/{p.name}": _sha256(p) for p in sorted((folder / "lexical").iterdir())})
    manifest = dict(index.manifest, files=files)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_tree(folder)
    index.manifest = manifest
    if current:
        set_current(root, name)
        _prune(root, name, keep)
    return folder


def set_current(root: Path, name: str) -> None:
    """Point `CURRENT` at the build `name`: a small file replaced atomically."""
    pointer_tmp = root / f"{CURRENT}.tmp"
    with open(pointer_tmp, "w") as f:
        f.write(name)
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer_tmp, root / CURRENT)


def adopt(root: Path | str, folder: Path, keep: int = 2) -> Path:
    """Move a complete build written elsewhere on the same file system (by `qa adapt`)
    into `root` and make it current; older builds are pruned as after an ingest."""
    root = Path(root)
    target = root / folder.name
    os.rename(folder, target)  # atomic: readers see the whole folder or none
    set_current(root, target.name)
    _prune(root, target.name, keep)
    return target


def build_models(folder: Path, manifest: dict) -> dict[str, Path]:
    """The model folders a build carries ({"encoder": path, "reranker": path}, each
    only when the build has one), from its manifest's `models` record."""
    out = {}
    for role, record in (manifest.get("models") or {}).items():
        relative = Path(str(record.get("path", "")))
        if not record.get("path") or relative.is_absolute() or ".." in relative.parts:
            raise IndexCorrupt(f"{folder}: the manifest names a model folder outside the build ({relative})")
        out[role] = folder / relative
    return out


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def intact(folder: Path) -> bool:
    """The manifest reads and every file it lists is there with its hash."""
    try:
        files = _build_manifest(folder).get("files") or {}
        return bool(files) and all((folder / n).is_file() and _sha256(folder / n) == h for n, h in files.items())
    except (IndexLoadError, OSError, AttributeError):
        return False


def prune(root: Path | str, keep: int = 2) -> None:
    """Remove old builds of `root` as an ingest does (see `_prune`)."""
    _prune(Path(root), read_pointer(root), keep)


def _prune(root: Path, current: str, keep: int) -> None:
    """Remove old builds, keeping the current one and the newest `keep - 1` intact
    others (newest by the manifest's build time, not by name); also remove builds that
    are not intact, and debris of builds that crashed before the current one started
    (a folder without a manifest may be an ingest still writing: only older ones go)."""
    others = sorted((p for p in root.glob("build-*") if p.is_dir() and p.name != current), key=_age, reverse=True)
    started = (root / current).stat().st_mtime if (root / current).is_dir() else float("inf")
    kept = 0
    for p in others:
        if not (p / "manifest.json").exists():
            if p.stat().st_mtime < started:
                shutil.rmtree(p, ignore_errors=True)
        elif kept < keep - 1 and intact(p):
            kept += 1
        else:
            shutil.rmtree(p, ignore_errors=True)


BUILD_NAME = re.compile(r"build-[A-Za-z0-9_.-]{1,100}")


def read_pointer(root: Path | str) -> str:
    """The build name in `CURRENT`. IndexNotFound when there is no `CURRENT`;
    IndexCorrupt when it is not UTF-8 or not a build folder's name."""
    pointer = Path(root) / CURRENT
    try:
        raw = pointer.read_bytes()
    except FileNotFoundError:
        raise IndexNotFound(f"no index in {root}: run `qa ingest` first") from None
    except OSError as e:
        raise IndexCorrupt(f"{pointer} cannot be read ({e}): run `qa ingest` again") from None
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise IndexCorrupt(f"{pointer} is not UTF-8 text ({raw[:20]!r}): run `qa ingest` again") from None
    if not BUILD_NAME.fullmatch(name):
        raise IndexCorrupt(f"{pointer} does not name a build ({name[:40]!r}): run `qa ingest` again")
    return name


def current_build(root: Path | str) -> Path:
    root = Path(root)
    folder = root / read_pointer(root)
    if not folder.is_dir():
        raise IndexCorrupt(f"{root / CURRENT} names {folder.name}, which does not exist: run `qa ingest` again")
    return folder


def read_manifest(root: Path | str) -> dict:
    return _build_manifest(current_build(root))


def _build_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorrupt(f"{folder / 'manifest.json'} is unreadable ({e}): run `qa ingest` again") from None


ModelCheck = str | Callable[[Path, dict], None] | None


def load_index(root: Path | str, model: ModelCheck = None, verify: bool = True) -> Index:
    """Load the current build. `model` is the encoder identity the caller will query
    with: vectors from another model would give wrong results, so that is an error.
    It may also be a check `(build folder, manifest) -> None` that raises an
    `IndexLoadError` when the caller cannot serve the build (qa/api/service.py: a
    build that carries its own models)."""
    return load_build(current_build(root), model, verify)


def load_build(folder: Path, model: ModelCheck = None, verify: bool = True) -> Index:
    """Load one build folder (see `load_index`)."""
    manifest = _build_manifest(folder)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorrupt(
            f"{folder} has format version {manifest.get('format_version')}, this program reads "
            f"{FORMAT_VERSION}: run `qa ingest` again"
        )
    if isinstance(model, str) and manifest.get("model") != model:
        raise ModelMismatch(
            f"the index in {folder} was built with model '{manifest.get('model')}', but the service is "
            f"configured for '{model}': rebuild with `qa ingest` or change the model setting"
        )
    if verify:
        for name, digest in manifest.get("files", {}).items():
            path = folder / name
            if not path.exists() or _sha256(path) != digest:
                raise IndexCorrupt(f"{path} is missing or corrupt (hash mismatch): run `qa ingest` again")
    if callable(model):  # after the files: a build's models are only loaded for an intact build
        model(folder, manifest)
    try:
        data = json.loads((folder / "sections.json").read_text(encoding="utf-8"))
        articles = [Article(**a) for a in data["articles"]]
        sections = [Section(**s) for s in data["sections"]]
        faiss_index = faiss.read_index(str(folder / "vectors.faiss"))
        ivf = faiss.try_extract_index_ivf(faiss_index)
        if ivf is not None:
            ivf.nprobe = IVF_NPROBE
        with np.load(folder / "rows.npz") as r:
            rows, row_kind, phrasing_section = r["rows"], r["row_kind"], r["phrasing_section"]
            unanswerable = r["unanswerable"] if "unanswerable" in r.files else np.zeros((0, 0), np.float32)
        with np.load(folder / "means.npz") as m:
            means = {k: m[k] for k in m.files}
        lexical = LexicalIndex.load(folder / "lexical", len(sections) + len(phrasing_section))
        synonyms = Synonyms.from_json(json.loads((folder / "synonyms.json").read_text(encoding="utf-8")))
        rules_file = folder / "rules.json"  # absent in builds from before rules
        rules = Rules.from_json(json.loads(rules_file.read_text(encoding="utf-8"))) if rules_file.exists() else Rules()
        late = _load_late(folder, len(sections))
    except Exception as e:  # any unreadable part means the build cannot be trusted
        raise IndexCorrupt(f"{folder} could not be read ({type(e).__name__}: {e}): run `qa ingest` again") from None
    if faiss_index.ntotal != len(rows) or faiss_index.d != manifest.get("dimension"):
        raise IndexCorrupt(f"{folder}: vector count or dimension disagrees with the manifest")
    return Index(
        manifest=manifest,
        articles=articles,
        sections=sections,
        section_article=np.array(data["section_article"], dtype=np.int32),
        faiss_index=faiss_index,
        rows=rows,
        row_kind=row_kind,
        means=means,
        lexical=lexical,
        phrasing_section=phrasing_section,
        synonyms=synonyms,
        unanswerable=unanswerable,
        rules=rules,
        late=late,
    )


def _load_late(folder: Path, sections: int) -> LateTokens | None:
    if not (folder / LATE_FILES[0]).exists():
        return None
    late = LateTokens(np.load(folder / LATE_FILES[0]), np.load(folder / LATE_FILES[1]))
    if len(late.offsets) != sections + 1 or late.offsets[-1] != len(late.vectors):
        raise ValueError("late interaction's token states do not match the sections")
    return late


def _age(folder: Path) -> tuple[float, float]:
    """Sort key, newest last: the manifest's build time, then its mtime; a build
    without a readable manifest sorts first (oldest)."""
    manifest = folder / "manifest.json"
    try:
        built = datetime.fromisoformat(json.loads(manifest.read_text(encoding="utf-8"))["build_time"]).timestamp()
        return built, manifest.stat().st_mtime
    except (OSError, ValueError, KeyError, TypeError):
        return float("-inf"), 0.0


def load_newest_intact(root: Path | str, model: ModelCheck = None,
                       serving: str | None = None) -> tuple[Index | None, Path, list[str]]:
    """The current build, or else the newest other build in `root` that loads cleanly
    (newest by build time), its folder, and why each newer build was refused. A
    running service passes the build it `serving`: when that is the newest intact
    one, it is not loaded again (None, its folder, reasons). Raises the current
    build's error when no build loads."""
    root = Path(root)
    try:
        folder = current_build(root)
        return load_build(folder, model), folder, []
    except IndexLoadError as e:
        first, refused = e, [str(e)]
    try:
        pointer = read_pointer(root)
    except IndexLoadError:
        pointer = None
    candidates = [p for p in root.glob("build-*") if p.is_dir() and p.name != pointer]
    if isinstance(first, IndexNotFound) and not candidates:
        raise first
    for folder in sorted(candidates, key=_age, reverse=True):
        if folder.name == serving:
            return None, folder, refused
        try:
            return load_build(folder, model), folder, refused
        except IndexLoadError as e:
            refused.append(str(e))
    raise first
