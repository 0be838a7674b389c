"""The JAX all-MiniLM-L6-v2 against sentence-transformers, and label tables built with it.

tests/data/minilm_reference.npz holds sentence-transformers' token ids and embeddings of 60
texts (scripts/make_minilm_fixture.py, run with torch): VGG-Sound labels, templated labels,
accents and other scripts, empty strings and texts past the 256-token limit.
"""

import jax
import numpy as np
import pytest

from asf_jax import embed_labels as embed_labels_cli
from asf_jax.embeddings import (
    DEFAULT_TEMPLATES,
    LabelEmbeddings,
    embed_labels,
    embed_texts_like,
    load_label_embeddings,
    save_label_embeddings,
)
from asf_jax.minilm import BATCH_SIZE, load_sentence_encoder
from scripts.make_minilm_fixture import TEMPLATED_LABELS, TEMPLATES
from tests.conftest import DATA

REFERENCE = np.load(DATA / "minilm_reference.npz")
TEXTS = REFERENCE["texts"].tolist()


def reference(text: str) -> np.ndarray:
    return REFERENCE["embeddings"][TEXTS.index(text)]


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


@pytest.fixture(scope="module", autouse=True)
def optimized_compiles():
    """This fixed-size model's run time, not its compile time, dominates: optimise it."""
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", True)


@pytest.fixture(scope="module")
def encoder():
    return load_sentence_encoder()


@pytest.fixture(scope="module")
def batch_embeddings(encoder):
    return encoder.encode(TEXTS)


def test_token_ids_match_sentence_transformers(encoder):
    ids = encoder.token_ids(TEXTS)
    assert max(map(len, ids)) == encoder.max_seq_length == 256  # the long texts are truncated
    for text, row, expected, length in zip(TEXTS, ids, REFERENCE["token_ids"],
                                           REFERENCE["lengths"], strict=True):
        assert row == expected[:length].tolist(), text


def test_embeddings_match_sentence_transformers(batch_embeddings):
    assert batch_embeddings.shape == (60, 384) and batch_embeddings.dtype == np.float32
    cosine = np.sum(unit(batch_embeddings) * unit(REFERENCE["embeddings"]), axis=1)
    assert cosine.min() >= 0.9999, TEXTS[int(cosine.argmin())]
    np.testing.assert_allclose(batch_embeddings, REFERENCE["embeddings"], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch_embeddings, axis=1), 1, rtol=1e-6)


def test_batch_composition_does_not_change_an_embedding(encoder, batch_embeddings):
    """Texts alone, and in a batch of more than BATCH_SIZE in another order."""
    np.testing.assert_allclose(np.concatenate([encoder.encode([text]) for text in TEXTS[:10]]),
                               batch_embeddings[:10], atol=2e-6)
    short = [i for i, length in enumerate(REFERENCE["lengths"]) if length <= 16]
    mixed = short[::-1] + short[:BATCH_SIZE + 1 - len(short)]
    assert len(mixed) > BATCH_SIZE
    np.testing.assert_allclose(encoder.encode([TEXTS[i] for i in mixed]), batch_embeddings[mixed],
                               atol=2e-6)


def test_more_padding_does_not_change_an_embedding(encoder, batch_embeddings, monkeypatch):
    """Short texts padded to 256 tokens instead of their usual 16 or 32: pads are masked."""
    short = [i for i, length in enumerate(REFERENCE["lengths"]) if length < 32][:8]
    monkeypatch.setattr(encoder, "_token_buckets", (encoder.max_seq_length,))
    np.testing.assert_allclose(encoder.encode([TEXTS[i] for i in short]),
                               batch_embeddings[short], atol=2e-6)


def test_encode_takes_a_sequence(encoder):
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="one string"):
        encoder.encode("dog barking")


def test_templates_are_ensembled_as_clip_does():
    """Each template's text encoded, normalised, averaged, renormalised; stored with the table."""
    table = embed_labels(TEMPLATED_LABELS, "minilm", TEMPLATES)
    expected = unit(np.stack([np.mean([reference(t.replace("{label}", label)) for t in TEMPLATES],
                                      axis=0) for label in TEMPLATED_LABELS]))
    np.testing.assert_allclose(table.table, expected, atol=1e-5)
    assert (table.encoder, table.templates, table.class_names) == (
        "minilm", TEMPLATES, TEMPLATED_LABELS)

    single = embed_labels(["dog barking"], "minilm", ["the sound of {label}"])
    np.testing.assert_allclose(single.table[0], reference("the sound of dog barking"), atol=1e-5)
    plain = embed_labels(["dog barking"], "minilm", ["{label}"])
    np.testing.assert_allclose(plain.table[0], reference("dog barking"), atol=1e-5)


def test_default_prompt_is_the_measured_one():
    default = embed_labels(["dog barking"], "minilm")
    assert default.templates == DEFAULT_TEMPLATES == ("a recording of a {label}",)
    np.testing.assert_array_equal(default.table,
                                  embed_labels(["dog barking"], "minilm", DEFAULT_TEMPLATES).table)


def test_table_saved_without_templates_embeds_new_texts_as_is():
    """Sentence-encoder tables saved before templates were stored read the labels as is."""
    old = LabelEmbeddings(np.eye(1, 384, dtype=np.float32), ("dog barking",), "minilm")
    new = embed_texts_like(old, ["dog barking"])
    assert new.templates == ("{label}",)
    np.testing.assert_allclose(new.table[0], reference("dog barking"), atol=1e-5)


def test_file_style_names_read_as_words():
    table = embed_labels(["french_horn", "french-horn"], "minilm", ["the sound of {label}"])
    np.testing.assert_allclose(table.table, [reference("the sound of french horn")] * 2,
                               atol=1e-5)
    assert table.class_names == ("french_horn", "french-horn")


def test_new_texts_are_embedded_like_a_stored_table(tmp_path):
    built = embed_labels(["dog barking", "french horn"], "minilm", TEMPLATES[1:])
    path = tmp_path / "minilm.npz"
    save_label_embeddings(built, path)
    stored = load_label_embeddings(path, ["dog barking", "french horn"])
    assert stored.templates == TEMPLATES[1:] and stored.encoder == "minilm"
    np.testing.assert_array_equal(stored.table, built.table)

    new = embed_texts_like(stored, ["french horn", "playing steel guitar, slide guitar"])
    assert new.templates == stored.templates and new.encoder == "minilm"
    np.testing.assert_allclose(new.table[0], stored.table[1], atol=1e-6)
    assert new.table[1] @ stored.table[0] < 0.9


def test_script_builds_a_minilm_table_with_templates(tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog barking\nplaying steel guitar, slide guitar\n", encoding="utf-8")
    out = tmp_path / "table.npz"
    embed_labels_cli.main(["--classes", str(classes), "--encoder", "minilm",
                           "--template", TEMPLATES[1], "--template", TEMPLATES[2],
                           "--out", str(out)])
    printed = capsys.readouterr().out
    assert "2 labels x 384 dims (minilm)" in printed
    assert "templates: 'the sound of {label}', 'a recording of {label}'" in printed
    assert "out-of-vocabulary" not in printed
    table = load_label_embeddings(out, ["dog barking", "playing steel guitar, slide guitar"])
    assert table.templates == TEMPLATES[1:]
    expected = unit(reference("the sound of dog barking") + reference("a recording of dog barking"))
    np.testing.assert_allclose(table.table[0], expected, atol=1e-5)
