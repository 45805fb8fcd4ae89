"""`qa model export-onnx`: a sentence-transformers e5 folder -> an ONNX model folder
that `qa.encoder.onnx` serves without torch, optionally int8-quantised.

sentence-transformers' own ONNX backend (`backend="onnx"`) goes through optimum's
exporter. Its newest release on the registry, optimum-onnx 0.1.0, requires
transformers < 4.58, while sentence-transformers 6.2 requires transformers >= 5;
installed beside transformers 5 anyway, `optimum.onnxruntime` fails to import
(`is_offline_mode` is gone from `transformers.utils`). The transformer is therefore
exported with `torch.onnx.export` directly, and quantised with onnxruntime's
`quantize_dynamic`, which is what optimum would call.

Quantisation is per channel, and the feed-forward output projections stay float:
their inputs (the GELU outputs) have the widest ranges, and one scale per tensor
for those activations is what cost a fine-tuned model its quality (see
docs/quality-training.md, "int8").
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..encoder.onnx import CONFIG_FILE, MODEL_FILE
from ..encoder.version import folder_version, write_version
from ..errors import ModelFolderError


class _TokenStates:
    """The transformer with a plain (input_ids, attention_mask) -> states signature."""

    def __new__(cls, auto_model):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = auto_model

            def forward(self, input_ids, attention_mask):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        return Wrapped().eval()


def _feed_forward_outputs(onnx_file: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    return [n.name for n in graph.node
            if n.op_type == "MatMul" and n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name]


def export_onnx(source: Path | str, out: Path | str, int8: bool = True) -> Path:
    """Write `out` (an ONNX model folder) from the SentenceTransformer folder `source`."""
    import torch
    from sentence_transformers import SentenceTransformer

    source, out = Path(source), Path(out)
    model = SentenceTransformer(str(source), device="cpu", local_files_only=True)
    transformer = model[0]
    pooling = model[1]
    if getattr(pooling, "pooling_mode", "mean") not in ("mean", None) and not getattr(
        pooling, "pooling_mode_mean_tokens", True
    ):
        raise ModelFolderError(f"{source}: only mean pooling is exported")
    wrapped = _TokenStates(transformer.auto_model)
    example = transformer.tokenizer(["query: ein Beispiel"], return_tensors="pt")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(
                wrapped,
                (example["input_ids"], example["attention_mask"]),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["token_embeddings"],
                dynamic_axes={
                    n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_embeddings")
                },
                opset_version=17,
                dynamo=False,
            )
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(out / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=_feed_forward_outputs(fp32))
        else:
            shutil.copy(fp32, out / MODEL_FILE)
    tokenizer_json = source / "tokenizer.json"
    shutil.copy(tokenizer_json, out / "tokenizer.json")
    config = {
        "prompts": {k: v for k, v in model.prompts.items() if v},
        "max_seq_length": model.max_seq_length,
        "dimension": model.get_embedding_dimension(),
        "pooling": "mean",
        "normalize": True,
        "pad_token_id": transformer.tokenizer.pad_token_id,
        "quantization": "dynamic int8 (onnxruntime quantize_dynamic, QInt8 weights per channel, "
        "feed-forward outputs float)" if int8 else "none (fp32)",
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    write_version(out, exported_by="qa model export-onnx", source=str(source),
                  source_version=folder_version(str(source)), int8=int8)
    return out
