"""Our strategies run the reusable conformance suite from torrio.testing."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from torrio.core import Bitfield
from torrio.select import (
    LazyBitfieldRevelation,
    Picker,
    PieceLayout,
    QueueingStrategy,
    QueueSettings,
    RequestQueue,
    RevelationStrategy,
    SelectionStrategy,
    StandardRevelation,
    SuperSeedingRevelation,
)
from torrio.testing.select_conformance import (
    QueueingConformance,
    RevelationConformance,
    SelectionConformance,
    check_selection_strategy,
    picker_state_machine,
)


def _picker(layout: PieceLayout, have: Bitfield | None) -> SelectionStrategy:
    return Picker(layout, have=have, seed=3)


def _small_queue_picker(layout: PieceLayout, have: Bitfield | None) -> SelectionStrategy:
    q = RequestQueue(QueueSettings(snub_timeout=20.0, request_timeout=60.0))
    return Picker(layout, have=have, queueing=q, seed=5)


class TestPickerConformance(SelectionConformance):
    def make_picker(self, layout: PieceLayout, have: Bitfield | None) -> SelectionStrategy:
        return _picker(layout, have)


class TestRequestQueueConformance(QueueingConformance):
    def make_queue(self) -> QueueingStrategy:
        return RequestQueue()


class TestStandardRevelation(RevelationConformance):
    def make_revelation(self, have: Bitfield) -> RevelationStrategy:
        return StandardRevelation(have)


class TestLazyRevelation(RevelationConformance):
    def make_revelation(self, have: Bitfield) -> RevelationStrategy:
        return LazyBitfieldRevelation(have, withhold=2, seed=1)


class TestSuperSeedingRevelation(RevelationConformance):
    reveals_everything = False

    def make_revelation(self, have: Bitfield) -> RevelationStrategy:
        return SuperSeedingRevelation(have, seed=1)


def test_check_function_runs_whole_suite() -> None:
    check_selection_strategy(_picker)


_machine_settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestPickerMachine = picker_state_machine(_small_queue_picker).TestCase
TestPickerMachine.settings = _machine_settings
