"""The auditory Slow-Fast ResNet in PyTorch, for side-by-side benchmarks only (needs torch).

Same architecture as `asf_jax.models.slowfast` (its pathway tables are reused), laid out as the
reference lays it out: NCHW tensors (batch, channels, time, freq), module names that give the
reference's state-dict keys (`s1.pathway0_stem.conv.weight`, `s2.pathway0_res0.branch2.a_bn.bias`,
`s1_fuse.conv_f2s.weight`, `head.projection.weight`), so a reference `.pyth` loads with
`load_state_dict(strict=True)`. Only the benchmark's `--vs_torch` imports this module (lazily):
nothing else in `asf_jax` needs torch.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from asf_jax.models.slowfast import FREQ_STRIDES, ModelConfig, PathwaySpec, pathway_specs
from asf_jax.pyth import read_pyth


def _conv(in_channels: int, out_channels: int, kernel: tuple[int, int],
          stride: tuple[int, int] = (1, 1)) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride,
                     padding=tuple(k // 2 for k in kernel), bias=False)


class Stem(nn.Module):
    """conv (stride 2) -> BN -> ReLU -> 3x3 max-pool (stride 2, padding 1)."""

    def __init__(self, out_channels: int, kernel: tuple[int, int]):
        super().__init__()
        self.conv = _conv(1, out_channels, kernel, (2, 2))
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu_(self.bn(self.conv(x))))


class Fuse(nn.Module):
    """Fast -> Slow lateral: (kernel x 1) conv with time stride alpha, BN, ReLU, concatenated
    after the Slow channels."""

    def __init__(self, fast_channels: int, config: ModelConfig):
        super().__init__()
        out_channels = fast_channels * config.fusion_channel_ratio
        self.conv_f2s = _conv(fast_channels, out_channels, (config.fusion_kernel, 1),
                              (config.alpha, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        return torch.cat([slow, torch.relu_(self.bn(self.conv_f2s(fast)))], 1)


class Branch2(nn.Module):
    """a (Tk x 1) -> BN -> ReLU -> b (1 x 3, freq stride) -> BN -> ReLU -> c (1 x 1) -> BN."""

    def __init__(self, in_channels: int, inner: int, out_channels: int, time_kernel: int,
                 freq_stride: int):
        super().__init__()
        self.a = _conv(in_channels, inner, (time_kernel, 1))
        self.a_bn = nn.BatchNorm2d(inner)
        self.b = _conv(inner, inner, (1, 3), (1, freq_stride))
        self.b_bn = nn.BatchNorm2d(inner)
        self.c = _conv(inner, out_channels, (1, 1))
        self.c_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu_(self.a_bn(self.a(x)))
        x = torch.relu_(self.b_bn(self.b(x)))
        return self.c_bn(self.c(x))


class Bottleneck(nn.Module):
    """branch2 plus the shortcut (branch1: 1x1 conv + BN where the shape changes), then ReLU."""

    def __init__(self, in_channels: int, inner: int, out_channels: int, time_kernel: int,
                 freq_stride: int):
        super().__init__()
        if in_channels != out_channels or freq_stride != 1:
            self.branch1 = _conv(in_channels, out_channels, (1, 1), (1, freq_stride))
            self.branch1_bn = nn.BatchNorm2d(out_channels)
        self.branch2 = Branch2(in_channels, inner, out_channels, time_kernel, freq_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.branch1_bn(self.branch1(x)) if hasattr(self, "branch1") else x
        return torch.relu_(self.branch2(x) + residual)


def _stage_input(width: int, index: int) -> int:
    """Channels entering stage `index + 2` of a pathway of this width (before any lateral)."""
    return width * 2 ** (index + 1) if index else width


def _stage(specs: list[PathwaySpec], blocks: int, index: int) -> nn.Module:
    """Stage `index + 2`: modules `pathway{p}_res{i}`, run one pathway after the other."""
    stage = nn.Module()
    for p, spec in enumerate(specs):
        inner, out_channels = spec.width * 2**index, spec.width * 4 * 2**index
        in_channels = _stage_input(spec.width, index) + spec.lateral_channels[index]
        for i in range(blocks):
            stage.add_module(f"pathway{p}_res{i}", Bottleneck(
                in_channels, inner, out_channels, spec.time_kernels[index],
                FREQ_STRIDES[index] if i == 0 else 1))
            in_channels = out_channels
    return stage


class TorchAudioResNet(nn.Module):
    """Slow-Fast (or single-pathway) auditory ResNet: (batch, frames, mel) log-mel -> logits."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.specs = pathway_specs(config)
        self.s1 = nn.Module()
        for p, spec in enumerate(self.specs):
            self.s1.add_module(f"pathway{p}_stem", Stem(spec.width, spec.stem_kernel))
        for index, blocks in enumerate(config.blocks):
            if config.arch == "slowfast":
                fast_channels = _stage_input(self.specs[1].width, index)
                self.add_module(f"s{index + 1}_fuse", Fuse(fast_channels, config))
            self.add_module(f"s{index + 2}", _stage(self.specs, blocks, index))
        self.head = nn.Module()
        self.head.dropout = nn.Dropout(config.dropout_rate)
        out_channels = sum(spec.width * 32 for spec in self.specs)
        self.head.projection = nn.Linear(out_channels, config.num_classes)

    def pathway_inputs(self, logmel: torch.Tensor) -> list[torch.Tensor]:
        """(batch, frames, mel) -> per-pathway (batch, 1, time, mel); Slow gathers its frames."""
        x = logmel[:, None]
        if self.config.arch != "slowfast":
            return [x]
        frames = logmel.shape[1]
        index = np.linspace(0, frames - 1, frames // self.config.alpha).astype(np.int64)
        return [x[:, :, torch.from_numpy(index)], x]

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        xs = [getattr(self.s1, f"pathway{p}_stem")(x)
              for p, x in enumerate(self.pathway_inputs(logmel))]
        for index, blocks in enumerate(self.config.blocks):
            if self.config.arch == "slowfast":
                xs[0] = getattr(self, f"s{index + 1}_fuse")(xs[0], xs[1])
            stage = getattr(self, f"s{index + 2}")
            for p in range(len(xs)):
                for i in range(blocks):
                    xs[p] = getattr(stage, f"pathway{p}_res{i}")(xs[p])
        pooled = torch.cat([x.mean((2, 3)) for x in xs], 1)
        return self.head.projection(self.head.dropout(pooled))


def load_pyth(path: str | os.PathLike, config: ModelConfig) -> TorchAudioResNet:
    """A `TorchAudioResNet` holding every tensor of a reference `.pyth` (strict key match)."""
    model = TorchAudioResNet(config)
    state = {key: torch.from_numpy(np.array(value))
             for key, value in read_pyth(path).model_state.items()}
    model.load_state_dict(state, strict=True)
    return model


def reference_sgd(model: TorchAudioResNet, lr: float = 0.01) -> torch.optim.SGD:
    """The reference's optimiser: Nesterov SGD, momentum 0.9, weight decay 1e-4 except on BN."""
    batchnorm = [p for n, p in model.named_parameters() if "bn" in n]
    others = [p for n, p in model.named_parameters() if "bn" not in n]
    return torch.optim.SGD([{"params": batchnorm, "weight_decay": 0.0},
                            {"params": others, "weight_decay": 1e-4}],
                           lr=lr, momentum=0.9, nesterov=True)


class TorchSteps:
    """The PyTorch side of a side-by-side benchmark: a fresh model, the reference's optimiser
    and one random batch, with an inference step and a train step that wait for the device.

    `dtype="bfloat16"` runs under `torch.autocast` (mixed precision, float32 parameters), the
    counterpart of asf_jax's bfloat16 compute dtype. On the CPU, torch gets `threads` intra-op
    threads (the benchmark gives it every core, as XLA takes them all); on a GPU, cuDNN picks
    its fastest algorithms (`cudnn.benchmark`) as XLA autotunes its own.
    """

    def __init__(self, config: ModelConfig, batch_size: int, dtype: str, device: str,
                 threads: int, seed: int = 0):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(threads)
        else:
            torch.backends.cudnn.benchmark = True
        self.model = TorchAudioResNet(config).to(self.device)
        self.optimizer = reference_sgd(self.model)
        rng = np.random.default_rng(seed)
        logmel = rng.standard_normal((batch_size, config.num_frames, 128), np.float32)
        self.logmel = torch.from_numpy(logmel).to(self.device)
        self.labels = torch.from_numpy(rng.integers(0, config.num_classes, batch_size)).to(
            self.device)
        self.mixed = dtype == "bfloat16"

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.mixed)

    def _wait(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def infer(self) -> None:
        self.model.eval()
        with torch.no_grad(), self._autocast():
            self.model(self.logmel)
        self._wait()

    def train(self) -> None:
        """Forward, mean cross-entropy, backward, one SGD step (BatchNorm in training mode)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.model(self.logmel)
        nn.functional.cross_entropy(logits.float(), self.labels).backward()
        self.optimizer.step()
        self._wait()

    def peak_memory_bytes(self) -> int | None:
        """The CUDA allocator's peak so far; None on the CPU."""
        if self.device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated(self.device))

