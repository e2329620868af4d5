"""Shared test configuration.

Under CI (``CI`` set) hypothesis runs derandomized, so a failure reproduces exactly from
the same commit, and without the wall-clock health check that a loaded machine can trip.
Locally it explores new examples on every run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
