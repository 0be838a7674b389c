"""What a person looks at: the per-clip figure, the index page of many clips, the method table."""

from __future__ import annotations

import html
import json
import statistics
from pathlib import Path
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")

import librosa.display  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.ndimage  # noqa: E402

from asf_jax.explain.masks import normalise  # noqa: E402
from asf_jax.explain.saliency import Saliency  # noqa: E402
from asf_jax.recipe import AudioRecipe  # noqa: E402

WAVS = ("original", "salient", "complement")
SLOW_HOLD = 4  # frames a Slow input frame stands for in the figure (ModelConfig.alpha)


def panels(explained: Saliency, mask: np.ndarray, recipe: AudioRecipe, summary: dict
           ) -> list[tuple[str, np.ndarray, str, tuple[float, float] | None]]:
    """The spectrogram panels of the figure: (title, (frames, mel) values, colour map, limits).

    The saliency panel is `saliency.npy` normalised to [0, 1]. With two pathways each gets a
    panel on the same scale; the Slow one is held over the frames between its gathered frames
    (the Slow input reads one frame in four, `ModelConfig.alpha`) so that it can be seen.
    """
    floor = np.log(recipe.log_offset)
    mel = np.exp(explained.logmel) - recipe.log_offset
    masked = np.log(np.maximum(mask * mel, 0) + recipe.log_offset)
    result = [("log-mel", explained.logmel, "magma", None),
              ("saliency (normalised)", normalise(explained.saliency), "viridis", (0, 1))]
    if len(explained.pathways) > 1:
        scale = max(float(v.max()) for v in explained.pathways.values()) or 1.0
        for name, values in explained.pathways.items():
            shown = (scipy.ndimage.maximum_filter1d(values, SLOW_HOLD, axis=0) if name == "slow"
                     else values)
            share = summary["pathways"][name]
            result.append((f"through the {name.capitalize()} input ({share:.0%} of the saliency)",
                           shown / scale, "viridis", (0, 1)))
    result += [(f"mask ({summary['mask']['threshold']}, area {summary['mask']['area']:.0%})",
                mask, "gray", (0, 1)),
               ("masked log-mel", masked, "magma", (floor, explained.logmel.max()))]
    return result


def figure(explained: Saliency, mask: np.ndarray, audios: dict[str, np.ndarray],
           recipe: AudioRecipe, summary: dict, path: Path) -> None:
    """The `panels` (time in s, frequency in Hz) and the waveforms."""
    shown = panels(explained, mask, recipe, summary)
    fig, axes = plt.subplots(len(shown) + 1, 1, figsize=(10, 2.6 * (len(shown) + 1)),
                             constrained_layout=True)
    for ax, (title, values, cmap, limits) in zip(axes, shown, strict=False):
        image = librosa.display.specshow(
            values.T, sr=recipe.sample_rate, hop_length=recipe.hop_length, x_axis="time",
            y_axis="mel", fmin=recipe.fmin, fmax=recipe.fmax, htk=True, cmap=cmap, ax=ax,
            vmin=None if limits is None else limits[0], vmax=None if limits is None else limits[1])
        ax.set(title=title, xlabel="time (s)", ylabel="frequency (Hz)")
        fig.colorbar(image, ax=ax)
    wave_ax = axes[-1]
    for name in WAVS:
        samples = audios[name]
        wave_ax.plot(np.arange(len(samples)) / recipe.sample_rate, samples, lw=0.5, label=name,
                     alpha=0.7)
    wave_ax.set(title="waveforms", xlabel="time (s)", ylabel="amplitude")
    wave_ax.legend(loc="upper right")
    value = "cos" if summary["score"] == "cosine" else "p"
    fig.suptitle(f"{summary['name']}: {summary['method']} saliency of {summary['target']}"
                 f" ({value} = {summary['target_probability']:.3f})")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def clip_metrics(summary: dict) -> dict[str, float]:
    """The faithfulness numbers of one clip's summary, flat: kept_*, curves, L-MAC's metrics
    (`audio_AD`, `logmel_mean_AI`, ...), sparseness, complexity, pathway shares."""
    metrics = {f"kept_{k}": summary["kept"][k]["kept"] for k in ("salient", "random",
                                                                   "complement")}
    if "curves" in summary:
        metrics |= {key: summary["curves"][key] for key in ("deletion_auc", "insertion_auc")}
    for where, values in summary.get("lmac", {}).items():
        metrics |= {f"{where}_{k}": v for k, v in values.items()}
    metrics |= {"sparseness": summary["sparseness"], "complexity": summary["complexity"]}
    return metrics | {f"pathway_{k}": v for k, v in summary["pathways"].items()}


def mean_metrics(summaries: list[dict]) -> dict[str, float]:
    """Means over clips of `clip_metrics` (the keys every clip has)."""
    each = [clip_metrics(s) for s in summaries]
    keys = [k for k in each[0] if all(k in m for m in each)]
    return {k: statistics.mean(m[k] for m in each) for k in keys}


def _metric_line(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in metrics.items())


def write_index(out: Path, summaries: list[dict]) -> Path:
    """index.html: each clip's figure, players for its WAVs, and its faithfulness numbers."""
    means = mean_metrics(summaries)
    rows = []
    for s in summaries:
        folder = quote(s["folder"])
        players = "".join(f'<p>{name}<br><audio controls preload="none" '
                          f'src="{folder}/{quote(s["files"][name])}"></audio></p>' for name in WAVS)
        rows.append(
            f"<tr><td><b>{html.escape(s['name'])}</b><br>label: {html.escape(str(s['label']))}"
            f"<br>explained: {html.escape(s['target'])} ({s['score']}; "
            f"{'cos' if s['score'] == 'cosine' else 'p'} = {s['target_probability']:.3f})<br>"
            f"{html.escape(_metric_line(clip_metrics(s)))}"
            f"<br><a href=\"{folder}/summary.json\">summary.json</a>, "
            f"<a href=\"{folder}/saliency.npy\">saliency.npy</a></td>"
            f"<td>{players}</td><td><a href=\"{folder}/figure.png\">"
            f"<img src=\"{folder}/figure.png\""
            f" width=\"480\" alt=\"figure of {html.escape(s['name'])}\"></a></td></tr>")
    mean_text = _metric_line(means)
    baseline = summaries[0].get("curves", {}).get("baseline", "mean")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            "<title>asf_jax explanations</title></head>\n<body>\n"
            f"<h1>Explanations ({len(summaries)} clips, {html.escape(summaries[0]['method'])})</h1>"
            f"\n<p>Means: {html.escape(mean_text)}.</p>\n<p>kept_*: re-classified target "
            "score of the salient, random-mask and complement audio over the original's; "
            "deletion/insertion AUC: the most salient cells removed/added (removed cells filled "
            f"by the {html.escape(baseline)} operator); audio_* and logmel_&lt;operator&gt;_*: "
            "L-MAC's faithfulness metrics (AI, AD, AG in %, FF, FidIn) of the resynthesised "
            "audio and of the masked log-mel; sparseness (Gini index) and complexity (entropy) "
            "of the map; pathway_*: the share of the saliency that came through each input."
            "</p>\n<table border=\"1\">\n<tr><th>clip</th><th>audio</th><th>figure</th>"
            "</tr>\n" + "\n".join(rows) + "\n</table>\n</body>\n</html>\n")
    path = out / "index.html"
    path.write_text(page)
    return path


def write_method_table(out: Path, table: list[dict]) -> str:
    """OUT/compare.md and compare.json: one row of mean metrics per method; returns the table."""
    columns = [c for c in table[0] if c not in ("method", "clips")]
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {row['method']} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |"
              for row in table]
    markdown = "\n".join(lines)
    (out / "compare.md").write_text(markdown + "\n")
    (out / "compare.json").write_text(json.dumps(table, indent=1))
    return markdown
