"""Request and response models of the HTTP API: the public contract."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from ..corpus import COUNTRIES, Section
from ..search import Hit

MAX_QUESTION = 500
Lang = Literal["ru", "de", "en"]

SUPPORT_MESSAGE = {
    "ru": "Ответ не найден. Напишите в поддержку и укажите свой номер участника (ID).",
    "de": "Keine passende Antwort gefunden. Wenden Sie sich an den Support und geben Sie Ihre Mitgliedsnummer an.",
    "en": "No matching answer found. Contact support and include your member ID.",
}


def _check_question(v: str) -> str:
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

    _question = field_validator("question")(_check_question)
    _country = field_validator("country")(_check_country)


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


class SupportPointer(BaseModel):
    message: str
    article_id: str | None = None
    title: str | None = None
    url: str | None = None


class AskResponse(BaseModel):
    query_id: str = Field(..., description="Unguessable id of this question: send it with feedback")
    query: str
    query_lang: str = Field(..., description="ru, de, en, or unknown")
    answered: bool
    results: list[Result]
    support: SupportPointer | None = Field(None, description="Where to turn when answered is false")
    took_ms: float


QUERY_ID = r"^[0-9a-f]{32}$"


class OpenedRequest(BaseModel):
    query_id: str = Field(..., pattern=QUERY_ID, description="`query_id` of the /v1/ask response")
    article_id: str = Field(..., min_length=1, max_length=200)
    anchor: str = Field("", max_length=300, description="The opened section's anchor")
    position: int = Field(..., ge=1, le=20, description="1-based rank of the opened result")


class FeedbackRequest(BaseModel):
    query_id: str = Field(..., pattern=QUERY_ID, description="`query_id` of the /v1/ask response")
    article_id: str = Field(..., min_length=1, max_length=200)
    anchor: str = Field("", max_length=300)
    helpful: bool


class FeedbackAccepted(BaseModel):
    status: Literal["recorded", "duplicate"] = Field(
        ..., description="`duplicate`: the same event was already received (a retry); stored once"
    )


class PhrasingRequest(BaseModel):
    question: str = Field(..., description="The customer's question as the agent has it")
    article_id: str = Field(..., min_length=1, max_length=200, description="The article the agent chose")
    lang: Lang | None = Field(None, description="Language version of the article (default: its first)")

    _question = field_validator("question")(_check_question)


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


class Meta(BaseModel):
    languages: list[str]
    countries: list[str]
    categories: list[str]


class SectionOut(BaseModel):
    position: int
    title: str
    anchor: str
    url: str
    countries: list[str]
    text: str
    steps: list[str]


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


def deep_link(url: str, section: Section) -> str:
    return f"{url}#{section.anchor}" if section.anchor else url


def to_result(hit: Hit) -> Result:
    s, a = hit.section, hit.article
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
    )
