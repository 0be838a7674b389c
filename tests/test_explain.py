"""Saliency, masks and faithfulness, and the explain script end to end on a tiny trained model."""

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import optax
import pytest
import soundfile
from flax import nnx

from asf_jax import audio
from asf_jax.classifier import Classifier
from asf_jax.explain import cli as explain_cli
from asf_jax.explain import faithfulness, masks, objectives, reconstruct, report, saliency
from asf_jax.models.slowfast import AudioResNet, ModelConfig
from asf_jax.recipe import AudioRecipe

# 1.28 s clips of 128 frames: a quarter of the real input, same STFT and mel settings.
TINY = AudioRecipe(name="tiny", clip_seconds=1.28, num_frames=128)
CLASSES = ["tone", "noise"]
SR = TINY.sample_rate
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# ------------------------------------------------------------------------------------------------
# Two synthetic classes: tone bursts in a band vs broadband noise bursts, at random times in noise.
# ------------------------------------------------------------------------------------------------


def synthetic_clip(label: int, rng: np.random.Generator, seconds: float = 1.5, sr: int = SR
                   ) -> np.ndarray:
    n = round(seconds * sr)
    clip = 10 ** rng.uniform(-4, -1.5) * rng.normal(size=n)  # quiet to loud background
    burst = round(0.15 * sr)
    t = np.arange(burst) / sr
    for start in rng.integers(0, n - burst, size=3):
        if label == 0:
            event = np.sin(2 * np.pi * rng.uniform(2000, 3000) * t)
        else:
            event = rng.normal(size=burst)
        clip[start:start + burst] += 0.3 * event * np.hanning(burst)
    return clip.astype(np.float32)


def training_batch(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 2, size=size)
    views = [audio.clip_logmel(synthetic_clip(int(y), rng), 0, TINY) for y in labels]
    return np.stack(views), labels


@pytest.fixture(scope="module")
def trained() -> Classifier:
    """A one-block-per-stage Fast-only width-4 network trained 30 SGD steps on the two classes."""
    model = AudioResNet(ModelConfig(arch="fast", width=4, num_classes=2, num_frames=128,
                                    dropout_rate=0.0, stage_blocks=(1, 1, 1, 1)),
                        rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.sgd(0.05, momentum=0.9), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss_fn(model):
            return optax.softmax_cross_entropy_with_integer_labels(model(x).logits, y).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(0)
    model.train()
    for _ in range(30):
        x, y = training_batch(rng, 16)
        step(model, optimizer, jnp.asarray(x), jnp.asarray(y))
    classifier = Classifier(model, TINY, CLASSES)
    x, y = training_batch(np.random.default_rng(1), 16)
    assert (classifier.logits(x).argmax(axis=1) == y).mean() >= 0.9, "the tiny model did not learn"
    return classifier


@pytest.fixture(scope="module")
def tiny_slowfast() -> Classifier:
    """An untrained 32-frame Slow-Fast (Fast width 1): both pathways and the Slow gather."""
    model = AudioResNet(ModelConfig(width=8, num_classes=3, num_frames=32,
                                    stage_blocks=(1, 1, 1, 1)), rngs=nnx.Rngs(1))
    return Classifier(model, TINY, ["a", "b", "c"])


# ------------------------------------------------------------------------------------------------
# Saliency.
# ------------------------------------------------------------------------------------------------


def window_map(classifier: Classifier, x: np.ndarray, method: str, score: str = "logit",
             **options) -> np.ndarray:
    config = saliency.SaliencyConfig(method, score, **options)
    arrays = objectives.target_arrays(classifier, objectives.Target((1,)))
    return np.asarray(saliency.window_saliency(
        classifier.graphdef, classifier.state, jnp.asarray(x), arrays, jax.random.key(0),
        TINY.log_offset, config)[0])


def assert_matches_finite_differences(score, x: np.ndarray, grad: np.ndarray, h: float = 1e-2,
                                     cells: int = 4) -> None:
    """|central differences of `score`| at the `cells` largest entries of `grad` equal them."""
    for flat in np.argsort(-grad, axis=None)[:cells]:
        cell = np.unravel_index(flat, x.shape)
        up, down = x.copy(), x.copy()
        up[cell] += h
        down[cell] -= h
        assert abs(score(up) - score(down)) / (2 * h) == pytest.approx(grad[cell], rel=0.1)


def test_gradient_matches_finite_differences(tiny_slowfast):
    x = (-6 + np.random.default_rng(0).normal(size=(1, 32, 128))).astype(np.float32)
    grad = window_map(tiny_slowfast, x, "grad")
    assert grad.shape == x.shape and grad.min() >= 0
    logit = jax.jit(lambda v: tiny_slowfast.apply(v).logits[0, 1])
    assert_matches_finite_differences(lambda v: float(logit(jnp.asarray(v))), x, grad)


def test_methods_relate_to_the_gradient(tiny_slowfast):
    x = (-6 + np.random.default_rng(1).normal(size=(2, 32, 128))).astype(np.float32)
    grad = window_map(tiny_slowfast, x, "grad", "prob")
    gradxinput = window_map(tiny_slowfast, x, "gradxinput", "prob")
    floor = np.log(TINY.log_offset)
    positive = gradxinput > 0  # where the signed gradient is positive (x is above the floor)
    np.testing.assert_allclose(gradxinput[positive], (grad * (x - floor))[positive], rtol=1e-4)
    assert positive.any() and not positive.all()
    np.testing.assert_allclose(window_map(tiny_slowfast, x, "smoothgrad", "prob", noise=0.0,
                                        samples=2), grad, rtol=1e-4, atol=1e-9)
    ig = window_map(tiny_slowfast, x, "ig", "prob", samples=4)
    assert ig.shape == x.shape and ig.min() >= 0 and ig.max() > 0
    cam = window_map(tiny_slowfast, x, "gradcam", "prob")
    assert cam.shape == x.shape and 0 <= cam.min() and cam.max() <= 1 + 1e-6


def test_whole_recording_is_stitched_from_windows(tiny_slowfast):
    starts = audio.window_starts(100, 32, 16)
    assert starts.tolist() == [0, 16, 32, 48, 64, 68]
    ones = np.ones((len(starts), 32, 128))
    np.testing.assert_allclose(saliency.stitch(ones, starts, 100), 1, rtol=1e-6)
    logmel = (-6 + np.random.default_rng(2).normal(size=(80, 128))).astype(np.float32)
    explained = saliency.explain_logmel(tiny_slowfast, logmel, target="b")
    assert explained.saliency.shape == logmel.shape and explained.targets == (1,)
    assert saliency.explain_logmel(tiny_slowfast, logmel[:20], top_k=2).saliency.shape == (20, 128)


@pytest.mark.parametrize("method", ["grad", "gradcam:score=logit,window_weight=prob",
                                    f"{saliency.DEFAULT_SPEC},steps=3", "smoothgrad:samples=2"])
def test_targets_chosen_in_the_saliency_pass_and_in_chunks_agree(tiny_slowfast, method):
    """The fused pass picks the classes a separate forward pass would, and a recording longer
    than one batch of windows (targets chosen first, then chunk by chunk) gives the same map."""
    logmel = (-6 + np.random.default_rng(3).normal(size=(120, 128))).astype(np.float32)
    config = saliency.SaliencyConfig.parse(method)
    whole = saliency.explain_logmel(tiny_slowfast, logmel, top_k=2, config=config)
    x = saliency.windows(logmel, whole.window_starts, 32, tiny_slowfast.recipe)
    probabilities = tiny_slowfast.probabilities(x).mean(axis=0)
    assert whole.targets == saliency.resolve_targets(["a", "b", "c"], probabilities, None, 2)
    np.testing.assert_allclose(whole.probabilities, probabilities, rtol=1e-5, atol=1e-7)
    chunked_classifier = Classifier(tiny_slowfast.model, TINY, ["a", "b", "c"], max_batch=2)
    assert len(x) > 2
    chunked = saliency.explain_logmel(chunked_classifier, logmel, top_k=2, config=config)
    assert chunked.targets == whole.targets
    np.testing.assert_allclose(chunked.probabilities, whole.probabilities, rtol=1e-5, atol=1e-7)
    if config.method != "smoothgrad":  # its noise is drawn per chunk
        np.testing.assert_allclose(chunked.saliency, whole.saliency, rtol=1e-4, atol=1e-9)


def test_targets_by_name_index_or_rank():
    probabilities = np.array([0.1, 0.6, 0.3])
    assert saliency.resolve_targets(["a", "b", "c"], probabilities, None, 2) == (1, 2)
    assert saliency.resolve_targets(["a", "Dog bark", "c"], probabilities, "dog BARK") == (1,)
    assert saliency.resolve_targets(["a", "b", "c"], probabilities, "2") == (2,)
    with pytest.raises(ValueError, match="did you mean"):
        saliency.resolve_targets(["a", "dog bark"], probabilities[:2], "dog")


# ------------------------------------------------------------------------------------------------
# Masks.
# ------------------------------------------------------------------------------------------------


def test_masks_range_binary_and_exact_area():
    values = np.random.default_rng(3).gamma(2.0, size=(201, 128)).astype(np.float32)
    normalised = masks.normalise(values)
    assert normalised.min() == 0 and normalised.max() == 1
    assert not masks.normalise(np.full((3, 4), 2.0)).any()
    for percent in (1, 12.5, 50):
        mask = masks.make_mask(values, masks.MaskSpec.parse(f"top:{percent}"))
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert mask.sum() == round(percent / 100 * values.size)
    mean = masks.make_mask(values, masks.MaskSpec.parse("mean"))
    strict = masks.make_mask(values, masks.MaskSpec.parse("std:2"))
    assert strict.sum() < mean.sum() and np.all(strict <= mean)
    soft = masks.make_mask(values, masks.MaskSpec.parse("std:1", binary=False,
                                                            sigma=(1.0, 1.0)))
    assert 0 <= soft.min() and soft.max() <= 1 and len(np.unique(soft)) > 2
    shuffled = masks.random_mask(mean, np.random.default_rng(0))
    assert shuffled.sum() == mean.sum() and not np.array_equal(shuffled, mean)
    with pytest.raises(ValueError):
        masks.MaskSpec.parse("top")


# ------------------------------------------------------------------------------------------------
# Faithfulness on the trained model.
# ------------------------------------------------------------------------------------------------


def test_salient_audio_keeps_more_than_a_random_mask(trained):
    """Explains "noise" (evidence: its bursts); the model reads "tone" largely as "no burst"."""
    rng = np.random.default_rng(5)
    kept = {"salient": [], "random": [], "complement": []}
    for _ in range(3):
        samples = synthetic_clip(1, rng, seconds=2.0)
        explained = saliency.explain_audio(trained, samples, target="noise",
                                           config=saliency.SaliencyConfig())
        mask = masks.make_mask(explained.saliency, masks.MaskSpec.parse("top:10",
                                                                            sigma=(1, 1)))
        salient = reconstruct.phase_preserving(samples, mask, TINY)
        random = reconstruct.phase_preserving(samples, masks.random_mask(mask, rng), TINY)
        reference = float(trained.predict(samples)[1])
        result = faithfulness.kept_probability(trained, reference, {
            "salient": salient.salient, "random": random.salient,
            "complement": salient.complement}, explained.targets)
        for name in kept:
            kept[name].append(result[name]["kept"])
        curves = faithfulness.deletion_insertion(trained, explained, steps=5)
        whole = float(faithfulness.class_score(trained, explained.logmel[None], (1,))[0])
        assert curves["deletion"][0] == pytest.approx(whole, abs=1e-5)
        assert curves["insertion"][-1] == pytest.approx(whole, abs=1e-5)
    assert np.mean(kept["salient"]) > np.mean(kept["random"]) > np.mean(kept["complement"])


# ------------------------------------------------------------------------------------------------
# The script.
# ------------------------------------------------------------------------------------------------


class LinkChecker(HTMLParser):
    """Collects links and checks that non-void elements are properly nested and closed."""

    VOID = {"meta", "img", "br", "source", "link", "input", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.links, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_cli_help_names_every_flag(capsys):
    with pytest.raises(SystemExit):
        explain_cli.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--ckpt", "--audio", "--target", "--top-k", "--method", "--threshold", "--out",
                 "--split", "--num", "--data_dir", "--manual_dir", "--compare", "--profile",
                 "--target_text", "--contrast", "--score", "--sign", "--window_weight"):
        assert flag in text


@pytest.fixture(scope="module")
def explained_files(trained, tmp_path_factory) -> tuple[Path, list[dict]]:
    """The CLI on an 8 kHz stereo file and a 7-s 44.1 kHz one: (output dir, summaries)."""
    folder = tmp_path_factory.mktemp("explain_cli")
    rng = np.random.default_rng(7)
    stereo = np.stack([synthetic_clip(0, rng, 3.0, 8000), synthetic_clip(0, rng, 3.0, 8000)], 1)
    soundfile.write(folder / "stereo8k.wav", stereo, 8000)
    soundfile.write(folder / "long44k.wav", synthetic_clip(1, rng, 7.0, 44100), 44100)
    out = folder / "out"
    args = explain_cli.parse_args([
        "--ckpt", "unused", "--audio", str(folder / "stereo8k.wav"),
        str(folder / "long44k.wav"), "--out", str(out), "--threshold", "top:15",
        "--curve_steps", "3", "--method", f"{saliency.DEFAULT_SPEC},steps=4"])
    drawn = {}
    draw = report.panels

    def recording(explained, mask, recipe, summary):
        drawn[summary["name"]] = draw(explained, mask, recipe, summary)
        return drawn[summary["name"]]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "panels", recording)
        summaries = explain_cli.run(args, trained)
    return out, summaries, drawn


def test_saliency_file_is_the_map_drawn_and_masked(explained_files):
    out, summaries, drawn = explained_files
    for summary in summaries:
        saved = np.load(out / summary["name"] / "saliency.npy")
        panels = {title.split(" (")[0]: values for title, values, *_ in drawn[summary["name"]]}
        np.testing.assert_array_equal(panels["saliency"], masks.normalise(saved))
        np.testing.assert_array_equal(panels["mask"], masks.make_mask(
            saved, masks.MaskSpec.parse("top:15", sigma=(1.0, 1.0))))
        assert summary["files"]["saliency"] == "saliency.npy"


def test_cli_explains_files_of_any_rate_and_channels(explained_files):
    out, summaries, _ = explained_files
    assert [s["name"] for s in summaries] == ["stereo8k", "long44k"]
    for summary, seconds in zip(summaries, (3.0, 7.0), strict=True):
        folder = out / summary["name"]
        for name in ("original", "salient", "complement"):
            data, rate = soundfile.read(folder / f"{name}.wav")
            assert rate == SR and len(data) == pytest.approx(seconds * SR, abs=1)
        saved = json.loads((folder / "summary.json").read_text())
        assert saved["reconstruction"] == "phase"
        assert saved["mask"]["area"] == pytest.approx(0.15, abs=1e-3)
        assert set(saved["kept"]) == {"salient", "random", "complement"}
        assert set(saved["lmac"]) == {"audio", "logmel_mean", "logmel_floor"}
        assert set(saved["lmac"]["audio"]) == set(faithfulness.LMAC_METRICS)
        assert saved["pathways"] == {"fast": 1.0} and 0 < saved["sparseness"] < 1
        assert (folder / "figure.png").stat().st_size > 10_000
    checker = LinkChecker()
    checker.feed((out / "index.html").read_text())
    assert not checker.errors and not checker.stack
    # Per clip: 3 players, figure link and image, summary.json, saliency.npy.
    assert len(checker.links) == 2 * (3 + 4)
    for link in checker.links:
        assert (out / link).is_file(), link


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (CI installs it with apt-get)")
def test_index_page_renders_its_figures_in_headless_chromium(explained_files, tmp_path):
    out, *_ = explained_files
    shot = tmp_path / "index.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1400,1400",
                    (out / "index.html").as_uri()], check=True, capture_output=True, timeout=120)
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1400)
    # The figures' colour maps are saturated; a page of text and broken-image icons is not.
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    assert (saturation > 0.3).mean() > 0.05


def test_cli_griffin_lim_and_method_table(trained, tmp_path):
    soundfile.write(tmp_path / "clip.wav", synthetic_clip(0, np.random.default_rng(8)), SR)
    out = tmp_path / "cmp"
    args = explain_cli.parse_args([
        "--ckpt", "unused", "--audio", str(tmp_path / "clip.wav"), "--out", str(out),
        "--reconstruction", "griffinlim", "--n_iter", "4", "--curve_steps", "3",
        "--compare", "grad,gradcam:score=logit,layer=4"])
    table = explain_cli.run(args, trained)
    assert [row["method"] for row in table] == ["grad", "gradcam:score=logit,layer=4"]
    assert {"kept_salient", "kept_random", "kept_complement", "deletion_auc",
            "insertion_auc", "audio_AD", "logmel_floor_FF", "sparseness", "complexity",
            "pathway_fast"} <= set(table[0])
    assert "| gradcam:score=logit,layer=4 |" in (out / "compare.md").read_text()
    summary = json.loads((out / "grad" / "clip" / "summary.json").read_text())
    assert summary["reconstruction"] == "griffinlim"
    summary = json.loads((out / "gradcam_score=logit_layer=4" / "clip" / "summary.json"
                          ).read_text())
    assert summary["method"] == "gradcam:score=logit,layer=4"


def test_cli_explains_clips_of_a_named_dataset(tiny_folds_dataset, tmp_path):
    """--name picks one of several datasets in a data dir (here the ESC-50-like "tinyfolds")."""
    from asf_jax.recipe import get_recipe
    from tests.conftest import TINY_CLASSES

    recipe = get_recipe("slow")
    model = AudioResNet(ModelConfig(arch="slow", width=4, num_classes=len(TINY_CLASSES),
                                    num_frames=recipe.num_frames, stage_blocks=(1, 1, 1, 1)),
                        rngs=nnx.Rngs(0))
    classifier = Classifier(model, recipe, list(TINY_CLASSES))
    args = explain_cli.parse_args([
        "--ckpt", "unused", "--split", "fold2", "--num", "2", "--data_dir",
        str(tiny_folds_dataset), "--name", "tinyfolds", "--config", "slow", "--method", "grad",
        "--reconstruction", "griffinlim", "--n_iter", "2", "--curve_steps", "2",
        "--out", str(tmp_path)])
    summaries = explain_cli.run(args, classifier)
    assert len(summaries) == 2
    assert all(summary["target"] in TINY_CLASSES for summary in summaries)
