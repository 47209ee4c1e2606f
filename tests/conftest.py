"""Shared fixtures: Pulumi mocks installed for tests that build outputs or resources."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import RecordingMocks  # noqa: E402


@pytest.fixture
def mocks() -> RecordingMocks:
    """Fresh recording mocks, so code that wraps secrets in Outputs runs as under the engine."""
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, project="kube-ha", stack="test", preview=False)
    return recording
