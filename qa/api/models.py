"""Request and response models of the HTTP API: the public contract."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..corpus import COUNTRIES, deep_link
from ..highlight import Highlight
from ..search import Hit
from . import examples

MAX_QUESTION = 500
Lang = Literal["ru", "de", "en"]

# Where to turn: the support team, with the member ID named in the request to them (not
# typed into the search box). The widget links the contact article (`support`).
SUPPORT_MESSAGE = {
    "ru": "Ответ не найден. Напишите в поддержку и укажите в обращении свой номер участника (ID).",
    "de": "Keine passende Antwort gefunden. Kontaktieren Sie den Support und nennen Sie dort Ihre Mitgliedsnummer.",
    "en": "No matching answer found. Contact support and mention your member ID.",
}


def example(**values) -> ConfigDict:
    """A valid example for /docs ("Try it out" sends it as it is)."""
    return ConfigDict(json_schema_extra={"examples": [values]})


def no_surrogates(v):
    """Lone surrogates (JSON "\\ud800") are no text: they cannot be encoded, logged or
    stored, so every text field refuses them with 422."""
    if isinstance(v, str) and any("\ud800" <= ch <= "\udfff" for ch in v):
        raise ValueError("must be valid Unicode text (it contains a lone surrogate such as \\ud800)")
    return v


def _check_question(v: str) -> str:
    no_surrogates(v)
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    if len(v) > MAX_QUESTION:
        raise ValueError(f"must be at most {MAX_QUESTION} characters (got {len(v)})")
    return v


def _check_country(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    code = v.strip().upper()
    if code not in COUNTRIES:
        raise ValueError(f"unknown country code '{v}' (known: {', '.join(COUNTRIES)})")
    return code


class AskRequest(BaseModel):
    question: str = Field(
        ...,
        description="The member's question, 1-500 characters",
        json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION},
    )
    lang: Lang | None = Field(None, description="Language of the question; detected when omitted")
    fallback_lang: Lang | None = Field(
        None, description="Language to answer in when the question's language cannot be detected (e.g. the page's)"
    )
    country: str | None = Field(
        None,
        description=f"Member's country ({', '.join(COUNTRIES)}): only sections that apply there",
    )
    category: str | None = Field(None, description="Only articles of this category")
    limit: int = Field(5, ge=1, le=20, description="How many sections to return")
    session: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{8,32}$",
        description="Search-as-you-type session of a widget (random hex): the prefixes typed on the way "
        "to a question are stored as one question, not one per keystroke",
    )

    explain: bool = Field(False, description="Add each result's ranking evidence (`explain`), for agents")
    rerank: bool = Field(False, description="A final question (not as-you-type): let the second stage, where the "
                         "service has one (HELPDESK_QA_RERANKER), reread the top results; costlier")

    model_config = example(question="Passwort vergessen", lang="de", fallback_lang="de", country="DE", limit=5,
                           explain=False, rerank=False)
    source: Literal["widget", "agent", "api", "docs"] | None = Field(
        None,
        description="Who asks: the widget (a member), the agent console, an API client, or /docs. Insights "
        "and gaps count members' questions (widget, api) only. Default: from the Referer (/agent, /docs), else api",
    )

    _question = field_validator("question")(_check_question)
    _country = field_validator("country")(_check_country)
    _text = field_validator("category", "session", mode="before")(no_surrogates)


class Highlights(BaseModel):
    """Character offsets `[start, end)` of the question's words (their stems and synonyms)."""

    article_title: list[tuple[int, int]] = Field(default_factory=list)
    section_title: list[tuple[int, int]] = Field(default_factory=list)
    snippet: list[tuple[int, int]] = Field(default_factory=list, description="In `snippet`")
    best_step: int | None = Field(None, description="0-based index into `steps` of the best-matching step")
    best_text: str = Field("", description="The best-matching step or sentence, plain text")

    model_config = example(article_title=[[0, 8]], section_title=[], snippet=[[4, 12]], best_step=1,
                           best_text="Klicken Sie auf „Passwort vergessen“.")


class Result(BaseModel):
    article_id: str
    article_title: str
    section_title: str
    position: int = Field(..., description="Section number in its article; the same in every translation")
    anchor: str
    url: str = Field(..., description="Deep link: the article URL with #anchor")
    lang: str
    countries: list[str]
    category: str
    text: str = Field(..., description="The section's Markdown")
    steps: list[str]
    score: float
    available_languages: list[str] = Field(..., description="Languages the article exists in")
    snippet: str = Field("", description="Plain text, about 160 characters, around the best match")
    highlights: Highlights = Field(default_factory=Highlights)
    rule: str | None = Field(None, description="The rule (corpus/rules.yaml) that pinned or boosted it")
    explain: dict | None = Field(None, description="With `explain=true`: the ranking evidence of this result")

    model_config = ConfigDict(json_schema_extra={"examples": [examples.RESULT]})


class SupportPointer(BaseModel):
    message: str
    article_id: str | None = None
    title: str | None = None
    url: str | None = None

    model_config = example(message=SUPPORT_MESSAGE["en"], article_id="faq-contact-support",
                           title="Contacting support", url="https://helpdesk.atomydoc.ru/en/faq/faq-contact-support")


class RuleFired(BaseModel):
    name: str
    action: Literal["pin", "hide", "boost"]
    target: str = Field(..., description="article-id or article-id#anchor, as written in rules.yaml")
    effect: str

    model_config = example(name="courier-outage-kz", action="pin", target="ord-tracking#delay",
                           effect="pinned ord-tracking#delay at position 1")


class AskResponse(BaseModel):
    query_id: str = Field(..., description="Unguessable id of this question: send it with feedback")
    query: str
    searched_as: str | None = Field(
        None, description="The text searched, when it is not the question as typed (normalised): Latin-script "
        "Russian in Cyrillic, misspelt words as the corpus spells them"
    )
    query_lang: str = Field(..., description="ru, de, en, or unknown")
    answered: bool
    results: list[Result]
    support: SupportPointer | None = Field(None, description="Where to turn when answered is false")
    rules: list[RuleFired] = Field(default_factory=list, description="Rules that acted on this question")
    reranked: bool = Field(False, description="A second stage answered: it reread the top results, or the final "
                           "build answered (asked with rerank=true, on a service that has one)")
    stage: Literal["first", "final"] = Field(
        "first", description="Which build answered: the first (as-you-type) one, or the final build "
        "(HELPDESK_QA_FINAL_INDEX_DIR) for a final question")
    took_ms: float

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ANSWER]})


QUERY_ID = r"^[0-9a-f]{32}$"


class OpenedRequest(BaseModel):
    query_id: str = Field(..., pattern=QUERY_ID, description="`query_id` of the /v1/ask response")
    article_id: str = Field(..., min_length=1, max_length=200)
    anchor: str = Field("", max_length=300, description="The opened section's anchor")
    position: int = Field(..., ge=1, le=20, description="1-based rank of the opened result")

    model_config = example(query_id=examples.QUERY_ID, article_id='acc-password-reset', anchor='', position=1)
    _text = field_validator("query_id", "article_id", "anchor", mode="before")(no_surrogates)


class FeedbackRequest(BaseModel):
    query_id: str = Field(..., pattern=QUERY_ID, description="`query_id` of the /v1/ask response")
    article_id: str = Field(..., min_length=1, max_length=200)
    anchor: str = Field("", max_length=300)
    helpful: bool

    model_config = example(query_id=examples.QUERY_ID, article_id='acc-password-reset', anchor='', helpful=True)
    _text = field_validator("query_id", "article_id", "anchor", mode="before")(no_surrogates)


class FeedbackAccepted(BaseModel):
    status: Literal["recorded", "duplicate", "pending"] = Field(
        ..., description="`duplicate`: the same event was already received (a retry); stored once. `pending`: "
        "the query was answered by another worker or replica; the event is checked against what it showed "
        "within a few seconds and stored only if it matches"
    )

    model_config = example(status='recorded')


class PhrasingRequest(BaseModel):
    question: str = Field(..., description="The customer's question as the agent has it")
    article_id: str = Field(..., min_length=1, max_length=200, description="The article the agent chose")
    lang: Lang | None = Field(None, description="Language version of the article (default: its first)")

    _question = field_validator("question")(_check_question)
    _text = field_validator("article_id", mode="before")(no_surrogates)

    model_config = example(question='Ich komme nicht mehr in mein Konto', article_id='acc-password-reset', lang='de')


class Phrasing(BaseModel):
    question: str = Field(..., description="The question, redacted")
    usable: bool = Field(..., description="False when redaction or length leaves no usable phrasing")
    article_id: str
    lang: str
    title: str
    file: str = Field(..., description="The article's file in the corpus")
    added: list[str]
    over_limit: list[str]
    yaml: str = Field(..., description="The article's `questions:` block with the question added, ready to paste")

    model_config = ConfigDict(json_schema_extra={"examples": [examples.PHRASING]})


class Meta(BaseModel):
    languages: list[str]
    countries: list[str]
    categories: list[str]

    model_config = example(languages=['ru', 'de', 'en'], countries=['RU', 'KZ', 'DE'], categories=['account', 'orders'])


class SectionOut(BaseModel):
    position: int
    title: str
    anchor: str
    url: str
    countries: list[str]
    text: str
    steps: list[str]

    model_config = ConfigDict(json_schema_extra={"examples": [examples.SECTION]})


class ArticleOut(BaseModel):
    id: str
    lang: str
    title: str
    category: str
    countries: list[str]
    url: str
    updated: str
    tags: list[str]
    languages: list[str]
    sections: list[SectionOut]

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ARTICLE]})


def to_result(hit: Hit, marks: Highlight | None = None, explain: dict | None = None) -> Result:
    s, a = hit.section, hit.article
    marks = marks or Highlight()
    return Result(
        article_id=a.id,
        article_title=a.title,
        section_title=s.title,
        position=s.position,
        anchor=s.anchor,
        url=deep_link(a.url, s),
        lang=s.lang,
        countries=s.countries,
        category=a.category,
        text=s.text,
        steps=s.steps,
        score=hit.score,
        available_languages=hit.available_languages,
        snippet=marks.snippet,
        highlights=Highlights(article_title=marks.title, section_title=marks.section_title,
                              snippet=marks.snippet_spans, best_step=marks.best_step, best_text=marks.best_text),
        rule=hit.rule,
        explain=explain,
    )
