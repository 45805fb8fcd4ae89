"""Which encoder and second stage serve a build, and loading them.

A build from `qa ingest` is served with the configured model (`HELPDESK_QA_MODEL`,
checked against the manifest's `model`) and the configured second stage
(`HELPDESK_QA_RERANKER`). A build from `qa adapt` carries its own model folders
(`models/encoder`, `models/reranker`, named in the manifest's `models` with their
versions): it is served with those, whatever is configured, so that a replica can
move to an adapted build without a restart. A carried folder that is missing, does
not load, or is not the version the build was embedded with makes the build
unservable (`ModelUnavailable`), like a damaged index file.

Used by the service (qa/api/service.py) and by `qa adapt`'s gate, which scores the
current build's system as the replicas serve it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .artifact import build_models
from .config import Settings
from .errors import ModelMismatch, ModelUnavailable

log = logging.getLogger("qa.models")


@dataclass(frozen=True)
class BuildModels:
    encoder: str | None  # a model setting (bundled name or folder); None: BM25 only
    encoder_version: str | None  # the version a carried folder must have
    reranker: Path | None
    carried: frozenset[str] = frozenset()  # roles whose folder the build carries

    @property
    def encoder_key(self) -> tuple[str | None, str | None]:
        return self.encoder, self.encoder_version


def models_for(folder: Path, manifest: dict, settings: Settings) -> BuildModels:
    """The models that serve the build in `folder` (see the module docstring)."""
    paths = build_models(folder, manifest)
    records = manifest.get("models") or {}
    encoder: str | None = settings.model
    version = None
    if settings.retrieval == "bm25":
        encoder = None
    elif "encoder" in paths:
        encoder, version = str(paths["encoder"]), records["encoder"].get("version")
    reranker = paths.get("reranker", settings.reranker)
    return BuildModels(encoder, version, reranker, frozenset(paths))


def check_configured(encoder, manifest: dict, folder: Path) -> None:
    """A build without its own encoder must have been embedded with the configured one."""
    if manifest.get("model") != encoder.identity:
        raise ModelMismatch(
            f"the index in {folder} was built with model '{manifest.get('model')}', but the service is "
            f"configured for '{encoder.identity}': rebuild with `qa ingest` or change the model setting")


def load_encoder(models: BuildModels, settings: Settings, manifest: dict, folder: Path):
    """The encoder for a build, checked against what the build was embedded with."""
    from .encoder import Encoder

    if "encoder" not in models.carried:
        encoder = Encoder(models.encoder or settings.model, query_prompt=settings.query_prompt,
                          passage_prompt=settings.passage_prompt, serving=True)
        check_configured(encoder, manifest, folder)
        return encoder
    path = Path(models.encoder or "")
    if not path.is_dir():
        raise ModelUnavailable(f"{folder}: its encoder folder {path} is missing: run `qa adapt --force`")
    try:
        encoder = Encoder(str(path), serving=True)
    except Exception as e:  # any failure to load means the build cannot be served
        raise ModelUnavailable(f"{folder}: its encoder folder {path} does not load ({type(e).__name__}: {e})") from None
    if encoder.version != models.encoder_version or encoder.dimension != manifest.get("dimension"):
        raise ModelUnavailable(
            f"{folder}: its encoder folder {path} is version {encoder.version} ({encoder.dimension} dims), "
            f"the build was embedded with version {models.encoder_version} ({manifest.get('dimension')} dims)")
    return encoder


def load_reranker(models: BuildModels, folder: Path):
    """The second stage, or None. A configured one that is not a cross-encoder folder
    is logged and left out (the first stage answers); one the build carries must load."""
    from .rerank import Reranker, is_cross_folder

    path = models.reranker
    if path is None:
        return None
    carried = "reranker" in models.carried
    if not is_cross_folder(path):
        if carried:
            raise ModelUnavailable(f"{folder}: its second-stage folder {path} is missing or not a cross-encoder")
        log.error("HELPDESK_QA_RERANKER=%s is not a cross-encoder folder (qa train-rerank): "
                  "final questions are answered by the first stage", path)
        return None
    try:
        reranker = Reranker.from_folder(path)
        reranker.cross.score("warm-up", ["warm-up"])
    except Exception as e:
        if carried:
            raise ModelUnavailable(f"{folder}: its second-stage folder {path} does not load "
                                   f"({type(e).__name__}: {e})") from None
        # A configured second stage that cannot load (the slim install and the default
        # image have no onnxruntime; a damaged file) must not stop the service.
        hint = " (pip install 'helpdesk-qa[onnx]')" if isinstance(e, ImportError) else ""
        log.error("HELPDESK_QA_RERANKER=%s does not load%s: %s: %s; final questions are answered by the "
                  "first stage", path, hint, type(e).__name__, e)
        return None
    log.info("second stage loaded: %s (depth %d, weight %g)", path, reranker.depth, reranker.weight)
    return reranker
