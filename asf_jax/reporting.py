"""Where training numbers go: TensorBoard event files, optional Weights & Biases, a progress line,
means of the step metrics between reports, and a profiler trace of a few steps.

Only process 0 writes. TensorBoard files are written by tensorboardX: clu's metric writers import
TensorFlow, which asf_jax does not need; clu's metrics do not, and are used for the means.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import jax
from clu import metrics as clu_metrics


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class MetricWriter:
    """Scalars to TensorBoard (and W&B when a project is configured and wandb is installed)."""

    def __init__(self, workdir: str | Path, *, wandb_project: str = "", wandb_entity: str = "",
                 config: dict[str, Any] | None = None):
        self.active = jax.process_index() == 0
        self._tensorboard = None
        self._wandb = None
        if not self.active:
            return
        from tensorboardX import SummaryWriter

        self._tensorboard = SummaryWriter(str(Path(workdir) / "tensorboard"))
        if wandb_project:
            try:
                import wandb
            except ImportError:
                logging.warning("config.wandb.project is set but wandb is not installed "
                                "(pip install wandb); logging to TensorBoard only.")
            else:
                self._wandb = wandb.init(project=wandb_project, entity=wandb_entity or None,
                                         config=config, dir=str(workdir), resume="allow")

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        if not self.active:
            return
        for name, value in scalars.items():
            self._tensorboard.add_scalar(name, value, step)
        self._tensorboard.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
        if self._wandb is not None:
            self._wandb.finish()


class Progress:
    """Steps/s, clips/s (input included: wall time between reports) and ETA."""

    def __init__(self, total_steps: int, first_step: int, global_batch_size: int):
        self.total_steps = total_steps
        self.global_batch_size = global_batch_size
        self._last_step, self._last_time = first_step, time.perf_counter()

    def rates(self, step: int) -> dict[str, float]:
        now = time.perf_counter()
        steps_per_second = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        return {"steps_per_second": steps_per_second,
                "clips_per_second": steps_per_second * self.global_batch_size}

    def line(self, step: int, scalars: dict[str, float]) -> str:
        eta = (self.total_steps - step) / max(scalars["steps_per_second"], 1e-9)
        return (f"step {step}/{self.total_steps}  loss {scalars['train/loss']:.4f}  "
                f"acc {scalars['train/accuracy']:.3f}  lr {scalars['train/learning_rate']:.2e}  "
                f"{scalars['steps_per_second']:.2f} steps/s  "
                f"{scalars['clips_per_second']:.1f} clips/s  ETA {_format_duration(eta)}")


class RunningMeans:
    """Means of each step metric (loss, accuracy, norms, ...) since the last `compute`.

    Merging happens on the device, asynchronously; only `compute` waits for the values.
    """

    def __init__(self) -> None:
        self._means: dict[str, clu_metrics.Average] = {}

    def update(self, step_metrics: dict[str, jax.Array]) -> None:
        for name, value in step_metrics.items():
            new = clu_metrics.Average.from_model_output(value)
            self._means[name] = self._means[name].merge(new) if name in self._means else new

    def compute(self) -> dict[str, float]:
        """The means, as floats; starts a new interval."""
        means = {name: float(mean.compute()) for name, mean in self._means.items()}
        self._means = {}
        return means


class ProfileWindow:
    """A `jax.profiler` trace of `num_steps` training steps into WORKDIR/profile (TensorBoard's
    profile tab or Perfetto read it), starting two steps after `first_step` so that compilation
    is not traced."""

    def __init__(self, workdir: str | Path, first_step: int, num_steps: int):
        self.directory = Path(workdir) / "profile"
        self.start = first_step + 2
        self.stop = self.start + num_steps if num_steps else self.start
        self.active = False

    def step(self, step: int) -> None:
        """Call before training step `step + 1` runs."""
        if step == self.start and self.stop > self.start:
            jax.profiler.start_trace(str(self.directory))
            self.active = True
        elif step == self.stop and self.active:
            self.close()
            logging.info("Profile of steps %d-%d written to %s.", self.start + 1, self.stop,
                         self.directory)

    def close(self) -> None:
        if self.active:
            jax.profiler.stop_trace()
            self.active = False
