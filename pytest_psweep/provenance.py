"""Where a session's rows come from: the sweep function's code hash, the git commit
and dirty flag of the rootdir, and the versions that matter (the provenance columns
``_code_hash``, ``_git_commit``, ``_git_dirty``, ``_versions``)."""

from __future__ import annotations

import ast
import hashlib
import inspect
import platform
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any


def code_hash(func: Any) -> str:
    """Hash of the sweep function's code: its body, not its decorators (which hold the
    params, so extending a grid is not new code), comments and layout left out."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        node = tree.body[0]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.decorator_list = []
        source = ast.unparse(node)
    except (OSError, TypeError, SyntaxError, IndexError, AttributeError):
        source = func.__code__.co_code.hex()
    return hashlib.sha1(source.encode()).hexdigest()


def provenance(folder: Path) -> dict[str, Any]:
    """Where a session's rows come from: git commit and dirty flag of ``folder``
    (None outside a git repository) and the versions that matter, in one string."""
    commit = _git(folder, "rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(folder, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    return {"_git_commit": commit, "_git_dirty": dirty, "_versions": versions(folder)}


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def versions(folder: Path) -> str:
    """``python=3.11.7 pytest=... pandas=... numpy=... pytest-psweep=... <project>=...``."""
    from importlib import metadata

    names = ["pytest", "pandas", "numpy", "pytest-psweep"]
    project = _project_name(folder)
    if project and project not in names:
        names.append(project)
    parts = [f"python={platform.python_version()}"]
    for name in names:
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " ".join(parts)


def _project_name(folder: Path) -> str | None:
    """The ``[project] name`` of folder's pyproject.toml, if there is one."""
    if sys.version_info < (3, 11):  # no tomllib
        return None
    import tomllib

    try:
        with open(folder / "pyproject.toml", "rb") as fh:
            name = tomllib.load(fh).get("project", {}).get("name")
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) else None
