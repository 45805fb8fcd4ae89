"""Operator synonyms: parsing and validation of corpus/synonyms.yaml, query expansion,
and the shipped glossary."""

import pytest

from qa.corpus import CorpusError, load_corpus
from qa.corpus.synonyms import MAX_EXTRA_TERMS, SYNONYMS_FILE, Synonyms, load_synonyms

from .conftest import CORPUS

IP = ["ИП", "ИПшка", "индивидуальный предприниматель", "Einzelunternehmer", "sole proprietor"]
OFFICE = ["личный кабинет", "Mein Konto", "My Office"]
BANK = ["Konto", "счёт", "bank account"]


def write(tmp_path, text: str):
    path = tmp_path / SYNONYMS_FILE
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path, text: str) -> CorpusError:
    path = write(tmp_path, text)
    with pytest.raises(CorpusError) as e:
        load_synonyms(path)
    assert str(e.value).startswith(f"{path}:{e.value.line}: ")
    return e.value


# --- parsing ---------------------------------------------------------------------------


def test_flow_and_block_groups_with_comments(tmp_path):
    path = write(
        tmp_path,
        "# glossary\n"
        "- [ИП, индивидуальный предприниматель, sole   proprietor]  # one per line\n"
        "\n"
        "- - Kaspi\n"
        "  - 'Каспи'\n"
        '- ["910", форма 910]\n',
    )
    assert load_synonyms(path).groups == [
        ["ИП", "индивидуальный предприниматель", "sole proprietor"],
        ["Kaspi", "Каспи"],
        ["910", "форма 910"],
    ]


def test_missing_or_empty_file_means_no_synonyms(tmp_path):
    assert load_synonyms(tmp_path / "nothing.yaml").groups == []
    assert load_synonyms(write(tmp_path, "# only a comment\n")).groups == []
    assert Synonyms().expand("ИП") == []


def test_json_round_trip_keeps_the_expansion():
    synonyms = Synonyms([IP, OFFICE])
    again = Synonyms.from_json(synonyms.to_json())
    assert again.groups == synonyms.groups
    assert again.expand("личный кабинет ИП") == synonyms.expand("личный кабинет ИП") != []
    assert Synonyms.from_json(None).groups == []


# --- validation: every error names its line ----------------------------------------------


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("- [ИП, Einzelunternehmer]\n- [Kaspi, Каспи\n- [a, b]\n", 3, "invalid YAML"),
        ("groups:\n  - [ИП, Einzelunternehmer]\n", 1, "must be a list of groups"),
        ("- [ИП, Einzelunternehmer]\n- Kaspi\n", 2, "group 2 must be a list of terms"),
        ("- [ИП, Einzelunternehmer]\n- {Kaspi: Каспи}\n", 2, "group 2 must be a list of terms"),
        ("- [ИП, Einzelunternehmer]\n\n- [Kaspi]\n", 3, "group 2 has 1 term(s); a group needs at least 2"),
        ("- []\n", 1, "group 1 has 0 term(s)"),
        ("- [форма 910, 910]\n", 1, "must be a string, not int: quote it (\"910\")"),
        ("- - ja\n  - yes\n", 2, "must be a string, not bool"),
        ("- - ИП\n  - ~\n", 2, "must be a string, not null"),
        ("- - ИП\n  - [a, b]\n", 2, "not a list or mapping"),
        ("- - ИП\n  - " + "x" * 61 + "\n", 2, "has 61 characters; 1-60 are allowed"),
        ("- - ИП\n  - ''\n", 2, "has 0 characters"),
        ("- - ИП\n  - '—'\n", 2, "has no letters or digits"),
        ("- - Kaspi\n  - Каспи\n  - KASPI\n", 3, "term 'KASPI' repeats 'Kaspi' (line 1) in the same group"),
        ("- - Einzelunternehmer\n  - Einzelunternehmers\n", 2, "repeats 'Einzelunternehmer'"),
    ],
)
def test_bad_file_is_reported_at_the_offending_line(tmp_path, text, line, reason):
    err = error_of(tmp_path, text)
    assert reason in err.reason
    assert err.line == line


def test_a_term_in_two_groups_names_both_lines(tmp_path):
    err = error_of(
        tmp_path,
        "- [ИП, Einzelunternehmer]\n"
        "- [Kaspi, Каспи]\n"
        "- - sole proprietor\n"
        "  - ип\n",
    )
    assert err.line == 4
    assert "term 'ип' is already in the group at line 1 (as 'ИП')" in err.reason


def test_the_same_words_inflected_count_as_the_same_term(tmp_path):
    err = error_of(
        tmp_path, "- [личный кабинет, My Office]\n- [Mein Konto, в личном кабинете]\n- [личном кабинете, x]\n"
    )
    assert err.line == 3 and "already in the group at line 1" in err.reason
    # A longer term that contains a term of another group is allowed: the longer match wins.
    assert len(load_synonyms(write(tmp_path, "- [Mein Konto, My Office]\n- [Konto, bank account]\n"))) == 2


def test_not_utf8_is_reported(tmp_path):
    path = tmp_path / SYNONYMS_FILE
    path.write_bytes("- [ИП, Einzelunternehmer]\n".encode("cp1251"))
    with pytest.raises(CorpusError) as e:
        load_synonyms(path)
    assert e.value.line == 1 and "not UTF-8" in e.value.reason


# --- expansion ---------------------------------------------------------------------------


@pytest.fixture
def synonyms():
    return Synonyms([IP, OFFICE, BANK, ["Kaspi", "Каспи"], ["счёт-фактура", "Rechnung"]])


def test_a_term_brings_the_other_terms_of_its_group(synonyms):
    assert synonyms.expand("Нужно ли ИП платить налог?") == IP[1:]
    assert synonyms.expand("Wie lange dauert die Prüfung?") == []


@pytest.mark.parametrize(
    "question, expected_from",
    [
        ("как ИПшке получать бонусы", "ИПшка"),
        ("бонусы с ИПшкой", "ИПшка"),
        ("Bonus als Einzelunternehmers", "Einzelunternehmer"),
        ("документы индивидуального предпринимателя", "индивидуальный предприниматель"),
        ("Where do sole proprietors upload the act?", "sole proprietor"),
    ],
)
def test_inflected_forms_match(synonyms, question, expected_from):
    assert synonyms.expand(question) == [t for t in IP if t != expected_from]


def test_multi_word_terms_need_all_their_words_in_order(synonyms):
    assert synonyms.expand("где в личном кабинете") == ["Mein Konto", "My Office"]
    assert synonyms.expand("кабинет личный") == []
    assert synonyms.expand("a sole trader or a proprietor") == []


def test_case_yo_and_punctuation_do_not_matter(synonyms):
    assert synonyms.expand("KASPI gold") == ["Каспи"]
    assert synonyms.expand("на счет") == ["Konto", "bank account"]
    assert synonyms.expand("счёт фактура") == ["Rechnung"]  # `-` is just a word break


def test_whole_words_only(synonyms):
    assert synonyms.expand("ИПН удерживается?") == []  # ИПН is a tax, not ИП
    assert synonyms.expand("Kontoauszug") == []


def test_a_match_inside_a_longer_match_of_another_group_does_not_count(synonyms):
    assert synonyms.expand("wo in meinem Konto") == ["личный кабинет", "My Office"]
    assert synonyms.expand("Konto ändern") == ["счёт", "bank account"]
    # Both count when each occurs on its own.
    assert synonyms.expand("Mein Konto: Konto ändern") == ["личный кабинет", "счёт", "My Office", "bank account"]


def test_no_term_the_question_has_and_no_duplicates(synonyms):
    extra = synonyms.expand("ИП, он же индивидуальный предприниматель, ИП и ИПшка")
    assert extra == ["Einzelunternehmer", "sole proprietor"]
    assert len(set(extra)) == len(extra)
    dup = Synonyms([["Kaspi", "Каспи", "Kaspi Gold"], ["Gold", "Золото"]])
    assert dup.expand("Kaspi Gold") == ["Каспи"]


def test_groups_in_question_order_and_terms_round_robin(synonyms):
    assert synonyms.expand("Kaspi или ИП") == ["Каспи", "ИПшка", "индивидуальный предприниматель",
                                               "Einzelunternehmer", "sole proprietor"]
    assert synonyms.expand("ИП или Kaspi") == ["ИПшка", "Каспи", "индивидуальный предприниматель",
                                               "Einzelunternehmer", "sole proprietor"]
    assert synonyms.expand("ИП или Kaspi") == synonyms.expand("ИП или Kaspi")


def test_expansion_is_bounded_and_every_matched_group_gets_a_share():
    groups = [[f"term{g}x{t}" for t in range(5)] for g in range(6)]
    question = " ".join(f"term{g}x0" for g in range(6))
    extra = Synonyms(groups).expand(question)
    assert len(extra) == MAX_EXTRA_TERMS < 6 * 4
    assert {t.split("x")[0] for t in extra} == {f"term{g}" for g in range(6)}
    assert extra[:6] == [f"term{g}x1" for g in range(6)]


def test_terms_in_lists_what_matches_in_file_order(synonyms):
    assert synonyms.terms_in("Каспи, ИПшки и личный кабинет") == ["ИПшка", "личный кабинет", "Каспи"]
    assert synonyms.terms_in("nothing here") == []


# --- the shipped glossary ---------------------------------------------------------------------


def test_the_shipped_glossary_loads_and_is_modest():
    synonyms = load_synonyms(CORPUS / SYNONYMS_FILE)
    assert 20 <= len(synonyms) <= 40
    assert synonyms.groups[0][:2] == ["ИП", "индивидуальный предприниматель"]
    assert "Einzelunternehmer" in synonyms.expand("Бонусы для ИП")


def test_every_shipped_term_occurs_in_an_article():
    """The glossary is built from the articles' own terms: each term matches (the way a
    question does) somewhere in an article's title, tags, sections or `questions:`."""
    synonyms = load_synonyms(CORPUS / SYNONYMS_FILE)
    found: set[str] = set()
    for a in load_corpus(CORPUS).articles:
        for part in [a.title, *a.tags, *a.questions, *(s.title for s in a.sections), *(s.plain for s in a.sections)]:
            found.update(synonyms.terms_in(part))
    missing = [t for group in synonyms.groups for t in group if t not in found]
    assert missing == []
