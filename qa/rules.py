"""Rules the support team controls: `corpus/rules.yaml` -> pin, hide or boost a result.

The equivalent of Algolia Rules or Typesense overrides. A rule has a condition (query
words or phrases in any language, matched like synonyms: whole words, tolerant to
inflection, with the operator's synonyms applied; optionally a language, countries and
a category), one action (`pin` an article or section at a position, `hide` one, or
`boost` one by a score), and optionally a validity period (`from`, `until`). Format:
corpus/README.md.

Rules are read at ingest (errors as `path:line: reason`), checked against the corpus
(an unknown article or anchor is an error), stored in the index artifact and reloaded
with it. They act on the ranked hit list, after ranking (`apply`): the ranking itself,
and so the evaluation numbers, never see them. Validity is checked at question time,
so a rule stops acting the moment it expires, without a new ingest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import yaml

from .corpus import COUNTRIES, LANGUAGES, Corpus, Synonyms
from .corpus.synonyms import Words, match_at, term_words, yaml_line
from .errors import CorpusError

RULES_FILE = "rules.yaml"  # at the corpus root, beside synonyms.yaml
ACTIONS = ("pin", "hide", "boost")
KEYS = {"name", "when", "from", "until", "position", "by", *ACTIONS}
WHEN_KEYS = {"query", "lang", "country", "category"}
MAX_POSITION = 20
MAX_BOOST = 1.0


@dataclass
class Rule:
    name: str
    action: str  # pin, hide or boost
    article_id: str
    position: int | None  # the section (same in every translation); None: the whole article
    query: list[str]  # words or phrases, any language
    line: int  # where the rule starts in rules.yaml
    langs: list[str] = field(default_factory=list)  # empty: any
    countries: list[str] = field(default_factory=list)  # empty: any (none given counts as any)
    category: str | None = None
    rank: int = 1  # pin: 1-based position in the list
    by: float = 0.0  # boost: added to the score
    valid_from: str | None = None  # ISO datetime, UTC
    valid_until: str | None = None  # ISO datetime, UTC (exclusive)
    target: str = ""  # as written: "ord-tracking#anchor"

    def __post_init__(self):
        self._words: list[Words] = [term_words(q) for q in self.query]

    def active(self, now: datetime) -> bool:
        return (not self.valid_from or now >= datetime.fromisoformat(self.valid_from)) and not self.expired(now)

    def expired(self, now: datetime) -> bool:
        return bool(self.valid_until) and now >= datetime.fromisoformat(self.valid_until)

    def applies_to(self, texts: list[Words], lang: str, country: str | None, category: str | None) -> bool:
        if self.langs and lang not in self.langs:
            return False
        if self.countries and country not in self.countries:
            return False
        if self.category and category != self.category:  # only a search narrowed to it (a portal tile)
            return False
        return any(match_at(term, text, start) for term in self._words for text in texts
                   for start in range(len(text)))

    def targets(self, article_id: str, position: int) -> bool:
        return article_id == self.article_id and (self.position is None or position == self.position)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Fired:
    """A rule that matched a question, and what it did (or why it did nothing)."""

    rule: Rule
    effect: str


class Rules:
    def __init__(self, rules: list[Rule] | None = None):
        self.rules = rules or []
        self.clock = lambda: datetime.now(UTC)  # `qa rules test --at` sets another time

    def __len__(self) -> int:
        return len(self.rules)

    def matching(self, question: str, synonyms: Synonyms, lang: str, country: str | None,
                 category: str | None, now: datetime | None = None, any_time: bool = False) -> list[Rule]:
        """The active rules (`any_time`: also those outside their validity) whose
        condition the question meets, in file order."""
        if not self.rules:
            return []
        now = now or self.clock()
        candidates = [r for r in self.rules if any_time or r.active(now)]
        if not candidates:
            return []
        texts = [term_words(question)] + [term_words(t) for t in synonyms.expand(question)]
        return [r for r in candidates if r.applies_to(texts, lang, country, category)]

    def to_json(self) -> list[dict]:
        return [r.to_json() for r in self.rules]

    @classmethod
    def from_json(cls, data: list[dict] | None) -> Rules:
        return cls([Rule(**r) for r in data or []])


# -- parsing ------------------------------------------------------------------------------
def _scalar(path: Path, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise CorpusError(path, yaml_line(node), f"{what} must be a non-empty value")
    return str(node.value).strip()


def _list(path: Path, node: yaml.Node, what: str) -> list[tuple[str, int]]:
    """A scalar or a list of scalars, each with its line."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    out = [(_scalar(path, item, what), yaml_line(item)) for item in items]
    if not out:
        raise CorpusError(path, yaml_line(node), f"{what} must not be an empty list")
    return out


def _moment(path: Path, node: yaml.Node, key: str) -> str:
    """`from`/`until` as an ISO UTC datetime. A date alone means the whole day: `from`
    its start, `until` its end (the rule acts through that day, UTC)."""
    text = _scalar(path, node, f"`{key}`")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1 if key == "until" else 0), time(), UTC)
        else:
            moment = datetime.fromisoformat(text.replace(" ", "T"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise CorpusError(path, yaml_line(node), f"`{key}: {text}` is not a date (2026-12-04) or time "
                                             "(2026-12-04T18:00:00Z)") from None
    return moment.isoformat()


def _target(path: Path, node: yaml.Node, corpus: Corpus, action: str) -> tuple[str, int | None]:
    """`article-id` or `article-id#anchor` (the anchor in any language) -> id, position."""
    text = _scalar(path, node, f"`{action}`")
    article_id, _, anchor = text.partition("#")
    versions = [a for a in corpus.articles if a.id == article_id]
    if not versions:
        raise CorpusError(path, yaml_line(node), f"`{action}: {text}`: no article with id '{article_id}'")
    if not anchor:
        return article_id, 0 if action == "pin" else None
    for a in versions:
        for s in a.sections:
            if s.anchor == anchor:
                return article_id, s.position
    known = sorted({s.anchor for a in versions for s in a.sections if s.anchor})
    raise CorpusError(path, yaml_line(node), f"`{action}: {text}`: article '{article_id}' has no section "
                                         f"'#{anchor}' (its anchors: {', '.join(known)})")


def _when(path: Path, node: yaml.Node, corpus: Corpus) -> dict:
    if not isinstance(node, yaml.MappingNode):
        raise CorpusError(path, yaml_line(node), "`when` must be a mapping with `query` (and optionally lang, "
                                             "country, category)")
    fields = _mapping(path, node, WHEN_KEYS, "`when`")
    if "query" not in fields:
        raise CorpusError(path, yaml_line(node), "`when` needs `query`: the words or phrases the rule reacts to")
    out: dict = {"query": []}
    for term, line in _list(path, fields["query"], "a query term"):
        if not term_words(term):
            raise CorpusError(path, line, f"query term '{term}' has no letters or digits")
        out["query"].append(" ".join(term.split()))
    if "lang" in fields:
        out["langs"] = [v for v, _ in _list(path, fields["lang"], "`lang`")]
        bad = [v for v in out["langs"] if v not in LANGUAGES]
        if bad:
            raise CorpusError(path, yaml_line(fields["lang"]),
                              f"unknown language '{bad[0]}' (known: {', '.join(LANGUAGES)})")
    if "country" in fields:
        out["countries"] = [v.upper() for v, _ in _list(path, fields["country"], "`country`")]
        bad = [v for v in out["countries"] if v not in COUNTRIES]
        if bad:
            raise CorpusError(path, yaml_line(fields["country"]),
                              f"unknown country '{bad[0]}' (known: {', '.join(COUNTRIES)})")
    if "category" in fields:
        out["category"] = _scalar(path, fields["category"], "`category`")
        known = sorted({a.category for a in corpus.articles})
        if out["category"] not in known:
            raise CorpusError(path, yaml_line(fields["category"]),
                              f"unknown category '{out['category']}' (known: {', '.join(known)})")
    return out


def _mapping(path: Path, node: yaml.MappingNode, allowed: set[str], what: str) -> dict[str, yaml.Node]:
    out: dict[str, yaml.Node] = {}
    for key_node, value in node.value:
        key = str(key_node.value)
        if key not in allowed:
            raise CorpusError(path, yaml_line(key_node),
                              f"unknown key '{key}' in {what} (allowed: {', '.join(sorted(allowed))})")
        if key in out:
            raise CorpusError(path, yaml_line(key_node), f"key '{key}' appears twice in {what}")
        out[key] = value
    return out


def _number(path: Path, node: yaml.Node, key: str, kind: type, low: float, high: float):
    text = _scalar(path, node, f"`{key}`")
    try:
        value = kind(text)
    except ValueError:
        raise CorpusError(path, yaml_line(node), f"`{key}: {text}` must be a number") from None
    if not low <= value <= high:
        raise CorpusError(path, yaml_line(node), f"`{key}: {text}` must be between {low} and {high}")
    return value


def _rule(path: Path, node: yaml.Node, n: int, corpus: Corpus, names: dict[str, int]) -> Rule:
    line = yaml_line(node)
    if not isinstance(node, yaml.MappingNode):
        raise CorpusError(path, line, f"rule {n} must be a mapping with name, when and one of pin, hide, boost")
    fields = _mapping(path, node, KEYS, f"rule {n}")
    name = _scalar(path, fields["name"], "`name`") if "name" in fields else f"rule-{n}"
    if name in names:
        raise CorpusError(path, line, f"rule name '{name}' is already used by the rule at line {names[name]}")
    names[name] = line
    actions = [a for a in ACTIONS if a in fields]
    if len(actions) != 1:
        raise CorpusError(path, line, f"rule '{name}' needs exactly one action of pin, hide, boost "
                                      f"(has {', '.join(actions) or 'none'})")
    action = actions[0]
    if "when" not in fields:
        raise CorpusError(path, line, f"rule '{name}' needs `when:` with `query:`")
    article_id, position = _target(path, fields[action], corpus, action)
    rule = Rule(name=name, action=action, article_id=article_id, position=position, line=line,
                target=_scalar(path, fields[action], action), **_when(path, fields["when"], corpus))
    if "position" in fields:
        if action != "pin":
            raise CorpusError(path, yaml_line(fields["position"]), "`position` belongs to a `pin` rule")
        rule.rank = _number(path, fields["position"], "position", int, 1, MAX_POSITION)
    if "by" in fields:
        if action != "boost":
            raise CorpusError(path, yaml_line(fields["by"]), "`by` belongs to a `boost` rule")
        rule.by = _number(path, fields["by"], "by", float, -MAX_BOOST, MAX_BOOST)
    elif action == "boost":
        raise CorpusError(path, line, f"boost rule '{name}' needs `by:` (a score between -1 and 1, e.g. 0.1)")
    for key in ("from", "until"):
        if key in fields:
            setattr(rule, f"valid_{key}", _moment(path, fields[key], key))
    if rule.valid_from and rule.valid_until and rule.valid_until <= rule.valid_from:
        raise CorpusError(path, yaml_line(fields["until"]), f"rule '{name}' ends (`until`) before it starts (`from`)")
    return rule


def load_rules(path: Path | str, corpus: Corpus) -> Rules:
    """Parse and check a rules file against `corpus`; a missing file means no rules.
    Raises `CorpusError` (`path:line: reason`) at the first problem."""
    path = Path(path)
    if not path.is_file():
        return Rules()
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError as e:
        raise CorpusError(path, 1, f"not UTF-8 ({e.reason})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise CorpusError(path, mark.line + 1 if mark else 1, f"invalid YAML: {getattr(e, 'problem', e)}") from None
    if root is None:
        return Rules()
    if not isinstance(root, yaml.SequenceNode):
        raise CorpusError(path, yaml_line(root), "the file must be a list of rules, each starting with `- name: …`")
    names: dict[str, int] = {}
    return Rules([_rule(path, node, n, corpus, names) for n, node in enumerate(root.value, 1)])


# -- applying -----------------------------------------------------------------------------
def _hit(searcher, result, group: int, rule: Rule, hit_type):
    """A hit for `group` shown in the result's language, with the score ranking gave it."""
    ev = result.evidence
    s_no = int(ev.shown[group])
    section = searcher.index.sections[s_no]
    return hit_type(section=section, article=searcher.index.articles[searcher.index.section_article[s_no]],
               score=round(float(ev.unlifted[group]), 4),
               available_languages=searcher.article_langs[section.article_id],
               group=group, rule=rule.name)


def _eligible(searcher, result, group: int, country: str | None, category: str | None) -> bool:
    s_no = int(result.evidence.shown[group])
    if country and not searcher._country_mask(country)[s_no]:
        return False
    return not category or searcher.section_category[s_no] == category


def apply(searcher, result, rules: list[Rule], country: str | None, category: str | None, limit: int,
          hit_type) -> None:
    """Act on `result.hits` (ranked with room to spare): hide, then boost (re-sorted),
    then pin at their positions; cut to `limit`. `hit_type` is `qa.search.Hit`, passed
    in because rules are part of the index, which search imports. Each rule's effect goes to
    `result.rules`. A pin means the support team has an answer: `answered` is true."""
    hits = result.hits
    for rule in rules:
        if rule.action == "hide":
            kept = [h for h in hits if not rule.targets(h.article.id, h.section.position)]
            result.rules.append(Fired(rule, f"hid {len(hits) - len(kept)} result(s)"))
            hits = kept
        elif rule.action == "boost":
            boosted = [h for h in hits if rule.targets(h.article.id, h.section.position)]
            for h in boosted:
                h.score = round(h.score + rule.by, 4)
                h.rule = rule.name
            hits.sort(key=lambda h: -h.score)
            result.rules.append(Fired(rule, f"boosted {len(boosted)} result(s) by {rule.by:+g}"))
    for rule in sorted((r for r in rules if r.action == "pin"), key=lambda r: r.rank):
        group = searcher.group_of.get((rule.article_id, rule.position or 0))
        if group is None or not _eligible(searcher, result, group, country, category):
            result.rules.append(Fired(rule, "did nothing: the section does not apply to this country or category"))
            continue
        hits = [h for h in hits if h.group != group]
        hits.insert(min(rule.rank, len(hits) + 1) - 1, _hit(searcher, result, group, rule, hit_type))
        result.rules.append(Fired(rule, f"pinned {rule.target} at position {min(rule.rank, len(hits))}"))
        result.answered = True
    result.hits = hits[:limit]


def status(rule: Rule, now: datetime) -> str:
    if rule.active(now):
        return "active" + (f" until {rule.valid_until}" if rule.valid_until else "")
    if rule.expired(now):
        return f"expired {rule.valid_until}: does nothing"
    return f"not yet active (from {rule.valid_from}): does nothing"
