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
    cache/                  embeddings keyed by model and chunk-text hash

A build is written into its own folder, and only once complete does `CURRENT` point
to it (`os.replace` of a small file is atomic). A crash mid-build therefore leaves the
previous build active; a reader never sees a half-written index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from .corpus import Article, Section, Synonyms
from .errors import IndexCorrupt, IndexLoadError, IndexNotFound, ModelMismatch
from .index import FORMAT_VERSION, IVF_NPROBE, Index
from .lexical import LexicalIndex
from .rules import Rules

CURRENT = "CURRENT"
FILES = ("sections.json", "vectors.faiss", "rows.npz", "means.npz", "synonyms.json", "rules.json")


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


def save_index(index: Index, root: Path | str, keep: int = 2) -> Path:
    """Write `index` as a new build under `root` and make it current, atomically."""
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
    files = {n: _sha256(folder / n) for n in FILES}
    files.update({f"lexical/{p.name}": _sha256(p) for p in sorted((folder / "lexical").iterdir())})
    manifest = dict(index.manifest, files=files)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_tree(folder)

    pointer_tmp = root / f"{CURRENT}.tmp"
    with open(pointer_tmp, "w") as f:
        f.write(name)
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer_tmp, root / CURRENT)
    index.manifest = manifest
    _prune(root, name, keep)
    return folder


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _prune(root: Path, current: str, keep: int) -> None:
    """Remove old builds, keeping the current one and the newest `keep - 1` complete
    others; also remove debris of builds that crashed before the current one."""
    others = sorted((p for p in root.glob("build-*") if p.is_dir() and p.name != current), reverse=True)
    complete = [p for p in others if (p / "manifest.json").exists()]
    debris = [p for p in others if p not in complete and p.name < current]
    for p in complete[max(keep - 1, 0) :] + debris:
        shutil.rmtree(p, ignore_errors=True)


def current_build(root: Path | str) -> Path:
    root = Path(root)
    pointer = root / CURRENT
    if not pointer.exists():
        raise IndexNotFound(f"no index in {root}: run `qa ingest` first")
    folder = root / pointer.read_text().strip()
    if not folder.is_dir():
        raise IndexCorrupt(f"{pointer} names {folder.name}, which does not exist: run `qa ingest` again")
    return folder


def read_manifest(root: Path | str) -> dict:
    return _build_manifest(current_build(root))


def _build_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorrupt(f"{folder / 'manifest.json'} is unreadable ({e}): run `qa ingest` again") from None


def load_index(root: Path | str, model: str | None = None, verify: bool = True) -> Index:
    """Load the current build. `model` is the encoder identity the caller will query
    with: vectors from another model would give wrong results, so that is an error."""
    return load_build(current_build(root), model, verify)


def load_build(folder: Path, model: str | None = None, verify: bool = True) -> Index:
    """Load one build folder (see `load_index`)."""
    manifest = _build_manifest(folder)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorrupt(
            f"{folder} has format version {manifest.get('format_version')}, this program reads "
            f"{FORMAT_VERSION}: run `qa ingest` again"
        )
    if model is not None and manifest.get("model") != model:
        raise ModelMismatch(
            f"the index in {folder} was built with model '{manifest.get('model')}', but the service is "
            f"configured for '{model}': rebuild with `qa ingest` or change the model setting"
        )
    if verify:
        for name, digest in manifest.get("files", {}).items():
            path = folder / name
            if not path.exists() or _sha256(path) != digest:
                raise IndexCorrupt(f"{path} is missing or corrupt (hash mismatch): run `qa ingest` again")
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
    )


def _age(folder: Path) -> tuple[str, float]:
    """Sort key, newest last: the folder name's time (one-second resolution), then
    the manifest's mtime."""
    manifest = folder / "manifest.json"
    return folder.name[:21], manifest.stat().st_mtime if manifest.exists() else 0.0


def load_newest_intact(root: Path | str, model: str | None = None) -> tuple[Index, Path, list[str]]:
    """The current build, or else the newest other build in `root` that loads cleanly
    (`save_index` keeps the last ones), its folder, and why each newer build was
    refused. Raises the current build's error when no build loads."""
    root = Path(root)
    try:
        folder = current_build(root)
        return load_build(folder, model), folder, []
    except IndexNotFound:
        raise
    except IndexLoadError as e:
        first, refused = e, [str(e)]
    pointer = (root / CURRENT).read_text().strip()
    for folder in sorted((p for p in root.glob("build-*") if p.is_dir() and p.name != pointer), key=_age, reverse=True):
        try:
            return load_build(folder, model), folder, refused
        except IndexLoadError as e:
            refused.append(str(e))
    raise first
