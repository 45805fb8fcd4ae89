"""Why a result ranks where it does, for agents (`explain=true` on /v1/ask).

Reads the evidence ranking already computed (`qa.search.Evidence`: the signals and the
fused arrays) for the returned hits only; nothing is recomputed except a section's
share of each signal. The numbers are the ones `Searcher.fuse` and `Searcher.rank` add
up, so an agent sees the same evidence the ranking used.
"""

from __future__ import annotations

import numpy as np

from .corpus import LANGUAGES
from .search import Hit, Searcher, SearchResult


def _best(values: np.ndarray, sections: np.ndarray) -> float:
    return round(float(values[sections].max()), 4) if len(sections) else 0.0


def explain(searcher: Searcher, result: SearchResult, hit: Hit) -> dict:
    """The evidence of one hit: dense, lexical, phrasing, article context, steps,
    country lift, rule, and what the second stage added (None: it did not read it)."""
    ev = result.evidence
    if ev is None or hit.group < 0:
        return {"rule": hit.rule}
    sig, r, g = ev.signals, ev.ranking, hit.group
    versions = np.flatnonzero(searcher.section_group == g)  # the section in every language
    article = int(searcher.group_article[g])
    lexical = np.maximum(sig.lexical, sig.lexical_phrase)
    top = float(lexical.max()) if len(lexical) else 0.0
    raw_lexical = _best(lexical, versions)
    excess = {lang: round(float(sig.background.excess.get(lang, 0.0)), 4) for lang in LANGUAGES}
    late = ev.late.get(g)
    unlifted, final = float(ev.unlifted[g]), float(ev.final[g]) - (late or 0.0)
    return {
        "dense": _best(sig.dense, versions),
        "phrasing": _best(sig.phrase, versions),
        "phrasing_background": excess.get(hit.section.lang, 0.0),
        "lexical_bm25": raw_lexical,
        "lexical_relative": round(raw_lexical / (top + r.lexical_half), 4) if top > 0 else 0.0,
        "lexical_weight": r.lexical_weight,
        "section": round(float(ev.group[g]), 4),
        "article_context": round(float(ev.article[article]), 4),
        "article_weight": r.article_weight,
        "steps_bonus": r.steps_bonus if searcher.section_has_steps[ev.shown[g]] else 0.0,
        "country_lift": round(final - unlifted, 4) if np.isfinite(final) and final > unlifted else 0.0,
        "score": hit.score,
        "rule": hit.rule,
        "late_interaction": late,
        "second_stage": hit.second_stage,
        "query_lang": sig.query_lang,
    }
