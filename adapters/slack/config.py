"""Slack adapter settings from the environment; tokens and secret never appear in logs or repr."""

from __future__ import annotations

__all__ = ["SlackConfig", "SlackConfigError"]

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.config import Secret, reveal_secrets, shown
from bot.errors import ConductError

_ID = re.compile(r"^[A-Z0-9]{2,}$")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


class SlackConfigError(ConductError):
    """A SLACK_* variable is missing or malformed; the message names the variable."""


def _token(env: Mapping[str, str], name: str, prefix: str, *, required: bool,
           what: str) -> Secret | None:
    value = env.get(name, "").strip()
    if not value:
        if required:
            raise SlackConfigError(f"{name} is not set: export the {what} (it starts with "
                                   f"{prefix}; see docs/slack.md)")
        return None
    if not value.startswith(prefix) or any(c.isspace() for c in value):
        # Never echo the value: it may be a real token pasted into the wrong variable.
        raise SlackConfigError(f"{name} must be the {what}, a token starting with {prefix}")
    return Secret(value)


def _ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    ids: set[str] = set()
    for part in env.get(name, "").replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not _ID.match(part):
            raise SlackConfigError(f"{name} must be a comma-separated list of Slack ids "
                                   f"(like C012AB3CD or U012AB3CD), not {shown(part)}")
        ids.add(part)
    return frozenset(ids)


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """Everything the Slack adapter needs besides the core."""

    #: Secrets may be given as plain text; they are kept as Secret (masked everywhere).
    bot_token: Secret
    #: A workspace admin's user token (xoxp-): the only way to delete members' messages.
    user_token: Secret | None = None
    #: Verifies HTTP requests from Slack; not needed in Socket Mode.
    signing_secret: Secret | None = None
    #: App-level token (xapp-) for Socket Mode; None = serve HTTP.
    app_token: Secret | None = None
    #: Channels to moderate; empty means every channel the bot is in.
    channels: frozenset[str] = frozenset()
    mod_channel: str | None = None
    #: The moderators' log (one line per action by the bot or a moderator); None = none.
    modlog_channel: str | None = None
    #: Slack users treated as moderators (added to the core role, never removed).
    moderators: frozenset[str] = frozenset()
    #: A Slack user group (S...) whose members are treated as moderators too.
    moderator_group: str | None = None
    port: int = 3000
    #: The address the HTTP server binds (all interfaces unless SLACK_HOST says otherwise;
    #: 127.0.0.1 behind a reverse proxy on the same machine).
    host: str = "0.0.0.0"
    #: Web API base such as http://127.0.0.1:8080/api/ (tests, proxies); None = slack.com.
    api_base: str | None = None

    def __post_init__(self) -> None:
        reveal_secrets(self, "bot_token", "user_token", "signing_secret", "app_token")

    @property
    def socket_mode(self) -> bool:
        """Whether the adapter connects out over Socket Mode instead of serving HTTP."""
        return self.app_token is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /) -> SlackConfig:
        """Read SLACK_* variables; raise SlackConfigError naming the bad one."""
        env = os.environ if env is None else env
        bot = _token(env, "SLACK_BOT_TOKEN", "xoxb-", required=True, what="bot token")
        assert bot is not None
        user = _token(env, "SLACK_USER_TOKEN", "xoxp-", required=False,
                      what="workspace admin's user token")
        app = _token(env, "SLACK_APP_TOKEN", "xapp-", required=False, what="app-level token")
        raw_secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        secret = Secret(raw_secret) if raw_secret else None
        if secret is None and app is None:
            raise SlackConfigError("SLACK_SIGNING_SECRET is not set: HTTP mode needs the app's "
                                   "signing secret (or set SLACK_APP_TOKEN for Socket Mode)")
        mod = _ids(env, "SLACK_MOD_CHANNEL")
        if len(mod) > 1:
            raise SlackConfigError("SLACK_MOD_CHANNEL takes one channel id")
        modlog = _ids(env, "SLACK_MODLOG_CHANNEL")
        if len(modlog) > 1:
            raise SlackConfigError("SLACK_MODLOG_CHANNEL takes one channel id")
        group = _ids(env, "SLACK_MODERATOR_GROUP")
        if len(group) > 1 or any(not g.startswith("S") for g in group):
            raise SlackConfigError("SLACK_MODERATOR_GROUP takes one user group id (S...)")
        raw_port = env.get("SLACK_PORT", "").strip() or "3000"
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise SlackConfigError(f"SLACK_PORT must be a TCP port number, not {shown(raw_port)}")
        host = env.get("SLACK_HOST", "").strip() or "0.0.0.0"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOSTNAME.fullmatch(host):
                raise SlackConfigError("SLACK_HOST must be an IP address or a host name to "
                                       f"bind, such as 127.0.0.1 or ::, not {shown(host)}"
                                       ) from None
        base = env.get("SLACK_API_BASE", "").strip() or None
        if base is not None and (not base.startswith(("http://", "https://"))
                                 or not base.endswith("/api/")):
            raise SlackConfigError("SLACK_API_BASE must be an http(s) URL ending with /api/ "
                                   f"(the trailing slash matters), not {shown(base)}")
        return cls(bot_token=bot, user_token=user, signing_secret=secret, app_token=app,
                   channels=_ids(env, "SLACK_CHANNELS"), mod_channel=next(iter(mod), None),
                   modlog_channel=next(iter(modlog), None),
                   moderators=_ids(env, "SLACK_MODERATORS"),
                   moderator_group=next(iter(group), None), port=int(raw_port),
                   host=host, api_base=base)
