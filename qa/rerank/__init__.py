"""The second stage: it rereads the first stage's top candidates together with the
question (qa/search.py asks it for the final question, not on every keystroke).

    cross.py    CrossEncoder: question and section in one pass (ONNX, no torch)
    stage.py    Reranker: which candidates it rereads and how its score joins the first stage's

Its model is trained on the operator's own corpus (`qa train-rerank`,
qa/training/cross_train.py); a service without one answers with the first stage.
"""

from .cross import CrossEncoder, is_cross_folder, section_text
from .stage import Reranker

__all__ = ["CrossEncoder", "Reranker", "is_cross_folder", "section_text"]
