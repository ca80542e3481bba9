"""A backbone whose weights are not on this computer: marked in the table, and got right there on the Model step.

Issue 14: ResNet-18 could be picked and Start accepted, the run then failed naming terminal
commands, and an offline Download showed "[Errno -2] Name or service not known".
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

import torch  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from tlstudio.core.catalog import backbones as bb  # noqa: E402
from tlstudio.core.catalog import weights  # noqa: E402
from tlstudio.core.events import Progress  # noqa: E402

pytestmark = pytest.mark.gui

SMALL = "mobilenet_v3_small"  # the cheapest torchvision entry to serve and import


@pytest.fixture
def own_homes(tmp_path, monkeypatch) -> Path:
    """Empty torch hub and tlstudio folders: no backbone but the bundled one has its weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    return tmp_path


def checkpoint_files() -> list[str]:
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def official_file(folder: Path, monkeypatch, base_url: str = "https://download.pytorch.org/models") -> Path:
    """Random weights saved under a torchvision-style name, made the catalog's official file (its sha256 prefix in the URL)."""
    torch.manual_seed(0)
    raw = folder / "raw.pth"
    torch.save(bb.architecture(bb.get_backbone(SMALL)).state_dict(), raw)
    path = raw.rename(folder / f"{SMALL}-{hashlib.sha256(raw.read_bytes()).hexdigest()[:8]}.pth")
    monkeypatch.setitem(bb.catalog(), SMALL, dataclasses.replace(bb.get_backbone(SMALL), weights_url=f"{base_url}/{path.name}"))
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over a folder; yields (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Quiet(*a, directory=str(folder)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def fresh_panel(window):
    panel = window.model_panel
    panel.refresh_availability()  # the homes changed after the window read them
    return panel


def test_a_backbone_without_weights_is_marked_and_offers_import_and_download_in_place(window, own_homes):
    panel = fresh_panel(window)
    table, bar = panel.table, panel.weights_bar
    spec = bb.get_backbone("resnet18")
    assert weights.availability(spec) == weights.NEEDS_DOWNLOAD
    assert table.marked_missing("resnet18") and table.marked_missing(SMALL)
    assert not table.marked_missing("efficientnet_lite0") and table.availability("efficientnet_lite0") == weights.BUNDLED
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).data(Qt.ItemDataRole.UserRole) == "resnet18")
    assert weights.weights_file_name(spec) in table.item(row, 4).toolTip()  # the file to look for, on hover

    assert table.current() == "efficientnet_lite0"
    assert not bar.missing_shown() and panel.download_button.isHidden() and panel.import_button.isHidden()

    panel.select_backbone("resnet18")
    assert bar.missing_shown() and weights.weights_file_name(spec) in bar.note.text()
    assert not panel.download_button.isHidden() and panel.download_button.isEnabled()
    assert not panel.import_button.isHidden() and panel.import_button.isEnabled()
    assert panel.cancel_button.isHidden() and panel.progress.isHidden()

    panel.select_backbone("efficientnet_lite0")
    assert not bar.missing_shown() and panel.download_button.isHidden()


def test_download_without_network_says_so_in_place_names_the_file_and_keeps_nothing(qtbot, window, own_homes, monkeypatch):
    spec = bb.get_backbone(SMALL)
    url = f"http://127.0.0.1:{closed_port()}/{weights.weights_file_name(spec)}"
    monkeypatch.setitem(bb.catalog(), SMALL, dataclasses.replace(spec, weights_url=url))
    panel = fresh_panel(window)
    errors = []
    window.notifier.notified.connect(errors.append)
    panel.select_backbone(SMALL)

    with qtbot.waitSignal(panel.weights_changed, timeout=60_000):
        panel.download_button.click()
    offline = panel.download_problem
    assert isinstance(offline, weights.Unreachable) and offline.backbone == SMALL and offline.url == url
    assert offline.file_name == weights.weights_file_name(spec)
    assert panel.weights_bar.missing_shown() and panel.weights_bar.note.text() == offline.plain
    shown = panel.weights_bar.note.text() + panel.status.text()
    assert "Errno" not in shown and "tlstudio weights" not in shown  # no errno, no terminal command
    assert errors == []  # said in place, not as a failure dialog
    assert checkpoint_files() == [] and panel.table.marked_missing(SMALL)
    assert panel.download_button.isEnabled() and panel.import_button.isEnabled() and panel.cancel_button.isHidden()

    panel.select_backbone("resnet18")  # the offline answer belongs to the other backbone
    assert panel.weights_bar.note.text() != offline.plain and panel.weights_bar.missing_shown()
    panel.select_backbone(SMALL)
    assert panel.weights_bar.note.text() == offline.plain


def test_a_file_missing_on_the_server_is_said_in_place_and_is_not_called_offline(qtbot, window, own_homes, monkeypatch, server):
    base, _folder = server  # serves an empty folder: 404
    spec = bb.get_backbone(SMALL)
    monkeypatch.setitem(bb.catalog(), SMALL, dataclasses.replace(spec, weights_url=f"{base}/{weights.weights_file_name(spec)}"))
    panel = fresh_panel(window)
    errors = []
    window.notifier.notified.connect(errors.append)
    panel.select_backbone(SMALL)

    with qtbot.waitSignal(panel.weights_changed, timeout=60_000):
        panel.download_button.click()
    problem = panel.download_problem
    assert isinstance(problem, weights.DownloadError) and not isinstance(problem, weights.Unreachable)
    assert panel.weights_bar.note.text() == problem.plain and errors == []
    assert checkpoint_files() == [] and panel.table.marked_missing(SMALL)


def test_importing_a_file_with_the_button_takes_the_mark_away_at_once(qtbot, window, own_homes, tmp_path, monkeypatch):
    file = official_file(tmp_path, monkeypatch)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *args, **kwargs: (str(file), "")))
    panel = fresh_panel(window)
    panel.select_backbone(SMALL)
    assert panel.table.marked_missing(SMALL) and panel.weights_bar.missing_shown()

    with qtbot.waitSignal(panel.weights_changed, timeout=60_000) as changed:
        panel.import_button.click()
    assert changed.args == [SMALL]
    assert weights.availability(bb.get_backbone(SMALL)) == weights.IMPORTED
    assert not panel.table.marked_missing(SMALL) and panel.table.availability(SMALL) == weights.IMPORTED
    assert not panel.weights_bar.missing_shown() and panel.download_button.isHidden()
    assert not panel.import_button.isHidden()  # another file can still replace it
    qtbot.waitUntil(lambda: not window.studio.jobs.busy(), timeout=60_000)


def test_a_download_shows_megabytes_and_takes_the_mark_away_at_once(qtbot, window, own_homes, tmp_path, monkeypatch, server):
    base, folder = server
    file = official_file(folder, monkeypatch, base_url=base)
    panel = fresh_panel(window)
    panel.select_backbone(SMALL)
    assert panel.table.marked_missing(SMALL)

    with qtbot.waitSignal(panel.weights_changed, timeout=60_000):
        panel.download_button.click()
        events = []
        panel.download_job.event.connect(events.append)  # before the event loop runs: no event is missed
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].done == progress[-1].total == file.stat().st_size
    assert checkpoint_files() == [file.name] and panel.download_problem is None
    assert not panel.table.marked_missing(SMALL) and panel.table.availability(SMALL) == weights.CACHED
    assert not panel.weights_bar.missing_shown() and panel.download_button.isHidden() and panel.progress.isHidden()
