"""Quality tooling: how good and how fast the answering flow is.

    evaluate.py  R@k, MRR and no-answer precision/recall on labelled questions
    tuning.py    choosing the ranking weights by a procedure; leave-one-category-out
    bench.py     the real server under load, a per-step breakdown, FAISS at scale
"""
