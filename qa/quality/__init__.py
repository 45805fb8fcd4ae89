"""Quality tooling: how good and how fast the answering flow is.

    evaluate.py       R@k, MRR and no-answer precision/recall on labelled questions
    sets.py           the labelled sets (dev, XQuAD, the held-out members' set) and their corpora
    tuning.py         choosing the ranking weights by a procedure; leave-one-category-out
    answerability.py  fitting the no-answer decision (qa/answerability.py) by a procedure
    bench.py          the real server under load, a per-step breakdown, FAISS at scale
"""
