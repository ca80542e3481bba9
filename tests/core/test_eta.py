"""Time left and time spent in a phase leave the pauses out: the ETA helper, the StopToken's paused seconds, the fit loop's epoch time."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from tlstudio.core.distributed import SINGLE
from tlstudio.core.engine.feeds import Scores
from tlstudio.core.engine.fit import FitState, Optimisation, fit
from tlstudio.core.eta import ActiveTimer, PhaseEta, PhaseProgress
from tlstudio.core.events import PhaseStarted, Progress, StopToken


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_phase_eta_is_the_rate_so_far_applied_to_what_is_left():
    clock = FakeClock()
    eta = PhaseEta(100, clock=clock)
    assert eta.seconds_left(0) is None  # nothing done: no rate
    clock.now += 0.2
    assert eta.seconds_left(5) is None  # under half a second: noise, not a rate
    clock.now += 9.8
    assert eta.seconds_left(25) == pytest.approx(30.0)  # 25 in 10 s: 75 left take 30 s
    assert eta.seconds_left(100) == 0.0


def test_phase_eta_leaves_paused_seconds_out():
    clock, paused = FakeClock(), FakeClock(0.0)
    eta = PhaseEta(100, paused_seconds=paused, clock=clock)
    clock.now += 10
    assert eta.seconds_left(50) == pytest.approx(10.0)
    clock.now += 60  # a minute paused: the rate is what it was
    paused.now += 60
    assert eta.seconds_left(50) == pytest.approx(10.0)
    timer = ActiveTimer(paused, clock)
    clock.now += 5
    paused.now += 3
    assert timer.seconds() == pytest.approx(2.0)


def test_phase_progress_measures_a_resumed_phase_from_its_first_report():
    clock = FakeClock()
    phase = PhaseProgress(clock=clock)
    phase.update(PhaseStarted("training", 300))
    assert (phase.state().name, phase.state().done, phase.state().total, phase.state().seconds_left) == ("training", 0, 300, None)
    phase.update(Progress(200, 300))  # a resumed run: 200 steps done in an earlier session
    clock.now += 10
    phase.update(Progress(210, 300))
    state = phase.state()
    assert state.fraction == pytest.approx(0.7)
    assert state.seconds_left == pytest.approx(90.0)  # 10 steps in 10 s, 90 left; not 200 steps in 10 s
    phase.update(PhaseStarted("evaluating", 40))
    assert (phase.state().name, phase.state().done, phase.state().seconds_left) == ("evaluating", 0, None)


def test_a_paused_token_counts_the_seconds_the_work_was_held():
    clock = FakeClock()
    token = StopToken(clock=clock)
    token.check()  # not paused: returns at once, nothing counted
    assert token.paused_seconds == 0.0 and not token.blocked
    token.pause()
    worker = threading.Thread(target=token.check)
    worker.start()
    assert token.wait_until_blocked(10)
    clock.now += 7
    assert token.paused_seconds == pytest.approx(7.0)  # the pause in progress counts
    token.resume()
    worker.join(10)
    assert not worker.is_alive() and not token.blocked
    clock.now += 50  # running again: no more paused seconds
    assert token.paused_seconds == pytest.approx(7.0)


def test_several_threads_held_by_one_pause_count_it_once():
    clock = FakeClock()
    token = StopToken(clock=clock)
    token.pause()
    workers = [threading.Thread(target=token.check) for _ in range(3)]
    for w in workers:
        w.start()
    assert token.wait_until_blocked(10)
    clock.now += 4
    token.resume()
    for w in workers:
        w.join(10)
    assert token.paused_seconds == pytest.approx(4.0)


class PausingFeed:
    """Two batches an epoch; before the second, the run is paused for ``pause_s`` of wall-clock time."""

    def __init__(self, token: StopToken, pause_s: float):
        self.token, self.pause_s = token, pause_s
        self.resumed = threading.Event()

    def steps_per_epoch(self) -> int:
        return 2

    def train_batches(self, epoch: int):
        x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
        yield x, y
        self.token.pause()
        threading.Thread(target=self._resume_later, daemon=True).start()
        yield x, y  # the loop checks the token before this batch: held there

    def _resume_later(self) -> None:
        assert self.token.wait_until_blocked(10)
        self.resumed.wait(self.pause_s)  # the length of the user's pause
        self.token.resume()

    def forward_train(self, x):
        return self.model(x)

    def score_selection(self):
        return None

    def validate(self) -> Scores:
        return Scores(0.5, 0.5, 0.5)


def test_an_epoch_s_seconds_leave_the_pause_out():
    token = StopToken()
    model = torch.nn.Linear(3, 2)
    ctx = SimpleNamespace(stop=token, device=torch.device("cpu"), amp=None, criterion=torch.nn.CrossEntropyLoss(), model=model, ranks=SINGLE)
    feed = PausingFeed(token, pause_s=1.5)
    feed.model = model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = Optimisation(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), torch.amp.GradScaler("cpu", enabled=False))
    state = fit(ctx, feed, opt, [], FitState(epochs=1), lambda: model.train())
    assert token.paused_seconds >= 1.4
    assert state.history[0]["seconds"] < 1.0  # two tiny batches: the 1.5 s pause is not part of the epoch
