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

from asf_jax.explain.masks import normalise  # noqa: E402
from asf_jax.explain.saliency import Saliency  # noqa: E402
from asf_jax.recipe import AudioRecipe  # noqa: E402

WAVS = ("original", "salient", "complement")


def figure(explained: Saliency, mask: np.ndarray, audios: dict[str, np.ndarray],
           recipe: AudioRecipe, summary: dict, path: Path) -> None:
    """Log-mel, saliency, mask, masked log-mel (time in s, frequency in Hz) and the waveforms."""
    floor = np.log(recipe.log_offset)
    mel = np.exp(explained.logmel) - recipe.log_offset
    masked = np.log(np.maximum(mask * mel, 0) + recipe.log_offset)
    panels = [("log-mel", explained.logmel, "magma", None),
              ("saliency (normalised)", normalise(explained.saliency), "viridis", (0, 1)),
              (f"mask ({summary['mask']['threshold']}, area {summary['mask']['area']:.0%})", mask,
               "gray", (0, 1)),
              ("masked log-mel", masked, "magma", (floor, explained.logmel.max()))]
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(10, 13), constrained_layout=True)
    for ax, (title, values, cmap, limits) in zip(axes, panels, strict=False):
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
    targets = ", ".join(summary["targets"])
    fig.suptitle(f"{summary['name']}: {summary['method']} saliency of {targets}"
                 f" (p = {summary['target_probability']:.3f})")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def mean_metrics(summaries: list[dict]) -> dict[str, float]:
    """Means over clips of the faithfulness numbers (curves only when computed)."""
    metrics = {f"kept_{k}": statistics.mean(s["kept"][k]["kept"] for s in summaries)
               for k in ("salient", "random", "complement")}
    if all("curves" in s for s in summaries):
        for key in ("deletion_auc", "insertion_auc"):
            metrics[key] = statistics.mean(s["curves"][key] for s in summaries)
    return metrics


def write_index(out: Path, summaries: list[dict]) -> Path:
    """index.html: each clip's figure, players for its WAVs, and its faithfulness numbers."""
    means = mean_metrics(summaries)
    rows = []
    for s in summaries:
        folder = quote(s["folder"])
        players = "".join(f'<p>{name}<br><audio controls preload="none" '
                          f'src="{folder}/{quote(s["files"][name])}"></audio></p>' for name in WAVS)
        curves = (f"deletion AUC {s['curves']['deletion_auc']:.3f}, insertion AUC "
                  f"{s['curves']['insertion_auc']:.3f}<br>" if "curves" in s else "")
        kept = ", ".join(f"{k} {s['kept'][k]['kept']:.2f}" for k in ("salient", "random",
                                                                       "complement"))
        rows.append(
            f"<tr><td><b>{html.escape(s['name'])}</b><br>label: {html.escape(str(s['label']))}"
            f"<br>explained: {html.escape(', '.join(s['targets']))} "
            f"(p = {s['target_probability']:.3f})<br>{curves}kept probability: {kept}"
            f"<br><a href=\"{folder}/summary.json\">summary.json</a></td>"
            f"<td>{players}</td><td><a href=\"{folder}/figure.png\">"
            f"<img src=\"{folder}/figure.png\""
            f" width=\"480\" alt=\"figure of {html.escape(s['name'])}\"></a></td></tr>")
    mean_text = ", ".join(f"{k} {v:.3f}" for k, v in means.items())
    baseline = summaries[0].get("curves", {}).get("baseline", "mean")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            "<title>asf_jax explanations</title></head>\n<body>\n"
            f"<h1>Explanations ({len(summaries)} clips, {html.escape(summaries[0]['method'])})</h1>"
            f"\n<p>Means: {html.escape(mean_text)}. Kept = re-classified target probability of "
            "the reconstruction over the original's; curves remove/add the most salient cells "
            f"(removed cells set to the {html.escape(baseline)}"
            " log-mel).</p>\n<table border=\"1\">\n<tr><th>clip</th><th>audio</th><th>figure</th>"
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
