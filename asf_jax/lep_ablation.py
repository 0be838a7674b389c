"""Baseline vs. Label Embeddings Projection: text encoders x embedding losses x λ, one table.

    python scripts/lep_ablation.py --data_dir demo/tfds --workdir demo/lep_ablation \\
        --encoders glove-6b-50d,minilm --losses mse,cosine,contrastive --lams 0.25,0.5 \\
        --num_epochs 9 --held_out 2 --seeds 0,1 [--config demo] [--config.a.b=value ...] \\
        [--templates "{label}" --templates "the sound of {label}|a recording of a {label}"]

Every run is `train_and_evaluate` of the same config (the packaged `demo` unless --config), with
only `config.lep` and the seed changed, in `WORKDIR/<run>_seed<S>`; rerunning resumes unfinished
runs and reuses finished ones. With `--held_out K` all runs of a seed train without the same K
classes (chosen by the seed; `--config.lep.held_out="viola,tenor sax"` names them instead), and
the LEP runs also report zero-shot accuracy on those classes' test clips (cosine of ê against
their label embeddings) and the generalised zero-shot harmonic mean. Prints one markdown table
(also written to WORKDIR/ablation.md): top-1, top-5, mAP, d′ over all classes, held-out top-1
with chance, GZSL H; with several seeds, mean ± std over them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import ml_collections
import numpy as np
from absl import app, flags

from asf_jax import configs, experiments
from asf_jax.embeddings import check_templates, is_sentence_encoder

FLAGS = flags.FLAGS


def define_flags() -> None:
    configs.define_config_flag("demo")
    flags.DEFINE_string("data_dir", None, "Built dataset (python -m asf_jax.datasets.build).")
    flags.DEFINE_string("workdir", None, "One sub-directory per run, and ablation.md.")
    flags.DEFINE_string("data_config", "slowfast", "Builder config of the data (slowfast, "
                        "slow, ...).")
    flags.DEFINE_list("lams", ["0.25", "0.5", "0.75"], "λ values, one LEP run each.")
    flags.DEFINE_list("encoders", ["glove-6b-50d"], "Text encoders of the class names "
                      "(glove-6b-50d, minilm, glove:PATH, ...).")
    flags.DEFINE_list("losses", ["mse"], "Embedding terms (mse, cosine, contrastive).")
    flags.DEFINE_multi_string("templates", [], "A prompt set of the sentence encoders, one LEP "
                              "run each; '|' separates the templates of an ensemble ('{label}|"
                              "the sound of {label}'). Repeatable; word-vector encoders take "
                              "none. Default: lep.templates of the config.")
    flags.DEFINE_list("seeds", ["0"], "Seeds; every run once per seed.")
    flags.DEFINE_integer("num_epochs", 12, "Training epochs of every run.")
    flags.DEFINE_integer("num_steps", None, "Training steps of every run (overrides "
                         "--num_epochs).")
    flags.DEFINE_integer("held_out", 0, "Classes kept out of training in every run (zero-shot "
                         "test).")
    flags.DEFINE_float("clip_norm", 1.0, "Gradient-norm clipping in every run (the thesis's "
                       "LEP: 1.0).")
    flags.mark_flags_as_required(["data_dir", "workdir"])


def held_out_cell(results: list[experiments.Results]) -> str:
    if "heldout_top1" not in results[0]:
        return "—"
    chance = 100 * np.mean([r["heldout_chance_top1"] for r in results])
    cell = experiments.mean_std([r["heldout_top1"] for r in results], 100, 1)
    return f"{cell} (chance {chance:.1f})"


def gzsl_cell(results: list[experiments.Results]) -> str:
    if "gzsl_h" not in results[0]:
        return "—"
    return experiments.mean_std([r["gzsl_h"] for r in results], 100, 1)


COLUMNS = (*experiments.STANDARD_COLUMNS, experiments.Column("held-out top-1 %", held_out_cell),
           experiments.Column("GZSL H %", gzsl_cell))


def slug(name: str) -> str:
    """A run's folder name: `LEP minilm mse λ=0.5` -> `LEP_minilm_mse_lam0.5`."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name.replace(" λ=", "_lam"))


def parse_template_set(text: str) -> tuple[str, ...]:
    """`"{label}|the sound of {label}"` -> ("{label}", "the sound of {label}")."""
    return check_templates([template.strip() for template in text.split("|")])


def encoder_arm(encoder: str, templates: tuple[str, ...]) -> tuple[str, dict[str, object]]:
    """The run-name part and config changes of one encoder read through one prompt set (none:
    the config's own `lep.templates`)."""
    if not templates:
        return encoder, {"lep.encoder": encoder}
    return (f"{encoder} [{' | '.join(templates)}]",
            {"lep.encoder": encoder, "lep.templates": templates})


def ablation_runs(config: ml_collections.ConfigDict, workdir: Path, lams: list[float],
                  seeds: list[int], *, encoders: list[str] = ("glove-6b-50d",),
                  losses: list[str] = ("mse",), template_sets: list[tuple[str, ...]] = (),
                  data_dir: str, data_config: str, num_epochs: int, num_steps: int | None,
                  held_out: int, clip_norm: float) -> list[experiments.Run]:
    """The baseline and one LEP run per encoder (and prompt set, for sentence encoders), loss
    and λ, for every seed, evaluated once at the end; the class names are embedded at start-up
    (`lep.embeddings` is cleared)."""
    shared = {"data.data_dir": data_dir, "data.config": data_config,
              "train.num_epochs": num_epochs, "train.num_steps": num_steps,
              "eval.every_epochs": 10_000, "lep.held_out_classes": held_out,
              "optim.clip_norm": clip_norm, "lep.embeddings": ""}
    arms: dict[str, dict[str, object]] = {"baseline": {"lep.enable": False, "lep.lam": 0.0}}
    readers = [encoder_arm(encoder, templates) for encoder in encoders
               for templates in (template_sets if is_sentence_encoder(encoder) else ()) or [()]]
    arms |= {f"LEP {reader} {loss} λ={lam:g}": {"lep.enable": True, "lep.lam": lam,
                                                "lep.loss": loss} | changes
             for reader, changes in readers for loss in losses for lam in lams}
    return [experiments.Run(name, experiments.variant(config, shared | arm | {"seed": seed}),
                            workdir / f"{slug(name)}_seed{seed}")
            for name, arm in arms.items() for seed in seeds]


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)
    workdir = Path(FLAGS.workdir)
    runs = ablation_runs(FLAGS.config, workdir, [float(lam) for lam in FLAGS.lams],
                         [int(seed) for seed in FLAGS.seeds], encoders=FLAGS.encoders,
                         losses=FLAGS.losses,
                         template_sets=[parse_template_set(t) for t in FLAGS.templates],
                         data_dir=FLAGS.data_dir,
                         data_config=FLAGS.data_config, num_epochs=FLAGS.num_epochs,
                         num_steps=FLAGS.num_steps, held_out=FLAGS.held_out,
                         clip_norm=FLAGS.clip_norm)
    table = experiments.markdown_table(experiments.run_all(runs), COLUMNS)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ablation.md").write_text(table + "\n")
    print(table)


def run() -> None:
    """Entry point (console script and scripts/lep_ablation.py)."""
    define_flags()
    configs.run_app(main, __name__)


if __name__ == "__main__":
    run()
