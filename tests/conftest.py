import os
from pathlib import Path

import pytest

# GUI tests run without a display; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
HYMENOPTERA = REPO.parent / "shared" / "datasets" / "hymenoptera"


@pytest.fixture(autouse=True, scope="session")
def _private_homes(tmp_path_factory):
    """Tests never read or write the user's real tlstudio folders or torch hub cache.

    Session-wide, so module-scoped fixtures (which train and export, recording trusted models) see it too."""
    home = tmp_path_factory.getbasetemp() / "tlstudio-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TLSTUDIO_HOME", str(home))
        mp.setenv("TORCH_HOME", str(home / "torch"))
        yield


@pytest.fixture
def hymenoptera() -> Path:
    if not (HYMENOPTERA / "train").is_dir():
        pytest.skip("../shared/datasets/hymenoptera is not present")
    return HYMENOPTERA
