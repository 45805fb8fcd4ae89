import re

import pytest

from qa.corpus import CorpusError, load_corpus, parse_article, slugify, unique_anchors

from .conftest import CORPUS, ROOT, write_article

SHARED_CORPUS = ROOT.parent / "shared" / "corpus"

GOOD_FRONT = """---
id: acc-x
lang: de
title: Passwort ändern
category: account
countries: [ALL]
url: https://helpdesk.example/de/account/acc-x
updated: 2026-09-14
tags: [Passwort]
---
"""


def parse(text, name="de/account/acc-x.md", tmp_path=None):
    return parse_article(name, text)


def error_of(text) -> CorpusError:
    with pytest.raises(CorpusError) as e:
        parse(text)
    return e.value


@pytest.mark.parametrize(
    "key, line",
    [("id", 2), ("lang", 3), ("title", 4), ("category", 5), ("countries", 6), ("url", 7)],
)
def test_each_missing_required_key_is_reported_at_its_line(key, line):
    lines = GOOD_FRONT.splitlines()
    text = "\n".join(ln if not ln.startswith(f"{key}:") else f"{key}:" for ln in lines) + "\n# Passwort ändern\n"
    err = error_of(text)
    assert f"missing required key '{key}'" in err.reason
    assert err.line == line
    assert str(err).startswith(f"de/account/acc-x.md:{line}: ")


def test_unknown_language():
    err = error_of(GOOD_FRONT.replace("lang: de", "lang: fr") + "# Passwort ändern\n")
    assert err.line == 3 and "lang 'fr'" in err.reason


def test_language_must_match_folder():
    err = error_of(GOOD_FRONT.replace("lang: de", "lang: ru") + "# Passwort ändern\n")
    assert "under 'de/'" in err.reason


def test_unknown_country_code():
    err = error_of(GOOD_FRONT.replace("[ALL]", "[DE, XX]") + "# Passwort ändern\n")
    assert err.line == 6 and "XX" in err.reason


def test_title_must_equal_heading():
    err = error_of(GOOD_FRONT + "\n# Something else\n")
    assert err.line == 12 and "differs from title" in err.reason


def test_missing_front_matter_and_bad_yaml():
    assert "front matter" in error_of("# Passwort ändern\n").reason
    err = error_of(GOOD_FRONT.replace("tags: [Passwort]", "tags: [Passwort") + "# Passwort ändern\n")
    assert "invalid YAML" in err.reason


def test_missing_title_heading_and_two_titles():
    assert "missing the `# ` title" in error_of(GOOD_FRONT + "\nno heading\n").reason
    err = error_of(GOOD_FRONT + "# Passwort ändern\n\n# Passwort ändern\n")
    assert "more than one" in err.reason and err.line == 13


def test_bad_url():
    assert "url" in error_of(GOOD_FRONT.replace("https://", "ftp://") + "# Passwort ändern\n").reason


def test_duplicate_id_per_language_is_an_error_but_other_languages_share_ids(tmp_path):
    write_article(tmp_path, "de", "same", "Text.", category="faq")
    write_article(tmp_path, "de", "same", "Text.", category="orders")
    write_article(tmp_path, "ru", "same", "Текст.", category="faq")
    corpus = load_corpus(tmp_path)
    assert len(corpus.articles) == 2
    assert len(corpus.errors) == 1 and "already used in 'de'" in corpus.errors[0].reason


@pytest.mark.parametrize(
    "heading, slug",
    [
        ("Что подготовить", "что-подготовить"),
        ("Passwort zurücksetzen: Schritt für Schritt", "passwort-zurücksetzen-schritt-für-schritt"),
        ("Straße & Größe (Österreich)", "straße-größe-österreich"),
        ("Если не получилось?!", "если-не-получилось"),
        ("Ёлка — ёж", "ёлка-ёж"),
        ("What's new in 2026", "whats-new-in-2026"),
        ("!!!", "section"),
    ],
)
def test_slugs_keep_cyrillic_and_umlauts(heading, slug):
    assert slugify(heading) == slug


def test_duplicate_headings_get_suffixes():
    assert unique_anchors(["Schritte", "Hinweis", "Schritte", "Schritte"]) == [
        "schritte", "hinweis", "schritte-1", "schritte-2"]


def test_sections_intro_nesting_markers_and_steps():
    text = GOOD_FRONT + """
# Passwort ändern

Intro text with **bold**.

## Schritte

1. Öffnen Sie `Mein Konto → Einstellungen`.
2. Klicken Sie auf Speichern.
   - a nested bullet
3. Fertig.

### Unterpunkt

Still in the steps section.

## Für Kasachstan
<!-- countries: KZ, KG -->

Nur für KZ.

## Für Deutschland

<!-- countries: DE -->
Nur für DE.

## Schritte

```
## not a heading
```
"""
    a = parse(text)
    titles = [s.title for s in a.sections]
    assert titles == ["Passwort ändern", "Schritte", "Für Kasachstan", "Für Deutschland", "Schritte"]
    intro, steps, kz, de, dup = a.sections
    assert intro.anchor == "" and intro.position == 0 and "Intro text" in intro.text
    assert steps.steps == ["Öffnen Sie Mein Konto → Einstellungen.", "Klicken Sie auf Speichern.", "Fertig."]
    assert "### Unterpunkt" in steps.text and "Still in the steps section." in steps.text
    assert steps.text.startswith("1. Öffnen") and "2. Klicken" in steps.text
    assert kz.countries == ["KZ", "KG"] and "<!--" not in kz.text
    assert de.countries == ["DE"] and de.text == "Nur für DE."
    assert steps.countries == ["ALL"]
    assert dup.anchor == "schritte-1" and "## not a heading" in dup.text
    assert [s.line for s in a.sections] == [12, 16, 27, 32, 37]


def test_article_without_intro_has_no_intro_section():
    a = parse(GOOD_FRONT + "# Passwort ändern\n\n## Eins\n\nText.\n")
    assert [s.position for s in a.sections] == [1]


def test_bad_country_marker_is_reported_at_its_line():
    err = error_of(GOOD_FRONT + "# Passwort ändern\n\n## Eins\n<!-- countries: ZZ -->\nText.\n")
    assert err.line == 14 and "ZZ" in err.reason


def test_long_section_is_kept_whole():
    body = " ".join(f"Wort{i}" for i in range(5000))
    a = parse(GOOD_FRONT + f"# Passwort ändern\n\n## Lang\n\n{body}\n")
    assert len(a.sections[0].plain.split()) == 5000
    assert a.sections[0].text.endswith("Wort4999")


def test_sample_corpus_parses_cleanly_and_translations_align():
    corpus = load_corpus(CORPUS)
    assert corpus.errors == []
    assert len(corpus.articles) == len([p for p in CORPUS.rglob("*.md") if p.name != "README.md"])
    assert {a.category for a in corpus.articles} >= {"verification", "account", "orders", "payouts"}
    by_id = {}
    for a in corpus.articles:
        by_id.setdefault(a.id, []).append([s.position for s in a.sections])
    assert all(len({tuple(p) for p in positions}) == 1 for positions in by_id.values())


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="needs ../shared/corpus, the editors' copy")
def test_corpus_mirrors_the_editors_copy():
    ours = {p.relative_to(CORPUS): p.read_bytes() for p in CORPUS.rglob("*.md") if p.name != "README.md"}
    theirs = {p.relative_to(SHARED_CORPUS): p.read_bytes() for p in SHARED_CORPUS.rglob("*.md")}
    assert sorted(ours) == sorted(theirs)
    changed = [str(p) for p in ours if ours[p] != theirs[p]]
    assert changed == []


def test_every_link_between_articles_resolves():
    """A link to another help article names an existing article, in that language, and
    an existing section when it has an #anchor."""
    corpus = load_corpus(CORPUS)
    by_url = {a.url: a for a in corpus.articles}
    prefix = "https://helpdesk.atomydoc.ru/"
    broken, checked = [], 0
    for a in corpus.articles:
        for s in a.sections:
            for url in re.findall(r"\]\((https?://[^)\s]+)\)", s.text):
                if not url.startswith(prefix):
                    continue
                checked += 1
                page, _, anchor = url.partition("#")
                target = by_url.get(page)
                if target is None or (anchor and anchor not in {x.anchor for x in target.sections}):
                    broken.append(f"{a.path}:{s.line}: {url}")
    assert checked > 100
    assert broken == []


QUESTIONS_FRONT = GOOD_FRONT.replace("tags: [Passwort]\n", "tags: [Passwort]\nquestions:\n{items}")


def with_questions(*items: str) -> str:
    body = "".join(f"  - {i}\n" for i in items)
    return QUESTIONS_FRONT.replace("{items}", body) + "# Passwort ändern\n\nText.\n"


def test_questions_are_parsed_and_whitespace_normalised():
    a = parse(with_questions('"Passwort  vergessen, was tun?"', "Wie ändere ich mein Passwort"))
    assert a.questions == ["Passwort vergessen, was tun?", "Wie ändere ich mein Passwort"]
    assert parse(GOOD_FRONT + "# Passwort ändern\n").questions == []


@pytest.mark.parametrize(
    "items, line, reason",
    [
        (["Passwort vergessen", "ab"], 12, "item 2 has 2 characters"),
        (["x" * 201], 11, "item 1 has 201 characters"),
        (["Passwort vergessen", "Konto gesperrt", "passwort  VERGESSEN"], 13, "item 3 repeats item 1"),
        (["Passwort vergessen", "[1, 2]"], 12, "item 2 must be a string"),
    ],
)
def test_bad_questions_are_reported_at_their_line(items, line, reason):
    err = error_of(with_questions(*items))
    assert reason in err.reason
    assert err.line == line


def test_questions_limits_count_and_type():
    err = error_of(with_questions(*(f"Frage Nummer {n}" for n in range(31))))
    assert "at most 30" in err.reason and err.line == 10
    err = error_of(
        GOOD_FRONT.replace("tags: [Passwort]\n", "tags: [Passwort]\nquestions: nur eine\n") + "# Passwort ändern\n"
    )
    assert "must be a list" in err.reason and err.line == 10
    assert len(parse(with_questions(*(f"Frage Nummer {n}" for n in range(30)))).questions) == 30


def test_sample_corpus_carries_questions():
    corpus = load_corpus(CORPUS)
    assert all(3 <= len(a.questions) <= 30 for a in corpus.articles)
