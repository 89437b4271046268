"""Slack adapter: slack-bolt events, commands and Block Kit to and from the core (docs/slack.md)."""

from __future__ import annotations

__all__ = ["SlackAdapter", "SlackConfig", "SlackConfigError", "from_slack", "run_slack", "sign"]

from adapters.slack.adapter import SlackAdapter, run_slack, sign
from adapters.slack.config import SlackConfig, SlackConfigError
from adapters.slack.convert import from_slack
