"""JAX's persistent compilation cache in a user cache dir: a command's second run compiles nothing.

The directory is `$ASF_JAX_CACHE_DIR`, else `$XDG_CACHE_HOME/asf_jax/xla` (`~/.cache/asf_jax/xla`).
`ASF_JAX_CACHE_DIR=off` (or `0`, or empty) turns it off; a cache directory already chosen through
JAX's own setting (`JAX_COMPILATION_CACHE_DIR`) is left as it is. Entries are keyed by the program,
the JAX version and the device, never by the weights, so every checkpoint of an architecture
shares them; deleting the folder is always safe.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

ENV = "ASF_JAX_CACHE_DIR"
OFF = ("", "0", "off", "none", "false")


def cache_dir() -> Path | None:
    """Where compiled programs are kept, or None when the cache is turned off."""
    setting = os.environ.get(ENV)
    if setting is not None:
        return None if setting.strip().lower() in OFF else Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "asf_jax" / "xla"


def enable_compilation_cache() -> Path | None:
    """Turn the persistent cache on for this process (before the first compile); returns its
    directory, None when off."""
    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return Path(chosen)
    directory = cache_dir()
    if directory is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return directory
