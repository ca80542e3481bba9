"""The baseline's estimate: a short, real trial of the whole network, and the arithmetic from it."""

from __future__ import annotations

import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.speed_probe import SpeedEstimate, measure_training_speed
from tlstudio.core.events import Cancelled, StopToken


def test_the_estimate_is_pictures_times_epochs_over_the_measured_speed():
    assert SpeedEstimate(images_per_s=4.0, pictures=100, epochs=20).seconds == pytest.approx(500.0)
    assert SpeedEstimate(images_per_s=4.0, pictures=0, epochs=20).seconds is None  # pictures not known: no made-up figure


def test_a_trial_of_the_whole_network_measures_a_speed_without_any_weights_file(tmp_path):
    config = TrainConfig(data_dir=str(tmp_path), backbone="resnet18", pretrained=False, freeze_depth="none", image_size=32, batch_size=2, device="cpu")
    estimate = measure_training_speed(config, num_classes=3, pictures=50)  # ResNet-18 has no weights on this machine: none needed
    assert estimate.images_per_s > 0 and (estimate.pictures, estimate.epochs) == (50, config.epochs)
    assert estimate.seconds == pytest.approx(50 * config.epochs / estimate.images_per_s)


def test_a_stopped_trial_stops(tmp_path):
    token = StopToken()
    token.stop()
    config = TrainConfig(data_dir=str(tmp_path), backbone="resnet18", pretrained=False, freeze_depth="none", image_size=32, batch_size=2, device="cpu")
    with pytest.raises(Cancelled):
        measure_training_speed(config, num_classes=2, pictures=10, stop=token)
