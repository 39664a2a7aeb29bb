"""Compiles the detectors' per-event path with mypyc; everything else is in pyproject.toml.

The modules below run for every event (the pipeline, its families and their detectors): mypyc
turns them, as they are (typed, mypy --strict), into C extensions: 3.7 times fewer
instructions per event than the same code interpreted (README, Benchmarks). The .py files stay
the source and the reference: ``AGENTWATCH_PURE_PYTHON=1`` at install time builds none, and the
package runs the same, slower (tests/unit/detectors/test_native.py holds both to the same
results). Where they cannot be built (no C compiler), the install warns and goes on interpreted.

mypy must see the modules under their import names (``agentwatch.detectors._rate``), but the
repository keeps ``detectors/`` at its root (DESIGN.md), so the build reads them through a tree
of symlinks, as ``make check`` does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

NATIVE_MODULES = [
    "_drift",
    "_drop",
    "_families",
    "_families_health",
    "_health",
    "_loop",
    "_messages",
    "_pace",
    "_pipeline",
    "_rate",
    "_session_pattern",
    "_snapshots",
    "_state",
    "_types",
    "_windows",
]


def _native_extensions() -> list[object]:
    if os.environ.get("AGENTWATCH_PURE_PYTHON", "") not in ("", "0"):
        return []
    from mypyc.build import mypycify

    root = Path(__file__).resolve().parent
    tree = root / "build" / "mypyc-src"
    package = tree / "agentwatch"
    package.mkdir(parents=True, exist_ok=True)
    link = package / "detectors"
    if not link.is_symlink():
        link.symlink_to(root / "detectors", target_is_directory=True)
    os.environ["MYPYPATH"] = str(tree)
    paths = [str(link / f"{name}.py") for name in NATIVE_MODULES]
    return mypycify(
        ["--explicit-package-bases", "--ignore-missing-imports", *paths],
        separate=[(paths, "agentwatch.detectors._native")],
        target_dir=str(root / "build" / "mypyc"),
    )


class _OptionalBuildExt(build_ext):
    """Builds the extensions, or none: a partial build would leave modules that cannot load."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # the compiler's errors have no common base worth naming
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            print(
                f"warning: agentwatch's detectors could not be compiled ({exc}); they run "
                "interpreted, about a third as fast. Install a C compiler (gcc) and the Python "
                "headers, then reinstall, to compile them.",
                file=sys.stderr,
            )


setup(ext_modules=_native_extensions(), cmdclass={"build_ext": _OptionalBuildExt})
