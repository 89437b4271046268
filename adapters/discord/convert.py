"""discord.py messages (new and edited) to the core's Message; None for what is not moderated."""

from __future__ import annotations

__all__ = ["edit_revision", "from_discord"]

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import discord

from bot.models import Message, Platform


def edit_revision(edited_at: datetime | None, /) -> int:
    """The revision number of an edit: its edit time in milliseconds (0 for the original).

    Derived from Discord's own timestamp, so a redelivered edit gets the same number and the core
    dedupes it, while every later edit gets a larger one.
    """
    if edited_at is None:
        return 0
    if edited_at.tzinfo is None:
        edited_at = edited_at.replace(tzinfo=UTC)
    return int(edited_at.timestamp() * 1000)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _unique(ids: Iterable[int], /) -> tuple[str, ...]:
    """Ids as strings, first occurrence kept, in order."""
    return tuple(dict.fromkeys(str(i) for i in ids))


def _mentions(message: discord.Message, /) -> tuple[str, ...]:
    """The users the event says were mentioned (a pinging reply's author too), in the order
    the text names them (Discord's own list has none), each once."""
    # getattr: discord.py leaves the attribute unset when an update carries no `mentions`.
    ids = _unique(user.id for user in getattr(message, "mentions", ()))
    first: dict[str, int] = {}
    for place, uid in enumerate(message.raw_mentions):
        first.setdefault(str(uid), place)
    return tuple(sorted(ids, key=lambda uid: first.get(uid, len(first))))


def from_discord(message: discord.Message, /, *, edited: bool = False,
                 watch: Collection[int] = (), guilds: Collection[int] = (),
                 ignore: Collection[int] = (),
                 raw: Mapping[str, Any] | None = None) -> Message | None:
    """A guild member's message as a core Message, or None for bots, webhooks, DMs, empty text,
    system messages, channels outside `watch` (empty = all) or in `ignore` (the moderators'
    channel and its threads) and guilds outside `guilds`.

    `edited` makes it a revision (numbered by `edited_at`); `raw` is the gateway payload if known.
    """
    if message.guild is None or message.author.bot or message.webhook_id is not None:
        return None
    if message.type not in (discord.MessageType.default, discord.MessageType.reply):
        return None
    if guilds and message.guild.id not in guilds:
        return None
    text = message.content or ""
    if not text.strip():
        return None
    channel = message.channel
    thread: str | None = None
    name = getattr(channel, "name", None)
    parent_id: int | None = None
    if isinstance(channel, discord.Thread):
        thread = str(channel.id)
        parent_id = channel.parent_id
        # Channel rules (e.g. a debate channel) follow a thread's parent.
        parent = channel.parent
        name = parent.name if parent is not None else name
    if watch and channel.id not in watch and parent_id not in watch:
        return None
    if channel.id in ignore or parent_id in ignore:
        return None
    reply_to = None
    if message.reference is not None and message.reference.message_id is not None:
        reply_to = str(message.reference.message_id)
    author = message.author
    # discord.py makes the author a Member from the event's `member` object (its joined_at);
    # a plain User (no member object, no cached member) leaves the join date unknown.
    joined_at = author.joined_at if isinstance(author, discord.Member) else None
    revision = edit_revision(message.edited_at) if edited else 0
    if edited and revision == 0:
        return None  # an embed unfurl or pin, not an edit of the text
    payload: Mapping[str, Any] = raw if raw is not None else {
        "id": str(message.id), "channel_id": str(channel.id), "guild_id": str(message.guild.id),
        "author": {"id": str(author.id), "username": author.name},
        "content": text, "timestamp": message.created_at.isoformat(),
        "edited_timestamp": message.edited_at.isoformat() if message.edited_at else None,
    }
    return Message(
        platform=Platform.DISCORD,
        id=str(message.id),
        channel=str(channel.id),  # a thread's own id: that is where the message is deleted
        channel_name=name,
        author=str(author.id),
        author_name=getattr(author, "display_name", None) or author.name,
        text=text,
        sent_at=_utc(message.created_at),
        revision=revision,
        reply_to=reply_to,
        thread=thread,
        account_created_at=discord.utils.snowflake_time(author.id),
        joined_at=_utc(joined_at) if joined_at is not None else None,
        mentions=_mentions(message),
        # The event's `mention_roles`, resolved against the guild's roles; `mention_everyone`
        # is true only when @everyone or @here pinged (the author had the permission to).
        role_mentions=len(_unique(role.id for role in getattr(message, "role_mentions", ()))),
        mass_mention=bool(message.mention_everyone),
        raw=payload,
    )
