"""Where tlstudio keeps its own files. One resolver, overridable for tests and portable installs."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def data_dir() -> Path:
    """Per-user data: imported weights, shared caches. ``TLSTUDIO_HOME`` overrides."""
    env = os.environ.get("TLSTUDIO_HOME")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "tlstudio"


def cache_dir() -> Path:
    """Decoded images and cached features when no project folder is given. ``TLSTUDIO_CACHE`` overrides."""
    env = os.environ.get("TLSTUDIO_CACHE")
    if env:
        return Path(env)
    return data_dir() / "cache"


def resources_dir() -> Path:
    """The repo's ``resources/`` folder, also inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"
