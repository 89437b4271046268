"""The Slack adapter: Events API (HTTP or Socket Mode) to the core, the core's outbox to Slack.

Contract of `run_slack(moderator, config)` (what `bot.py run` starts in a TaskGroup):

* it builds a slack-bolt `AsyncApp` whose `AsyncWebClient` uses the bot token (and
  `config.api_base` when set), then serves HTTP on `config.port` (`/slack/events`, signed
  requests only) or, with `config.app_token`, connects over Socket Mode; it runs until cancelled
  and closes the server or socket cleanly;
* every `message` event (new, or `message_changed` as a new revision) is written to the store's
  durable inbox before it is acknowledged (a store that cannot take it answers 500, so Slack
  sends it again), then decided from there: `moderator.decide_accepted`, then the Slack rows of
  the outbox; a redelivery of a message already accepted is dropped; at start, what a stop left in
  the inbox is decided first; on cancellation (SIGTERM) the server closes and the work already
  accepted is finished;
* `/mod WORDS`, `/appeal N STATEMENT`, buttons and the resolve modal run core commands as the
  Slack user and answer ephemerally with Block Kit;
* hiding a member's message needs a workspace admin's user token (`SLACK_USER_TOKEN`); without
  one `hide` raises `UnsupportedAction` and the moderators' channel is asked to delete by hand;
* tokens and the signing secret are never logged.
"""

from __future__ import annotations

__all__ = ["SlackAdapter", "reply_blocks", "run_slack", "sign"]

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common import clip as _clip
from adapters.common import need
from adapters.connection import Connection, ConnectionState, PlatformWatch
from adapters.slack.config import SlackConfig
from adapters.slack.convert import from_slack
from bot.actions import shadow_title
from bot.commands import Button, Commands, Reply
from bot.config import OUTBOX_INTERVAL
from bot.errors import (
    ConductError,
    InputError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TargetNotFound,
    Unavailable,
    UnsupportedAction,
)
from bot.models import Account, Action, ActionKind, Message, Platform, Role
from bot.moderator import Moderator

log = logging.getLogger(__name__)


class _TokenUnused(logging.Filter):
    """Drops Bolt's start-up warning that SLACK_BOT_TOKEN 'will be unused': Bolt reads that
    variable even when given a client, which this adapter builds (for SLACK_API_BASE) with
    the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_LOG = logging.getLogger("adapters.slack.bolt")
_BOLT_LOG.addFilter(_TokenUnused())

#: Button action ids: "cb:N" carries a core command in its value; "cbmodal:resolve" opens the
#: resolve modal for the case number in its value.
_COMMAND = "cb:"
_MODAL_BUTTON = "cbmodal:resolve"
_MODAL = "cb-resolve"
_PERMISSION = frozenset({"not_authed", "invalid_auth", "missing_scope", "cant_delete_message",
                         "compliance_exports_prevent_deletion", "not_in_channel",
                         "restricted_action", "account_inactive", "token_revoked",
                         "not_allowed_token_type", "channel_not_archived", "cant_kick_self"})
_NOT_FOUND = frozenset({"message_not_found", "channel_not_found", "user_not_found",
                        "users_not_found"})


def sign(secret: str, timestamp: str | int, body: str | bytes, /) -> str:
    """Slack's request signature: `v0=` + hex HMAC-SHA256(secret, `v0:{ts}:{body}`)."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()



def _plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(text or "-", limit), "emoji": True}


def _md(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _clip(text or "-", limit)}


def _button(label: str, action_id: str, value: str, style: str = "") -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": _plain(label, 75),
                              "action_id": action_id, "value": _clip(value, 2000)}
    if style in ("primary", "danger"):  # Slack has no other styles
        button["style"] = style
    return button


def _command_buttons(buttons: Sequence[Button]) -> list[dict[str, Any]]:
    return [_button(b.label, f"{_COMMAND}{i}", b.command, b.style)
            for i, b in enumerate(buttons[:25]) if len(b.command) <= 2000]


def reply_blocks(reply: Reply, /) -> list[dict[str, Any]]:
    """A core Reply as Block Kit: header, text, fields (10 per section), command buttons."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(reply.title)}]
    if reply.text:
        blocks.append({"type": "section", "text": _md(reply.text)})
    fields = [_md(f"*{name}*\n{value or '-'}", 2000) for name, value in reply.fields]
    for start in range(0, min(len(fields), 40), 10):
        blocks.append({"type": "section", "fields": fields[start:start + 10]})
    buttons = _command_buttons(reply.buttons)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def _fallback(reply: Reply) -> str:
    return _clip(f"{reply.title}: {reply.text}" if reply.text else reply.title, 3000)



def _error_code(exc: SlackApiError) -> str:
    response = exc.response
    try:
        return str(response.get("error") or "")
    except (AttributeError, TypeError):  # pragma: no cover - a malformed response
        return ""


@contextlib.contextmanager
def _translate(action: str) -> Iterator[None]:
    """slack_sdk's exceptions as the core's PlatformError tree."""
    try:
        yield
    except SlackApiError as exc:
        code = _error_code(exc)
        status = getattr(exc.response, "status_code", 0)
        if status == 429 or code == "ratelimited":
            headers = getattr(exc.response, "headers", None) or {}
            retry = next((v for k, v in headers.items() if k.lower() == "retry-after"), "1")
            try:
                seconds = float(retry[0] if isinstance(retry, list) else retry)
            except (TypeError, ValueError):
                seconds = 1.0
            raise RateLimited(f"Slack rate limited {action}", platform="slack", action=action,
                              retry_after=seconds) from exc
        if code in _PERMISSION:
            raise PermissionDenied(f"Slack refused {action}: {code}", platform="slack",
                                   action=action) from exc
        if code in _NOT_FOUND:
            raise TargetNotFound(f"Slack found no target for {action}: {code}",
                                 platform="slack", action=action) from exc
        kind = Unavailable if status >= 500 else PlatformError
        raise kind(f"Slack failed {action}: {code or status}", platform="slack",
                   action=action) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise Unavailable(f"could not reach Slack for {action}: {exc}", platform="slack",
                          action=action) from exc


class SlackAdapter:
    """The PlatformPort for Slack, holding the core by composition."""

    platform = Platform.SLACK

    def __init__(self, moderator: Moderator, config: SlackConfig, /, *,
                 outbox_interval: float = OUTBOX_INTERVAL) -> None:
        self.moderator = moderator
        self.config = config
        self.commands = Commands(moderator)
        self.outbox_interval = outbox_interval
        if config.modlog_channel is not None:
            moderator.modlog_channels[Platform.SLACK] = config.modlog_channel
        self._group_moderators: frozenset[str] = frozenset()
        base = config.api_base or AsyncWebClient.BASE_URL
        self.client = AsyncWebClient(token=config.bot_token.reveal(), base_url=base)
        self.user_client = (AsyncWebClient(token=config.user_token.reveal(), base_url=base)
                            if config.user_token else None)
        secret = config.signing_secret.reveal() if config.signing_secret else None
        self.app = AsyncApp(client=self.client, signing_secret=secret,
                            request_verification_enabled=config.signing_secret is not None,
                            logger=_BOLT_LOG)
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel_names: dict[str, str | None] = {}
        # What `connection()` reports: the HTTP server's address once it listens, the Socket
        # Mode handler once it connected.
        self._serving: str | None = None
        self._socket: Any = None
        self._register()

    # -- lifecycle ---------------------------------------------------------------------------

    def warn_about_configuration(self) -> None:
        """Say at start what this configuration cannot do."""
        if self.user_token_missing:
            log.warning("slack: SLACK_USER_TOKEN is not set: the bot cannot delete members' "
                        "messages; hides are recorded as unsupported and the moderators' "
                        "channel is asked to delete them by hand")

    async def check_mod_channel(self) -> str:
        """The moderators' channel's name, once Slack confirms it exists and the bot is in it;
        else a PlatformError in one line saying what to fix (escalations would be lost)."""
        channel = self.config.mod_channel
        if channel is None:
            raise PlatformError("SLACK_MOD_CHANNEL is not set: escalations would have nowhere "
                                "to go; set it to the moderators' channel id (e.g. C0123ABCD)",
                                platform="slack", action="start")
        try:
            with _translate("check the moderators' channel"):
                info = (await self.client.conversations_info(channel=channel))["channel"]
        except (TargetNotFound, PermissionDenied) as exc:
            raise PlatformError(f"SLACK_MOD_CHANNEL {channel}: {exc}; check the id and add the "
                                "bot to that channel", platform="slack", action="start") from exc
        if not info.get("is_member"):
            raise PlatformError(f"SLACK_MOD_CHANNEL {channel} (#{info.get('name')}): the bot is "
                                f"not a member, so it cannot post escalations there; invite it "
                                f"with /invite in #{info.get('name')}", platform="slack",
                                action="start")
        return str(info.get("name") or channel)

    @property
    def user_token_missing(self) -> bool:
        """Whether hides cannot be done (no workspace admin's user token)."""
        return self.user_client is None

    @contextlib.asynccontextmanager
    async def serve_http(self, *, host: str | None = None, port: int | None = None
                         ) -> AsyncIterator[int]:
        """Serve `/slack/events` over HTTP (on SLACK_HOST:SLACK_PORT unless told otherwise);
        yields the port actually bound."""
        host = self.config.host if host is None else host
        if self.config.signing_secret is None:
            raise UnsupportedAction("serving HTTP needs SLACK_SIGNING_SECRET (unsigned requests "
                                    "would be trusted)", platform="slack", action="connect")
        runner = web.AppRunner(self.app.web_app(path="/slack/events"))
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, self.config.port if port is None else port)
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            bound = sockets[0].getsockname()[1] if sockets else (port or self.config.port)
            log.info("slack: serving HTTP on %s:%s/slack/events", host, bound)
            self._serving = f"serving HTTP on {host}:{bound}/slack/events"
            yield int(bound)
        finally:
            self._serving = None
            await runner.cleanup()

    @contextlib.asynccontextmanager
    async def socket_mode(self) -> AsyncIterator[None]:
        """Connect over Socket Mode with the app-level token until the block exits."""
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        if self.config.app_token is None:
            raise UnsupportedAction("Socket Mode needs SLACK_APP_TOKEN", platform="slack",
                                    action="connect")
        handler = AsyncSocketModeHandler(self.app, self.config.app_token.reveal(),
                                         web_client=self.client)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack: connected over Socket Mode")
        self._socket = handler
        try:
            yield
        finally:
            self._socket = None
            await handler.close_async()  # type: ignore[no-untyped-call]

    async def connection(self) -> Connection:
        """Connected while the HTTP server listens or the Socket Mode link is up (slack_sdk
        reconnects a dropped link by itself; meanwhile it reads as reconnecting)."""
        if self._serving is not None:
            return Connection(ConnectionState.CONNECTED, self._serving)
        if self._socket is not None:
            if await self._socket.client.is_connected():
                return Connection(ConnectionState.CONNECTED, "connected over Socket Mode")
            return Connection(ConnectionState.RECONNECTING, "the Socket Mode link dropped; "
                              "slack_sdk is reconnecting")
        return Connection(ConnectionState.STARTING, "checking the token and the moderators' "
                          "channel, then serving HTTP or connecting over Socket Mode")

    async def run(self) -> None:
        """Serve (HTTP or Socket Mode) until cancelled, retrying rate-limited rows meanwhile."""
        self.warn_about_configuration()
        with _translate("auth.test"):
            me = await self.client.auth_test()
        mods = await self.check_mod_channel()
        await self.refresh_moderator_group()
        watched = ", ".join(f"<#{c}>" for c in sorted(self.config.channels)) or \
            "every channel the bot is in"
        log.info("slack: ready as @%s in %s (%s): watching %s; moderators' channel #%s",
                 me.get("user"), me.get("team"), me.get("team_id"), watched, mods)
        drain = asyncio.create_task(
            self.moderator.sweep_outbox(self, every=self.outbox_interval,
                                        before=self.refresh_moderator_group,
                                        orphans=self._decide),
            name="slack-outbox")
        try:
            async with self.socket_mode() if self.config.socket_mode else self.serve_http():
                self._spawn(self.decide_waiting(), "slack-inbox")
                await asyncio.Event().wait()
        finally:
            # Cancelled (SIGTERM): the server is closed by now; finish what was accepted.
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            await self.settle()

    async def settle(self) -> None:
        """Wait for the event work already started (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.moderator.outbox_idle(Platform.SLACK)

    async def drain_outbox(self) -> list[Action]:
        """Execute this platform's pending outbox rows (the core serialises runs)."""
        return await self.moderator.run_outbox(self)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def wrapped() -> None:
            await work

        task = asyncio.create_task(wrapped(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events ------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("message", middleware=[self.keep])(self.on_message)
        app.command("/mod")(self.on_mod)
        app.command("/appeal")(self.on_appeal)
        app.action(re.compile("^" + re.escape(_COMMAND)))(self.on_button)
        app.action(_MODAL_BUTTON)(self.on_resolve_button)
        app.view(_MODAL)(self.on_resolve_submit)

    async def keep(self, body: dict[str, Any], context: AsyncBoltContext,
                   next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """Before Slack is told a message event arrived: write it to the durable inbox, so a
        stop after the acknowledgement loses nothing. A store that cannot take it answers 500
        and Slack sends the event again; a redelivery of a message already kept is dropped."""
        event = body.get("event") or {}
        # The moderators' channel, where they quote evidence, is never moderated.
        core = None if event.get("channel") == self.config.mod_channel else \
            from_slack(event, watch=self.config.channels)
        if core is not None:
            try:
                entry = await self.moderator.accept(core)
            except InputError as exc:
                log.warning("slack: not moderated: %s", exc)
                entry = None
            except ConductError as exc:
                log.error("slack: could not keep event %s (%s); Slack will send it again",
                          body.get("event_id"), exc)
                return BoltResponse(status=500, body="")
            if entry is not None:
                context["inbox"] = (entry, core)
        await next()
        return None

    async def on_message(self, context: AsyncBoltContext) -> None:
        """A message or an edit, already kept and acknowledged: decide it in the background."""
        kept = context.get("inbox")
        if kept is not None:
            entry, core = kept
            self._spawn(self._decide(entry, core), f"slack-{core.id}")

    async def decide_waiting(self) -> None:
        """Decide what a stop left in the inbox (accepted, never decided), oldest first."""
        for entry, message in await self.moderator.waiting(Platform.SLACK):
            await self._decide(entry, message)

    async def channel_name(self, channel: str, /) -> str | None:
        """A channel's name (cached), for channel rules and notices ("#general", not its id);
        None when Slack will not say (the message is still moderated)."""
        if channel not in self._channel_names:
            try:
                with _translate("conversations.info"):
                    info = await self.client.conversations_info(channel=channel)
            except PlatformError as exc:
                log.info("slack: no name for channel %s (%s)", channel, exc)
                return None
            self._channel_names[channel] = str(info["channel"].get("name") or "") or None
        return self._channel_names[channel]

    async def _decide(self, entry: int, message: Message) -> None:
        if message.channel_name is None:
            message = replace(message, channel_name=await self.channel_name(message.channel))
        try:
            handled = await self.moderator.decide_accepted(entry, message)
        except ConductError as exc:
            log.error("slack: could not moderate %s (kept for the next start): %s",
                      message.key, exc)
            return
        except Exception:
            log.exception("slack: could not moderate %s (kept for the next start)",
                          message.key)
            return
        if handled is not None and handled.actions:
            try:
                await self.drain_outbox()
            except ConductError as exc:
                log.error("slack: outbox run failed: %s", exc)

    async def refresh_moderator_group(self) -> None:
        """Read SLACK_MODERATOR_GROUP's members (at start and with every outbox sweep)."""
        if self.config.moderator_group is None:
            return
        with _translate("usergroups.users.list"):
            answer = await self.client.usergroups_users_list(
                usergroup=self.config.moderator_group)
        self._group_moderators = frozenset(answer.get("users") or [])

    async def sync_roles(self, user: str) -> None:
        """Give SLACK_MODERATORS and the moderator group the core role (never removes one)."""
        if user in self.config.moderators or user in self._group_moderators:
            await self.moderator.grant_roles(Platform.SLACK, user, frozenset({Role.MODERATOR}),
                                             actor="slack-moderators")

    async def run_command(self, user: str, words: str | Sequence[str]) -> Reply:
        """Run a core command as a Slack user, then execute whatever it put in the outbox."""
        await self.sync_roles(user)
        reply = await self.commands.run(Account(Platform.SLACK, user), words)
        self._spawn(self._drain_quietly(), "slack-outbox-after-command")
        return reply

    async def _drain_quietly(self) -> None:
        try:
            await self.drain_outbox()
        except ConductError as exc:
            log.error("slack: outbox run failed: %s", exc)

    async def on_mod(self, ack: Callable[..., Awaitable[Any]], command: dict[str, Any],
                     respond: Callable[..., Awaitable[Any]]) -> None:
        """`/mod WORDS`: acknowledge, run, answer ephemerally."""
        await ack()
        reply = await self.run_command(str(command.get("user_id")),
                                       str(command.get("text") or "help"))
        await respond(text=_fallback(reply), blocks=reply_blocks(reply),
                      response_type="ephemeral")

    async def on_appeal(self, ack: Callable[..., Awaitable[Any]], command: dict[str, Any],
                        respond: Callable[..., Awaitable[Any]]) -> None:
        """`/appeal N STATEMENT`: the statement is kept whole (apostrophes and all)."""
        await ack()
        parts = str(command.get("text") or "").strip().split(maxsplit=1)
        words = ["appeal", *parts]
        reply = await self.run_command(str(command.get("user_id")), words)
        await respond(text=_fallback(reply), blocks=reply_blocks(reply),
                      response_type="ephemeral")

    async def on_button(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                        action: dict[str, Any]) -> None:
        """A command button: run its command as whoever clicked it; answer privately."""
        await ack()
        user = str(body.get("user", {}).get("id"))
        reply = await self.run_command(user, str(action.get("value") or ""))
        await self._answer(body, user, reply)

    async def _answer(self, body: Mapping[str, Any], user: str, reply: Reply) -> None:
        channel = (body.get("channel") or {}).get("id")
        with _translate("answer"):
            if channel:
                await self.client.chat_postEphemeral(channel=channel, user=user,
                                                     text=_fallback(reply),
                                                     blocks=reply_blocks(reply))
            else:
                await self.client.chat_postMessage(channel=user, text=_fallback(reply),
                                                   blocks=reply_blocks(reply))

    async def on_resolve_button(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                                action: dict[str, Any]) -> None:
        """"Resolve…": open a modal asking for the outcome and the reason."""
        await ack()
        case = str(action.get("value") or "")
        view = {
            "type": "modal", "callback_id": _MODAL, "private_metadata": case,
            "title": _plain(f"Resolve case {case}", 24), "submit": _plain("Resolve"),
            "close": _plain("Cancel"),
            "blocks": [
                {"type": "input", "block_id": "outcome", "label": _plain("Outcome"),
                 "element": {"type": "static_select", "action_id": "outcome",
                             "options": [{"text": _plain("Uphold"), "value": "uphold"},
                                         {"text": _plain("Dismiss"), "value": "dismiss"}]}},
                {"type": "input", "block_id": "reason", "label": _plain("Reason"),
                 "element": {"type": "plain_text_input", "action_id": "reason",
                             "multiline": True}},
            ],
        }
        with _translate("views.open"):
            await self.client.views_open(trigger_id=body["trigger_id"], view=view)

    async def on_resolve_submit(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                                view: dict[str, Any]) -> None:
        """The modal's submission: `resolve N OUTCOME REASON` as the submitting user."""
        values = view.get("state", {}).get("values", {})
        outcome = (values.get("outcome", {}).get("outcome", {}).get("selected_option")
                   or {}).get("value")
        reason = str(values.get("reason", {}).get("reason", {}).get("value") or "").strip()
        if outcome not in ("uphold", "dismiss") or not reason:
            await ack(response_action="errors",
                      errors={"outcome" if outcome not in ("uphold", "dismiss") else "reason":
                              "Choose an outcome and give a reason."})
            return
        await ack()
        user = str(body.get("user", {}).get("id"))
        reply = await self.run_command(user, ["resolve", str(view.get("private_metadata")),
                                              outcome, *reason.split()])
        await self._answer({}, user, reply)

    # -- the PlatformPort ---------------------------------------------------------------------

    async def hide(self, action: Action, /) -> None:
        """Delete the message with the admin's user token (a bot token can delete only its own)."""
        channel = need(action.channel, "channel", platform=Platform.SLACK)
        ts = need(action.message_id, "message", platform=Platform.SLACK)
        if self.user_client is None:
            if action.payload.get("action") != "escalate" and self.config.mod_channel:
                # Nobody else will hear of it: the core escalates only escalations.
                with _translate("hide"):
                    await self.client.chat_postMessage(
                        channel=self.config.mod_channel,
                        text=f"Please delete message {ts} by <@{action.user}> in <#{channel}> "
                             f"(clause {action.payload.get('clause') or '-'}): the bot has no "
                             f"user token to delete members' messages.")
            raise UnsupportedAction("SLACK_USER_TOKEN is not set: a bot token can delete only "
                                    "the bot's own messages; the moderators must delete this "
                                    "one", platform="slack", action="hide")
        with _translate("hide"):
            await self.user_client.chat_delete(channel=channel, ts=ts)

    async def notify(self, action: Action, /) -> None:
        """An ephemeral notice in the channel (when the member is there) and a DM; each goes
        once: a retry after a failed DM does not repeat the ephemeral part."""
        user = need(action.user, "user", platform=Platform.SLACK)
        text = str(action.payload.get("text") or "")
        if not text:
            raise UnsupportedAction("a notice without text", platform="slack", action="notify")
        if action.channel and not action.payload.get("ephemeral_done"):
            try:
                with _translate("notify"):
                    await self.client.chat_postEphemeral(channel=action.channel, user=user,
                                                         text=_clip(text, 3900))
            except (PermissionDenied, TargetNotFound) as exc:
                log.info("slack: no ephemeral notice for %s (%s); DM only", user, exc)
            except PlatformError as exc:
                if "user_not_in_channel" not in str(exc):
                    raise
            if action.id is not None:
                await self.moderator.store.note_progress(action.id, ephemeral_done=True)
        with _translate("notify"):
            dm = await self.client.conversations_open(users=user)
            await self.client.chat_postMessage(channel=dm["channel"]["id"],
                                               text=_clip(text, 39000))

    async def escalate(self, action: Action, /) -> None:
        """Post the case to the moderators' channel with Uphold / Dismiss / Resolve… buttons."""
        if self.config.mod_channel is None:
            raise UnsupportedAction("SLACK_MOD_CHANNEL is not set: nowhere to escalate",
                                    platform="slack", action="escalate")
        blocks, text = escalation_blocks(action)
        with _translate("escalate"):
            await self.client.chat_postMessage(channel=self.config.mod_channel, text=text,
                                               blocks=blocks)

    async def timeout(self, action: Action, /) -> None:
        """Slack has no timeout: remove the member from the watched channels and schedule
        their return to each channel actually left (an outbox row that waits until the
        timeout ends), even when a later channel fails."""
        user = need(action.user, "user", platform=Platform.SLACK)
        until = action.payload.get("until")
        if not until:
            raise UnsupportedAction("a timeout without an end", platform="slack",
                                    action="timeout")
        channels = sorted(self.config.channels) or ([action.channel] if action.channel else [])
        if not channels:
            raise UnsupportedAction("SLACK_CHANNELS is not set: the bot does not know which "
                                    "channels to remove the member from", platform="slack",
                                    action="timeout")
        removed: list[str] = []
        try:
            refused = await self._remove(user, channels, "timeout", removed)
        finally:
            if removed:  # recorded before any failure propagates: a timeout never sticks
                await self._queue_return(action, user, removed, until, "timeout ended")
        await self._refused(action, user, refused, removed, "timeout")

    async def restore(self, action: Action, /) -> None:
        """Add the member back to the channels a timeout removed them from (every watched
        channel when a reinstatement lifts a suspension)."""
        user = need(action.user, "user", platform=Platform.SLACK)
        channels = action.payload.get("channels")
        if channels is None and action.payload.get("lift"):
            channels = sorted(self.config.channels)
        for channel in channels or []:
            try:
                with _translate("restore"):
                    await self.client.conversations_invite(channel=channel, users=user)
            except PlatformError as exc:
                if "already_in_channel" not in str(exc):
                    raise

    async def suspend(self, action: Action, /) -> None:
        """Remove the member from every watched channel (Slack's nearest to a suspension) and
        queue their return for when it ends, if it does."""
        user = need(action.user, "user", platform=Platform.SLACK)
        if not self.config.channels:
            raise UnsupportedAction("SLACK_CHANNELS is not set: the bot does not know which "
                                    "channels to remove the member from", platform="slack",
                                    action="suspend")
        removed: list[str] = []
        until = action.payload.get("until")
        try:
            refused = await self._remove(user, sorted(self.config.channels), "suspend", removed)
        finally:
            if removed and until:  # the return when the suspension ends
                await self._queue_return(action, user, removed, until, "suspension ended")
        await self._refused(action, user, refused, removed, "suspend")

    async def _queue_return(self, action: Action, user: str, channels: list[str], until: str,
                            reason: str) -> None:
        restore = Action(kind=ActionKind.RESTORE, platform=Platform.SLACK, user=user,
                         payload={"channels": channels, "reason": reason})
        case = action.payload.get("case")
        await self.moderator.store.enqueue([restore],
                                           case_id=case if isinstance(case, int) else None,
                                           not_before=datetime.fromisoformat(until))

    async def _remove(self, user: str, channels: list[str], what: str,
                      removed: list[str]) -> list[tuple[str, str]]:
        """Kick the member from each channel, appending each one left to `removed` as it
        goes; returns the channels Slack refused, with why (#general can never be left).
        A rate limit or an unreachable Slack stops the run and propagates."""
        refused: list[tuple[str, str]] = []
        for channel in channels:
            try:
                with _translate(what):
                    await self.client.conversations_kick(channel=channel, user=user)
            except PermissionDenied as exc:
                if "not_in_channel" in str(exc):
                    continue  # already out of this channel: nothing to do
                refused.append((channel, str(exc)))
                continue
            except (RateLimited, Unavailable):
                raise  # the outbox retries the rest later
            except PlatformError as exc:
                refused.append((channel, str(exc)))
                continue
            removed.append(channel)
        return refused

    async def _refused(self, action: Action, user: str, refused: list[tuple[str, str]],
                       removed: list[str], what: str) -> None:
        """Tell the moderators which channels Slack would not remove the member from; fail
        the row when it removed them from none."""
        if not refused:
            return
        lines = ", ".join(f"<#{channel}> ({why.rsplit(': ', 1)[-1]})" for channel, why in refused)
        text = (f"{what.capitalize()} of <@{user}> (case {action.payload.get('case', '-')}): "
                f"Slack would not remove them from {lines}; "
                + (f"they were removed from {len(removed)} other channel(s)." if removed else
                   "they were removed from no channel.")
                + " #general can never be left; see docs/slack.md.")
        if self.config.mod_channel is not None:
            with _translate("post"):
                await self.client.chat_postMessage(channel=self.config.mod_channel, text=text)
        if not removed:
            raise PermissionDenied(f"Slack refused every channel for {what}: {lines}",
                                   platform="slack", action=what)
        log.warning("slack: %s", text)

    async def slowmode(self, action: Action, /) -> None:
        """Slack has no slowmode: a raid there is alerted only."""
        raise UnsupportedAction("Slack has no slowmode; the moderators were alerted instead",
                                platform="slack", action="slowmode")

    async def alert(self, action: Action, /) -> None:
        """Post payload['text'] to the moderators' channel."""
        if self.config.mod_channel is None:
            raise UnsupportedAction("SLACK_MOD_CHANNEL is not set: nowhere to alert",
                                    platform="slack", action="alert")
        with _translate("alert"):
            await self.client.chat_postMessage(channel=self.config.mod_channel,
                                               text=_clip(str(action.payload.get("text") or ""),
                                                          39000))

    async def post(self, action: Action, /) -> None:
        """Send payload['text'] to the channel, with payload['blocks'] (the digest) if any."""
        channel = need(action.channel, "channel", platform=Platform.SLACK)
        blocks = action.payload.get("blocks") or None
        with _translate("post"):
            await self.client.chat_postMessage(channel=channel,
                                               text=str(action.payload.get("text") or ""),
                                               blocks=blocks)


def escalation_blocks(action: Action, /) -> tuple[list[dict[str, Any]], str]:
    """The Block Kit of an escalation and its notification text."""
    p = action.payload
    case = p.get("case")
    clause = f"{p.get('clause') or '-'} {p.get('clause_title') or ''}".strip()
    title = (("Shadow case" if shadow_title(p) else "Case") + f" {case}: " if case is not None
             else "Escalation: ") + clause
    member = f"<@{action.user}>" if action.user else str(p.get("author_name") or "-")
    channel = f"<#{action.channel}>" if action.channel else str(p.get("channel_name") or "-")
    fields = [_md(f"*Member*\n{member}"), _md(f"*Channel*\n{channel}"),
              _md(f"*Clause*\n{clause}"),
              _md(f"*Categories*\n{', '.join(p.get('categories') or []) or '-'}"),
              _md(f"*Priority*\np{p.get('priority', 0)}, severity {p.get('severity', '-')}")]
    excerpt = "\n".join(f"> {line}" for line in str(p.get("excerpt") or "-").splitlines())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(title)},
        {"type": "section", "fields": fields},
        {"type": "section", "text": _md(f"*Excerpt*\n{excerpt}")},
    ]
    reasons = shadow_title(p) + "; ".join(p.get("reasons") or [])
    if reasons:
        blocks.append({"type": "context", "elements": [_md(reasons, 2000)]})
    if case is not None:
        blocks.append({"type": "actions", "elements": [
            *_command_buttons([
                Button("Uphold", f"resolve {case} uphold upheld from escalation", "primary"),
                Button("Dismiss", f"resolve {case} dismiss dismissed from escalation",
                       "danger"),
                *([Button("Hide", f"hide slack:{action.message_id} hidden from escalation",
                          "danger")] if action.message_id else [])]),
            _button("Resolve…", _MODAL_BUTTON, str(case)),
        ]})
    return blocks, _clip(title, 3000)


async def run_slack(moderator: Moderator, config: SlackConfig, /, *,
                    watch: PlatformWatch | None = None, **options: Any) -> None:
    """Serve Slack until cancelled (the contract is in the module docstring); `watch` is
    told of the adapter, which reports its connection there."""
    adapter = SlackAdapter(moderator, config, **options)
    if watch is not None:
        watch.running(adapter)
    await adapter.run()
