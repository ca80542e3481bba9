"""Make the README screenshots: the real window, offscreen, walked through each step.

    python packaging/screenshots.py [--data FOLDER] [--out resources/screenshots] [--size 1200x760]

Without ``--data`` it uses ../shared/datasets/hymenoptera when present, else a generated
folder of coloured pictures. It trains a short frozen-backbone run with export on, so every
panel shows real content, and saves ``<out>/<step>.png`` (data, model, train, evaluate, export).
Nothing outside a temporary folder is written except the PNGs.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_PNG_BYTES = 150_000


def wait_for(signal, timeout_ms: int) -> list:
    """Run the event loop until ``signal`` fires (or the time is up); return its arguments."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, got = QEventLoop(), []

    def done(*args):
        got.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(done)
    if not got:
        raise TimeoutError(f"no signal within {timeout_ms} ms")
    return list(got[0])


def settle(ms: int = 400) -> None:
    """Let queued work (thumbnails, plot redraws) land before a grab."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save_png(widget, path: Path) -> int:
    """Grab ``widget`` into ``path``; quantise to a palette if the plain PNG is too big. Returns the size."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    widget.grab().save(buffer, "PNG")
    data = bytes(buffer.data())
    if len(data) > MAX_PNG_BYTES:
        image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        data = out.getvalue()
    path.write_bytes(data)
    return len(data)


def default_data(tmp: Path) -> Path:
    hymenoptera = REPO.parent / "shared" / "datasets" / "hymenoptera"
    if (hymenoptera / "train").is_dir():
        return hymenoptera
    sys.path.insert(0, str(REPO))
    from tests.synthetic import make_colour_dataset

    return make_colour_dataset(tmp / "colours", per_class=24)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="image folder (default: hymenoptera, else generated)")
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "screenshots")
    parser.add_argument("--size", default="1200x760")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="tlstudio-shots-"))
    os.environ["TLSTUDIO_HOME"] = str(tmp / "home")  # no user folders touched

    from PySide6.QtCore import QSettings, QTimer

    from tlstudio.gui.app import make_application
    from tlstudio.gui.main_window import MainWindow

    app = make_application()
    app.setStyle("Fusion")
    window = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window.notifier.show_dialogs = False
    window.resize(width, height)
    window.show()
    studio = window.studio
    data = args.data or default_data(tmp)
    studio.new_project(tmp / "Insects" if "hymenoptera" in str(data) else tmp / "Colours")

    [index] = wait_for_scan(window, data)
    if index is None:
        raise SystemExit(f"the scan of {data} failed: {window.notifier.last}")
    args.out.mkdir(parents=True, exist_ok=True)
    shots = {}

    window.go_to("Data")
    gallery = window.data_panel.gallery
    first = gallery.models[index.classes[0]]
    wait_until(lambda: first.loaded() >= min(len(first.paths), 24), 30_000)
    settle()
    shots["data"] = save_png(window, args.out / "data.png")

    window.go_to("Model")
    window.model_panel.freeze.slider.setValue(2)  # show a partly frozen backbone: which stages train, how many parameters
    wait_until(lambda: window.model_panel.freeze.trainable_params() is not None, 60_000)
    settle()
    shots["model"] = save_png(window, args.out / "model.png")
    window.model_panel.freeze.slider.setValue(0)  # train the head only: seconds on a CPU

    cfg = studio.config
    cfg.epochs, cfg.export, cfg.image_size, cfg.batch_size = args.epochs, True, 160, 16
    window.go_to("Train")
    window.train_panel.settings.load(cfg)
    window.train_panel.start()
    [result] = wait_for(window.train_panel.run_finished, 600_000)
    if result is None or result.cancelled:
        raise SystemExit(f"training did not finish: {window.notifier.last}")
    settle(600)
    shots["train"] = save_png(window, args.out / "train.png")

    window.go_to("Evaluate")
    ev = window.evaluate_panel
    cm = ev.confusion_values()
    n = len(cm)
    # The cell with the most mistakes, its pictures, and where the model looked in the first one.
    i, j = max(((i, j) for i in range(n) for j in range(n) if i != j), key=lambda c: cm[c[0]][c[1]])
    ev.confusion.cell_clicked(i, j)
    wait_until(lambda: ev.gallery.count() == 0 or ev.gallery.loaded() >= min(ev.gallery.count(), 12), 30_000)
    if ev.gallery.count():
        QTimer.singleShot(0, lambda: ev.gallery.select(0))
        wait_for(ev.activation.shown, 60_000)
    settle()
    shots["evaluate"] = save_png(window, args.out / "evaluate.png")

    window.go_to("Export")
    window.export_panel.export_to(tmp / "insects.pt")
    wait_for(window.export_panel.exported, 60_000)
    settle()
    shots["export"] = save_png(window, args.out / "export.png")

    for name, size in shots.items():
        print(f"{args.out / (name + '.png')}: {size / 1000:.0f} KB")
    window.close()
    return 0


def wait_for_scan(window, data: Path) -> list:
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, lambda: window.data_panel.open_folder(data))
    return wait_for(window.data_panel.scan_done, 120_000)


def wait_until(predicate, timeout_ms: int) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(50)
    poll.timeout.connect(lambda: predicate() and loop.quit())
    poll.start()
    QTimer.singleShot(timeout_ms, loop.quit)
    if not predicate():
        loop.exec()
    poll.stop()


if __name__ == "__main__":
    sys.exit(main())
