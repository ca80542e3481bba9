"""Try it on a model file tlstudio did not make: asked once on the GUI thread; no runs nothing, yes runs it and is remembered."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from tests.faults.evil_model import make_evil_model, ran

pytestmark = pytest.mark.gui


@pytest.fixture
def view(qtbot):
    from tlstudio.gui.notifier import Notifier
    from tlstudio.gui.studio import Studio
    from tlstudio.gui.widgets.try_it import TryItView

    notifier = Notifier()
    notifier.show_dialogs = False
    studio = Studio(notifier)
    made = []

    def make():
        made.append(TryItView(studio))
        qtbot.addWidget(made[-1])
        return made[-1]

    yield make
    assert studio.jobs.wait_all(60_000)
    qtbot.waitUntil(lambda: not studio.jobs.busy(), timeout=10_000)


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "picture.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return str(path)


def answering(answer: bool, asked: list):
    def ask(model_path: str) -> bool:
        asked.append((model_path, threading.current_thread() is threading.main_thread()))
        return answer

    return ask


def test_no_runs_nothing(qtbot, view, picture, tmp_path):
    from tlstudio.gui.widgets.try_it import NOT_TRUSTED

    model, marker = make_evil_model(tmp_path / "evil.pt", tmp_path / "overwritten"), tmp_path / "overwritten"
    try_it, asked = view(), []
    try_it.ask_to_trust = answering(False, asked)
    try_it.set_model_file(model)
    try_it.predict([picture])
    qtbot.waitUntil(lambda: try_it.job is None and try_it.status.text() == NOT_TRUSTED, timeout=30_000)
    assert asked == [(str(model), True)]
    assert ran(marker) == set() and try_it.results() == []


def test_yes_runs_it_and_is_not_asked_again(qtbot, view, picture, tmp_path):
    model, marker = make_evil_model(tmp_path / "evil.pt", tmp_path / "overwritten"), tmp_path / "overwritten"
    try_it, asked = view(), []
    try_it.ask_to_trust = answering(True, asked)
    try_it.set_model_file(model)
    with qtbot.waitSignal(try_it.predicted, timeout=30_000) as blocker:
        try_it.predict([picture])
    assert asked == [(str(model), True)]
    (result,) = blocker.args[0]
    assert not result.error and [name for name, _ in result.top] == ["ants", "bees"]
    assert ran(marker) == {"load", "forward"}
    with qtbot.waitSignal(try_it.predicted, timeout=30_000):
        try_it.predict([picture])
    another = view()  # a new window loads the file again: the yes was remembered for its hash
    another.ask_to_trust = answering(True, asked)
    another.set_model_file(model)
    with qtbot.waitSignal(another.predicted, timeout=30_000):
        another.predict([picture])
    assert len(asked) == 1


def test_a_model_this_installation_exported_is_not_asked_about(qtbot, view, picture, tmp_path):
    from tests.faults.test_untrusted_model import PRE, tiny_network
    from tlstudio.core.inference.export import export_torchscript

    model = export_torchscript(tiny_network(), PRE, ["cats", "dogs"], {}, tmp_path / "model.pt")
    try_it, asked = view(), []
    try_it.ask_to_trust = answering(False, asked)
    try_it.set_model_file(model)
    with qtbot.waitSignal(try_it.predicted, timeout=30_000) as blocker:
        try_it.predict([picture])
    assert asked == [] and not blocker.args[0][0].error
