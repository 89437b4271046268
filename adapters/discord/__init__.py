"""Discord adapter: discord.py gateway and REST to and from the core (see docs/discord.md)."""

from __future__ import annotations

__all__ = ["DiscordAdapter", "DiscordConfig", "DiscordConfigError", "discord_adapter",
           "from_discord", "run_discord"]

from adapters.discord.adapter import DiscordAdapter, discord_adapter, run_discord
from adapters.discord.config import DiscordConfig, DiscordConfigError
from adapters.discord.convert import from_discord
