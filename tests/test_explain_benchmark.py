"""The explainer's yardsticks: metrics by hand on tiny arrays, the benchmark's ground truth, the
randomisation check, text targets, per-pathway maps and the benchmark end to end."""

import json

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest
import soundfile
from flax import nnx

from asf_jax import audio
from asf_jax.classifier import Classifier
from asf_jax.embeddings import embed_labels, embed_texts_like
from asf_jax.explain import (
    benchmark,
    faithfulness,
    localisation,
    mixtures,
    objectives,
    saliency,
    sanity,
)
from asf_jax.lep import LEPMeta
from asf_jax.models.slowfast import AudioResNet, ModelConfig, ModelOutputs
from asf_jax.recipe import AudioRecipe
from tests.test_explain import assert_matches_finite_differences

TINY = AudioRecipe(name="tiny", clip_seconds=1.28, num_frames=128)
SR = TINY.sample_rate


def tiny_model(seed: int = 1, **config) -> AudioResNet:
    """An untrained Slow-Fast (width 8, one block per stage; 32 frames unless told)."""
    settings = {"width": 8, "num_classes": 3, "num_frames": 32, "stage_blocks": (1, 1, 1, 1)}
    return AudioResNet(ModelConfig(**settings | config), rngs=nnx.Rngs(seed))


# ------------------------------------------------------------------------------------------------
# Metrics against hand computations.
# ------------------------------------------------------------------------------------------------


def test_localisation_metrics_by_hand():
    saliency_map = np.array([0.0, 1.0, 3.0, 0.5, 0.5])
    truth = np.array([False, False, True, True, False])
    assert localisation.relevance_mass(saliency_map, truth) == pytest.approx(3.5 / 5)
    assert localisation.rank_accuracy(saliency_map, truth) == pytest.approx(0.5)  # top 2: 2, 1
    assert localisation.pointing(saliency_map, truth) == 1.0
    assert localisation.pointing(saliency_map, ~truth) == 0.0
    # AUROC: positives {3, 0.5} against negatives {0, 1, 0.5}: 3 beats all (3), 0.5 beats 0
    # and ties 0.5 (1.5): 4.5 of 6 pairs.
    assert localisation.auroc(saliency_map, truth) == pytest.approx(4.5 / 6)
    assert localisation.auroc(saliency_map, np.zeros(5, bool)) == 0.5
    scores = localisation.localisation(np.outer(saliency_map, [1.0, 0.0]), truth,
                                       np.outer(truth, [True, False]))
    assert scores["time_mass"] == pytest.approx(0.7)
    assert scores["time_chance_mass"] == pytest.approx(0.4)
    assert scores["tf_chance_mass"] == pytest.approx(0.2)
    assert scores["tf_auroc"] > scores["tf_chance_auroc"] == 0.5


def test_faithfulness_metrics_by_hand():
    original = np.array([0.2, 0.5, 0.3])
    kept = np.array([0.1, 0.8, 0.1])
    removed = np.array([0.6, 0.1, 0.3])
    metrics = faithfulness.lmac_metrics(original, kept, removed, (1,))
    assert metrics["AI"] == 100.0  # 0.8 > 0.5
    assert metrics["AD"] == 0.0
    assert metrics["AG"] == pytest.approx(100 * 0.3 / 0.5)
    assert metrics["FF"] == pytest.approx(0.4)
    assert metrics["FidIn"] == 1.0
    worse = faithfulness.lmac_metrics(original, removed, kept, (1,))
    assert (worse["AI"], worse["AG"], worse["FidIn"]) == (0.0, 0.0, 0.0)
    assert worse["AD"] == pytest.approx(100 * 0.4 / 0.5)
    assert worse["FF"] == pytest.approx(-0.3)
    # Gini index of (0, 0, 0, 4) is 3/4 and of a flat map 0; entropy of (1, 1, 2) / 4 by hand.
    assert faithfulness.sparseness(np.array([0.0, 0.0, 0.0, 4.0])) == pytest.approx(0.75, abs=1e-6)
    assert faithfulness.sparseness(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    p = np.array([0.25, 0.25, 0.5])
    assert faithfulness.complexity(np.array([[1.0, 1.0], [2.0, 0.0]])) == pytest.approx(
        -(p * np.log(p)).sum())


def test_removal_operators():
    logmel = np.log(np.array([[1.0, 3.0], [5.0, 7.0]]) + 1e-6).astype(np.float32)
    mask = np.array([[[1.0, 0.0], [0.5, 1.0]]], np.float32)
    floor = faithfulness.masked(logmel, mask, "floor", 1e-6)[0]
    np.testing.assert_allclose(np.exp(floor) - 1e-6, [[1.0, 0.0], [2.5, 7.0]], rtol=1e-4,
                               atol=1e-6)
    mean = faithfulness.masked(logmel, mask, "mean", 1e-6)[0]
    np.testing.assert_allclose(mean[0, 1], logmel.mean(), rtol=1e-6)
    np.testing.assert_allclose(mean[1, 0], 0.5 * logmel[1, 0] + 0.5 * logmel.mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="operator"):
        faithfulness.masked(logmel, mask, "zero", 1e-6)


def test_method_specs_round_trip():
    config = saliency.SaliencyConfig.parse("mask:score=logprob,steps=7,cell=4/2")
    assert (config.method, config.score, config.perturbation.steps) == ("mask", "logprob", 7)
    assert config.perturbation.cell == (4, 2)
    assert saliency.SaliencyConfig.parse(config.name) == config
    assert saliency.SaliencyConfig.parse("grad").name == "grad"
    assert benchmark.split_specs("grad,gradcam:layer=4,score=logit,mask") == [
        "grad", "gradcam:layer=4,score=logit", "mask"]
    with pytest.raises(ValueError, match="unknown option"):
        saliency.SaliencyConfig.parse("grad:colour=red")


# ------------------------------------------------------------------------------------------------
# The benchmark's ground truth.
# ------------------------------------------------------------------------------------------------


def tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def lowpass_noise(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise below ~400 Hz: leaves the 3-kHz event's bands to the event."""
    noise = rng.normal(size=round(seconds * SR))
    return (0.1 * np.convolve(noise, np.ones(40) / 40, mode="same")).astype(np.float32)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Events: 3-kHz and 1-kHz tones ("beep", "boop"); backgrounds: low-pass noise and speech
    labelled like an event class (to be left out)."""
    folder = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(0)
    rows = ["path,label,split"]
    for name, hz in (("beep", 3000.0), ("boop", 1000.0)):
        soundfile.write(folder / f"{name}.wav", tone(3.0, hz), SR)
        rows.append(f"{name}.wav,{name},test")
    for index in range(3):
        soundfile.write(folder / f"bg{index}.wav", lowpass_noise(1.0, rng), SR)
        rows.append(f"bg{index}.wav,rumble,train")
    soundfile.write(folder / "impostor.wav", tone(1.0, 3000.0), SR)
    rows.append("impostor.wav,Beep,train")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return (mixtures.read_recordings(folder / "manifest.csv", "test"),
            mixtures.read_recordings(folder / "manifest.csv", "train"))


def test_mixture_places_the_event_where_it_says(recordings):
    events, backgrounds = recordings
    assert [e.label for e in events] == ["beep", "boop"]
    spec = mixtures.MixtureSpec(count=2, seconds=4.0, snrs=(10.0,), lengths=(0.5,))
    mixture = mixtures.make_mixture(0, events, backgrounds, spec, TINY)
    assert mixture.backgrounds and all("bg" in p.name for p in mixture.backgrounds)  # no "Beep"
    assert mixture.label == "beep" and mixture.offset - mixture.onset == SR // 2
    assert len(mixture.samples) == 4 * SR and np.abs(mixture.samples).max() <= 0.9
    # The 3-kHz energy lies in the span and nowhere else.
    spectrum = np.abs(audio.stft(mixture.samples, TINY))  # (bins, frames)
    band = spectrum[np.argmin(np.abs(np.fft.rfftfreq(TINY.n_fft, 1 / SR) - 3000))]
    loud = np.flatnonzero(band > 0.1 * band.max())
    frames = np.flatnonzero(mixture.event_frames)
    assert abs(loud[0] - frames[0]) <= 2 and abs(loud[-1] - frames[-1]) <= 2
    assert frames[0] == -(-mixture.onset // TINY.hop_length)
    assert frames[-1] == (mixture.offset - 1) // TINY.hop_length
    # The event's cells: in its frames, in the mel bands around 3 kHz, not in the rumble's.
    assert not mixture.event_cells[~mixture.event_frames].any()
    mel_hz = librosa.mel_frequencies(TINY.num_mels + 2, fmin=TINY.fmin, fmax=TINY.fmax,
                                           htk=True)[1:-1]
    bands = np.flatnonzero(mixture.event_cells.any(axis=0))
    assert np.all(np.abs(mel_hz[bands] - 3000) < 400)
    assert mixture.event_cells[frames[len(frames) // 2]].any()
    # SNR: the event's power in its span over the background's mean power.
    again = mixtures.make_mixture(0, events, backgrounds, spec, TINY)
    np.testing.assert_array_equal(again.samples, mixture.samples)
    assert mixtures.make_mixture(1, events, backgrounds, spec, TINY).label == "boop"


def test_snr_is_the_event_over_the_background():
    rng = np.random.default_rng(1)
    bed = rng.normal(size=SR).astype(np.float32) * 0.01
    event = tone(0.25, 2000.0)
    for snr in (6.0, -6.0):
        gain = np.sqrt(mixtures.power(bed) * 10 ** (snr / 10) / mixtures.power(event))
        assert 10 * np.log10(mixtures.power(gain * event) / mixtures.power(bed)) == (
            pytest.approx(snr, abs=1e-6))
    assert len(mixtures.loudest_segment(np.r_[np.zeros(100), np.ones(10), np.zeros(100)], 10)
               ) == 10
    assert mixtures.loudest_segment(np.r_[np.zeros(100), np.ones(10)], 10).min() == 1.0


# ------------------------------------------------------------------------------------------------
# Sanity check, text targets, pathways.
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_slowfast() -> Classifier:
    return Classifier(tiny_model(), TINY, ["a", "b", "c"])


def test_randomisation_changes_gradient_maps_but_not_an_input_copy(tiny_slowfast):
    logmel = (-6 + np.random.default_rng(4).normal(size=(32, 128))).astype(np.float32)
    config = saliency.SaliencyConfig("grad", "logit")

    def grad_map(model: Classifier) -> np.ndarray:
        return saliency.explain_logmel(model, logmel, "b", config=config).saliency

    cascade = sanity.cascading_randomisation(tiny_slowfast, grad_map)
    assert list(cascade) == list(sanity.CASCADE)
    assert cascade["stem"] < 0.5 and all(-1 <= v <= 1 for v in cascade.values())
    # A "method" that ignores the model is caught: its maps never change.
    ignores = sanity.cascading_randomisation(tiny_slowfast, lambda model: logmel)
    assert all(v == pytest.approx(1.0) for v in ignores.values())
    stem_only = sanity.randomised(tiny_slowfast, 1)
    x = logmel[None, :32]
    assert not np.allclose(stem_only.logits(x), tiny_slowfast.logits(x))


def test_text_target_saliency_is_the_gradient_of_the_cosine(tmp_path):
    words = {"a": 0, "b": 1, "c": 2, "dog": 3, "barking": 4, "cat": 5}
    vectors = np.random.default_rng(5).normal(size=(len(words), 4))
    (tmp_path / "glove.txt").write_text("\n".join(
        f"{w} " + " ".join(f"{v:.5f}" for v in vectors[i]) for w, i in words.items()) + "\n")
    table = embed_labels(["a", "b", "c"], f"glove:{tmp_path / 'glove.txt'}")
    classifier = Classifier(tiny_model(2, embedding_dim=4), TINY, ["a", "b", "c"],
                            lep=LEPMeta(table, 0.5))
    target = objectives.make_target(classifier.class_names, text="dog barking", contrast="cat")
    assert target.describe(classifier.class_names) == '"dog barking" vs "cat"'
    texts = embed_texts_like(table, ["dog barking", "cat"]).table
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)

    def score(x: np.ndarray) -> float:
        projection = classifier.project(x)[0]
        return float(projection @ (texts[0] - texts[1]) / np.linalg.norm(projection))

    x = (-6 + np.random.default_rng(6).normal(size=(1, 32, 128))).astype(np.float32)
    grad = np.asarray(saliency.window_saliency(
        classifier.graphdef, classifier.state, jnp.asarray(x),
        objectives.target_arrays(classifier, target), jax.random.key(0), TINY.log_offset,
        saliency.SaliencyConfig("grad", sign="abs"))[0])
    assert_matches_finite_differences(score, x, grad, h=0.05)  # float32 cosine: a larger step
    with pytest.raises(ValueError, match="Label Embeddings Projection"):
        objectives.target_arrays(Classifier(tiny_model(), TINY, ["a", "b", "c"]), target)


def test_class_contrast_and_margin_scores():
    logits = jnp.array([[1.0, 3.0, 2.5]])
    outputs = ModelOutputs(logits, None)
    one_hot = jnp.array([0.0, 1.0, 0.0])
    arrays = objectives.TargetArrays(classes=one_hot)
    assert float(objectives.target_score(outputs, arrays, "margin")[0]) == pytest.approx(0.5)
    contrast = arrays._replace(contrast=jnp.array([1.0, 0.0, 0.0]))
    assert float(objectives.target_score(outputs, contrast, "logit")[0]) == pytest.approx(2.0)
    assert float(objectives.target_score(outputs, contrast, "logprob")[0]) == pytest.approx(2.0)
    log_p = jax.nn.log_softmax(logits)[0, 1]
    assert float(objectives.target_score(outputs, arrays, "logprob")[0]) == pytest.approx(
        float(log_p))
    with pytest.raises(ValueError, match="needs --target"):
        objectives.make_target(["a"], contrast="a")


def test_per_pathway_maps(tiny_slowfast):
    """The Slow map lives on the frames the Slow input gathers; elsewhere the map is the Fast
    map; together they bound it (|a + b| <= |a| + |b|)."""
    logmel = (-6 + np.random.default_rng(7).normal(size=(32, 128))).astype(np.float32)
    explained = saliency.explain_logmel(tiny_slowfast, logmel, "a",
                                        config=saliency.SaliencyConfig("grad", "logit"))
    slow, fast = explained.pathways["slow"], explained.pathways["fast"]
    gathered = np.zeros(32, bool)
    gathered[np.linspace(0, 31, 8).astype(int)] = True
    assert slow[gathered].any() and not slow[~gathered].any()
    np.testing.assert_allclose(explained.saliency[~gathered], fast[~gathered], rtol=1e-5)
    assert np.all(explained.saliency <= slow + fast + 1e-9)
    share = explained.pathway_share
    assert share["slow"] + share["fast"] == pytest.approx(1.0) and 0 < share["slow"] < 1
    fast_only = Classifier(tiny_model(arch="fast"), TINY, ["a", "b", "c"])
    assert saliency.explain_logmel(fast_only, logmel, "a", config=saliency.SaliencyConfig()
                                   ).pathway_share == {"fast": 1.0}


@pytest.mark.parametrize("method", ["gradcam", "guided_gradcam", "vargrad", "mask"])
def test_every_method_gives_a_map_on_the_grid(tiny_slowfast, method):
    logmel = (-6 + np.random.default_rng(8).normal(size=(50, 128))).astype(np.float32)
    config = saliency.SaliencyConfig.parse(f"{method}:samples=2,steps=2,layer=4")
    explained = saliency.explain_logmel(tiny_slowfast, logmel, "c", config=config)
    assert explained.saliency.shape == logmel.shape and explained.saliency.min() >= 0
    assert explained.saliency.max() > 0
    total = sum(explained.pathways.values())
    if method in saliency.CAM_METHODS + ("mask",):  # the pathways divide the map among them
        np.testing.assert_allclose(total, explained.saliency, rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------------------------------------
# The benchmark end to end.
# ------------------------------------------------------------------------------------------------


def test_benchmark_end_to_end(recordings, tmp_path):
    events, backgrounds = recordings
    classifier = Classifier(tiny_model(3, num_frames=128), TINY, ["beep", "boop", "other"])
    spec = mixtures.MixtureSpec(count=2, seconds=3.0, snrs=(0.0,), lengths=(0.5,))
    options = benchmark.BenchmarkOptions(curve_steps=3, sanity_clips=1)
    methods = [saliency.SaliencyConfig.parse(s) for s in ("grad", "gradcam:score=logit")]
    table = benchmark.run(classifier, events, backgrounds, spec, methods, options, tmp_path,
                          save_audio=True)
    assert [row["method"] for row in table] == ["grad", "gradcam:score=logit"]
    rows = benchmark.read_rows(tmp_path / "rows.jsonl")
    assert len(rows) == 4 and {r["mixture"] for r in rows} == {"0000_beep_+0dB_0.5s",
                                                               "0001_boop_+0dB_0.5s"}
    for row in rows:
        assert 0 <= row["time_mass"] <= 1 and 0 <= row["tf_auroc"] <= 1
        assert {"audio_AD", "logmel_mean_FF", "logmel_floor_FidIn", "deletion_mean",
                "kept_salient", "sparseness", "pathway_slow"} <= set(row)
    assert "sanity_stem" in rows[0] and "sanity_stem" not in rows[-1]
    assert table[0]["sanity_stem"] is not None and table[0]["mean_rank"] is not None
    text = (tmp_path / "benchmark.md").read_text()
    assert "| `gradcam:score=logit` |" in text and "audio AD" in text
    truth = (tmp_path / "mixtures.csv").read_text().splitlines()
    assert truth[0].startswith("name,label,onset,offset,snr_db") and len(truth) == 3
    assert len(list((tmp_path / "audio").glob("*.wav"))) == 2
    assert json.loads((tmp_path / "benchmark.json").read_text())[1]["mixtures"] == 2
