"""Slack `message` events (new and edited) to the core's Message; None when not moderated."""

from __future__ import annotations

__all__ = ["MODERATED_SUBTYPES", "Mentions", "from_slack", "mentions_in", "ts_revision",
           "ts_time"]

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from bot.models import Message, Platform

#: Subtypes whose text a member wrote; everything else (joins, topics, bots) is skipped.
MODERATED_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "me_message"})


#: Slack's mention markup in a message's text (a literal "<" or ">" typed by a member arrives
#: escaped as "&lt;" / "&gt;", so markup cannot be forged by typing it): a user `<@U123>` or
#: `<@U123|name>` (W... in Enterprise Grid), a user group `<!subteam^S123>` or
#: `<!subteam^S123|@group>`, and `<!here>`, `<!channel>`, `<!everyone>` (with or without a label).
_MENTION = re.compile(r"<(?:@(?P<user>[UW][A-Z0-9]+)|!subteam\^(?P<group>[A-Z0-9]+)"
                      r"|!(?P<everyone>here|channel|everyone))(?:\|[^<>]*)?>")


class Mentions(NamedTuple):
    """Who a message's text mentions: users (in order, each once), user groups, everyone."""

    users: tuple[str, ...] = ()
    groups: int = 0
    everyone: bool = False


def mentions_in(text: str, /) -> Mentions:
    """The mentions in a Slack message's text (`<@U123>`, `<!subteam^S123>`, `<!here>`...)."""
    users: dict[str, None] = {}
    groups: set[str] = set()
    everyone = False
    for match in _MENTION.finditer(text):
        if match["user"]:
            users.setdefault(match["user"], None)
        elif match["group"]:
            groups.add(match["group"])
        else:
            everyone = True
    return Mentions(tuple(users), len(groups), everyone)


def ts_time(ts: str, /) -> datetime:
    """A Slack timestamp ("1700000000.000100") as an aware UTC datetime."""
    return datetime.fromtimestamp(float(ts), tz=UTC)


def ts_revision(ts: str | None, /) -> int:
    """The revision of an edit: its `edited.ts` in microseconds (0 for the original).

    Derived from Slack's own timestamp, so a redelivered edit gets the same number and the core
    dedupes it, while every later edit gets a larger one.
    """
    if not ts:
        return 0
    try:
        return int(Decimal(ts) * 1_000_000)
    except InvalidOperation:
        return 0


def from_slack(event: Mapping[str, Any], /, *, watch: Collection[str] = (),
               channel_name: str | None = None) -> Message | None:
    """A member's message (or the new text of an edit) as a core Message, or None for bots,
    other subtypes (joins, deletions...), empty text and channels outside `watch` (empty = all).
    """
    if event.get("type") != "message":
        return None
    channel = str(event.get("channel") or "")
    if not channel or (watch and channel not in watch):
        return None
    subtype = event.get("subtype")
    revision = 0
    inner: Mapping[str, Any] = event
    if subtype == "message_changed":
        inner = event.get("message") or {}
        previous = event.get("previous_message") or {}
        edited = inner.get("edited") or {}
        if not edited.get("ts") or inner.get("text") == previous.get("text"):
            return None  # an unfurl or a pin: the text did not change
        revision = ts_revision(str(edited["ts"]))
        if inner.get("subtype") not in MODERATED_SUBTYPES:
            return None
    elif subtype not in MODERATED_SUBTYPES:
        return None
    if inner.get("bot_id") or inner.get("bot_profile") or inner.get("subtype") == "bot_message":
        return None
    user = inner.get("user")
    ts = inner.get("ts")
    text = str(inner.get("text") or "")
    if not user or not ts or not text.strip():
        return None
    thread_ts = inner.get("thread_ts")
    thread = str(thread_ts) if thread_ts else None
    reply_to = thread if thread is not None and thread != ts else None
    mentioned = mentions_in(text)
    return Message(
        platform=Platform.SLACK,
        id=str(ts),
        channel=channel,
        channel_name=channel_name,
        author=str(user),
        text=text,
        sent_at=ts_time(str(ts)),
        revision=revision,
        reply_to=reply_to,
        thread=thread,
        # Slack tells a bot neither when an account was created nor when it joined.
        account_created_at=None,
        joined_at=None,
        mentions=mentioned.users,
        role_mentions=mentioned.groups,
        mass_mention=mentioned.everyone,
        raw=dict(event),
    )
