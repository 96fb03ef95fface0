"""The running-switch fixture of the flow tests, for `switch submit` against a real switch."""

from tests.flow.conftest import switch  # noqa: F401  (a fixture, used by name)
