"""The training settings form edits the run's TrainConfig, including the GPU speed options."""

from __future__ import annotations

from tlstudio.core.config import TrainConfig
from tlstudio.gui.widgets.train_settings import TrainSettings


def test_the_gpu_options_show_and_edit_the_config(qtbot):
    config = TrainConfig(device_augment=True)
    settings = TrainSettings(config)
    qtbot.addWidget(settings)
    assert settings.device_augment.isChecked() and not settings.torch_compile.isChecked()

    settings.torch_compile.click()
    settings.device_augment.click()
    assert config.torch_compile and not config.device_augment

    reopened = TrainConfig(torch_compile=False, device_augment=True)  # another project's settings
    settings.load(reopened)
    assert settings.device_augment.isChecked() and not settings.torch_compile.isChecked()
    assert config.torch_compile  # the first config is no longer edited
    settings.torch_compile.click()
    assert reopened.torch_compile

    settings.set_enabled_for_run(True)
    assert not settings.device_augment.isEnabled() and not settings.torch_compile.isEnabled()
    settings.set_enabled_for_run(False)
    assert settings.device_augment.isEnabled()
