"""CONDUCTBOT_HEALTH_*: where /healthz and /metrics listen, and when the outbox is late."""

from __future__ import annotations

import pytest

from bot.config import Settings


def test_defaults_listen_on_this_machine_only() -> None:
    settings = Settings.from_env({})
    assert (settings.health_host, settings.health_port) == ("127.0.0.1", 9464)
    assert settings.health_outbox_max_age == 300


@pytest.mark.parametrize(("env", "host", "port", "max_age"), [
    ({"CONDUCTBOT_HEALTH_PORT": "off"}, "127.0.0.1", None, 300),
    ({"CONDUCTBOT_HEALTH_PORT": " OFF "}, "127.0.0.1", None, 300),
    ({"CONDUCTBOT_HEALTH_PORT": "0"}, "127.0.0.1", None, 300),
    ({"CONDUCTBOT_HEALTH_HOST": "0.0.0.0", "CONDUCTBOT_HEALTH_PORT": "8080"}, "0.0.0.0", 8080,
     300),
    ({"CONDUCTBOT_HEALTH_HOST": "[::1]"}, "::1", 9464, 300),
    ({"CONDUCTBOT_HEALTH_HOST": "metrics.internal"}, "metrics.internal", 9464, 300),
    ({"CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE": "60"}, "127.0.0.1", 9464, 60),
])
def test_settings(env: dict[str, str], host: str, port: int | None, max_age: float) -> None:
    settings = Settings.from_env(env)
    assert (settings.health_host, settings.health_port, settings.health_outbox_max_age) == \
        (host, port, max_age)


@pytest.mark.parametrize(("env", "message"), [
    ({"CONDUCTBOT_HEALTH_PORT": "65536"}, "CONDUCTBOT_HEALTH_PORT must be a port number from 1 "
                                          "to 65535, or off (or 0) for no /healthz and "
                                          "/metrics, not '65536'"),
    ({"CONDUCTBOT_HEALTH_PORT": "-1"}, "not '-1'"),
    ({"CONDUCTBOT_HEALTH_PORT": "nine"}, "not 'nine'"),
    ({"CONDUCTBOT_HEALTH_HOST": "http://0.0.0.0:9464"}, "CONDUCTBOT_HEALTH_HOST must be an "
                                                       "address to listen on"),
    ({"CONDUCTBOT_HEALTH_HOST": "10.0.0"}, "not '10.0.0'"),
    ({"CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE": "soon"}, "CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE must be a "
                                                   "number of seconds above the outbox sweep's "
                                                   "interval (5 s)"),
    ({"CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE": "30", "CONDUCTBOT_OUTBOX_INTERVAL": "60"},
     "above the outbox sweep's interval (60 s)"),
    ({"CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE": "nan"}, "not 'nan'"),
    ({"CONDUCTBOT_HEALTH_PORT": "xoxb-123456789012-abcdefghijklmnop"},
     "not a value that looks like a token (not shown)"),
])
def test_bad_values_are_named_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)
