"""The linear baseline: same model as scikit-learn, separable data solved, deterministic, and
its two entry points (a built dataset split, a manifest of audio files) run end to end."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile
from sklearn.linear_model import LogisticRegression

from asf_jax import baseline


def gaussian_classes(num_classes: int = 3, per_class: int = 20, dims: int = 5, spread: float = 1.0,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, (num_classes, dims))
    labels = np.repeat(np.arange(num_classes), per_class)
    return centres[labels] + spread * rng.normal(size=(len(labels), dims)), labels


def test_agrees_with_scikit_learn():
    features, labels = gaussian_classes(spread=2.0)
    l2 = 0.05
    model = baseline.fit(features, labels, 3, l2)
    reference = LogisticRegression(C=1.0 / (l2 * len(labels)), tol=1e-12, max_iter=10_000)
    reference.fit((features - model.mean) / model.scale, labels)
    np.testing.assert_allclose(model.weights, reference.coef_.T, atol=1e-4)
    # scikit-learn's intercepts are identified up to a constant shift (softmax is shift-free).
    np.testing.assert_allclose(model.bias - model.bias.mean(),
                               reference.intercept_ - reference.intercept_.mean(), atol=1e-4)
    np.testing.assert_allclose(
        model.probabilities(features),
        reference.predict_proba((features - model.mean) / model.scale), atol=1e-5)


def test_separable_data_is_solved():
    features, labels = gaussian_classes(num_classes=4, spread=0.05)
    held_out, held_out_labels = gaussian_classes(num_classes=4, spread=0.05, seed=0)
    result = baseline.fit_and_evaluate(features, labels, held_out + 0.01, held_out_labels, 4,
                                       l2=1e-3)
    assert result["top1"] == 1.0
    assert result["chance_top1"] == 0.25 and result["majority_top1"] == 0.25


def test_deterministic_and_standardised():
    features, labels = gaussian_classes()
    features[:, 0] *= 1000.0  # a badly scaled feature changes nothing after standardising
    first, second = (baseline.fit(features, labels, 3) for _ in range(2))
    np.testing.assert_array_equal(first.weights, second.weights)
    np.testing.assert_array_equal(first.bias, second.bias)
    np.testing.assert_allclose(((features - first.mean) / first.scale).std(axis=0), 1.0)


def test_inner_cv_holds_out_whole_groups_and_picks_from_the_grid():
    groups = np.repeat(["a", "b", "c", "d", "e"], [30, 10, 10, 5, 5])
    folds = baseline.group_folds(groups, 3)
    assert len(folds) == 3 and sum(f.sum() for f in folds) == len(groups)
    for held_out in folds:
        assert not set(groups[held_out]) & set(groups[~held_out])
    features, labels = gaussian_classes(num_classes=3, per_class=20, spread=2.0)
    l2, accuracy = baseline.choose_l2(features, labels, groups, 3)
    assert l2 in baseline.L2_GRID and set(accuracy) == set(baseline.L2_GRID)
    assert accuracy[l2] == max(accuracy.values())
    assert baseline.choose_l2(features, labels, ["one"] * 60, 3) == (baseline.DEFAULT_L2, {})


def test_cross_validation_reports_each_fold_and_the_spread():
    features, labels = gaussian_classes(num_classes=2, per_class=12, spread=0.1)
    folds = np.tile([1, 2, 3], 8)
    results = baseline.cross_validate(features, labels, folds, 2, l2=1e-2)
    assert set(results) == {"1", "2", "3", "mean", "std"}
    assert results["mean"]["top1"] == 1.0 and results["std"]["top1"] == 0.0
    assert results["1"]["clips"] == 8


def test_features_are_per_mel_mean_and_std():
    logmel = np.arange(12, dtype=np.float32).reshape(4, 3)  # (time, mel)
    np.testing.assert_allclose(baseline.logmel_statistics(logmel),
                               [4.5, 5.5, 6.5, *np.std(logmel, axis=0)])


def write_manifest(root, labels=("tone", "noise"), sources=("s1", "s2", "s3", "s4")):
    rng = np.random.default_rng(0)
    t = np.arange(4800) / 16000
    rows = []
    for fold, source in enumerate(sources, start=1):
        for label in labels:
            for take in range(2):
                sound = (np.sin(2 * np.pi * rng.uniform(400, 900) * t) if label == "tone"
                         else rng.normal(size=t.size))
                path = root / "audio" / source / label / f"{take}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(path, (0.3 * sound).astype(np.float32), 16000)
                rows.append((path.relative_to(root).as_posix(), label, source, fold,
                             "test" if fold == len(sources) else "train"))
    with open(root / "manifest.csv", "w", newline="") as file:
        csv.writer(file).writerows([("path", "label", "source", "fold", "split"), *rows])
    return root / "manifest.csv"


def test_manifest_command_line(tmp_path, capsys):
    manifest = write_manifest(tmp_path)
    baseline.main(["--manifest", str(manifest), "--l2", "0.01"])
    output = capsys.readouterr().out
    assert "16 clips, 2 classes, 4 sources, 4 folds" in output
    assert "train -> test: top-1 1.000 (chance 0.500" in output
    assert output.count("held out") == 4 and "over folds: top-1 1.000 ± 0.000" in output


def test_manifest_errors_name_the_file(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,class\na.wav,x\n")
    with pytest.raises(ValueError, match="manifest.csv: expected a header"):
        baseline.manifest_features(tmp_path / "manifest.csv")
    one_label = write_manifest(tmp_path / "one", labels=("tone",))
    with pytest.raises(ValueError, match="one label only"):
        baseline.run_manifest(one_label, None)


def test_built_dataset_command_line(tiny_dataset, capsys):
    baseline.main(["--data_dir", str(tiny_dataset), "--config", "slow"])
    output = capsys.readouterr().out
    assert output.startswith("train -> test: top-1 ")
    assert "chance 0.333" in output and "clips 6" in output


def test_a_test_only_manifest_is_not_fitted(tmp_path):
    manifest = write_manifest(tmp_path)
    text = manifest.read_text().replace(",train\n", ",test\n")
    manifest.write_text(text)
    assert baseline.run_manifest(manifest, 0.01)[-1].startswith("no clip has split 'train'")
