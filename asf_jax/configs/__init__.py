"""Training configs (ml-collections files), installed with the package.

A config is named (`slowfast_lep`) or given as a path (`my_configs/big.py`). A path that does not
exist but names a packaged config (`configs/slowfast_lep.py`, as the documentation writes it)
resolves to the packaged file, so the documented commands work from any directory.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import ml_collections
from absl import app, flags
from ml_collections import config_flags

PACKAGE_DIR = Path(__file__).parent


def available() -> list[str]:
    """Names of the packaged configs (modules with a `get_config`)."""
    return sorted(path.stem for path in PACKAGE_DIR.glob("[!_]*.py")
                  if "def get_config(" in path.read_text(encoding="utf-8"))


def config_path(name_or_path: str | os.PathLike) -> Path:
    """The file of a config given by name or path; `path:arg` keeps its argument."""
    text = str(name_or_path)
    spec, sep, argument = text.partition(":")
    path = Path(spec).expanduser()
    if not path.is_file():
        stem = path.name.removesuffix(".py")
        if stem not in available():
            raise FileNotFoundError(f"no config file {spec} and no packaged config named "
                                    f"{stem!r}; packaged configs: {', '.join(available())}")
        path = PACKAGE_DIR / f"{stem}.py"
    return Path(f"{path}{sep}{argument}")


def load_config(name_or_path: str | os.PathLike) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a config given by name or path (`path:arg` passes `arg`)."""
    path, _, argument = str(config_path(name_or_path)).partition(":")
    spec = importlib.util.spec_from_file_location(f"asf_jax_config_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(*([argument] if argument else []))


def resolve_config_flag(argv: list[str], flag: str = "config") -> list[str]:
    """`argv` with the value of `--config` (either form) replaced by its resolved file path."""
    resolved = list(argv)
    for index, arg in enumerate(argv):
        if arg == f"--{flag}" and index + 1 < len(argv):
            resolved[index + 1] = str(config_path(argv[index + 1]))
        elif arg.startswith(f"--{flag}="):
            resolved[index] = f"--{flag}={config_path(arg.split('=', 1)[1])}"
    return resolved


def define_config_flag(default: str | None = None) -> None:
    """absl's `--config` (a name or a file, with `--config.a.b=value` overrides parsed by
    ml-collections), unless another command of this process defined it already."""
    if "config" in flags.FLAGS:
        return
    config_flags.DEFINE_config_file(
        "config", default and str(config_path(default)),
        f"Config name ({', '.join(available())}) or file; override any field with "
        "--config.a.b=value.", lock_config=True)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing (for `app.run(flags_parser=...)`) with `--config NAME` resolved."""
    try:
        return flags.FLAGS(resolve_config_flag(argv))
    except FileNotFoundError as error:
        raise flags.Error(str(error)) from None


def run_app(main: Callable[[list[str]], None], module: str) -> None:
    """`app.run(main)` with `--config NAME` resolved; `--help` lists `--config` and the flags
    that `module` defined, also when run as a console script (absl lists `sys.argv[0]`'s)."""
    by_module = flags.FLAGS.flags_by_module_dict()
    for flag in by_module.get(__name__, []) + by_module.get(module, []):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main, flags_parser=parse_flags)
