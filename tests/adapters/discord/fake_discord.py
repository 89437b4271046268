"""A fake Discord (gateway WebSocket + REST) on 127.0.0.1 for driving the real discord.py client.

It records every REST request (method, path, query, JSON body), answers with the shapes
discord.py parses, can inject answers (a 429 with retry_after, a 403), and lets a test dispatch
gateway events, force a reconnect and watch the client RESUME.

It honours sharding as Discord does: an IDENTIFY with `shard: [id, count]` opens that shard's
session, whose READY carries `shard` and which is sent GUILD_CREATE (and later the events) only
of the guilds with `(guild_id >> 22) % count == id`; `GET /gateway/bot` says how many shards
Discord recommends, and with `require_sharding` an IDENTIFY with fewer shards is closed with
4011 (an impossible shard with 4010).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = "900000000000000001"
APP_ID = BOT_ID
GUILD_ID = "910000000000000001"  # on shard 0 of 2: (id >> 22) % 2 == 0
GENERAL_ID = "920000000000000001"
MODS_ID = "920000000000000002"
#: A second guild (see `other_guild`), on shard 1 of 2.
OTHER_GUILD_ID = str(int(GUILD_ID) + (1 << 22))
OTHER_GENERAL_ID = "920000000000000003"
MOD_ROLE_ID = "930000000000000001"
BOT_ROLE_ID = "930000000000000002"  # the bot's own role: what it needs to moderate
#: view, send, manage messages, embed links, read message history, moderate members (timeouts)
BOT_PERMISSIONS = str(16 | 1024 | 2048 | 8192 | 16384 | 65536 | (1 << 40))
#: The application's flags: Message Content and Server Members intents enabled
#: (GATEWAY_MESSAGE_CONTENT 1 << 18, GATEWAY_GUILD_MEMBERS 1 << 14).
APP_FLAGS = (1 << 18) | (1 << 14)
MEMBER_ID = "940000000000000001"  # an ordinary member
MOD_ID = "940000000000000002"  # holds the moderator role, and is a moderator in the register
NEW_MOD_ID = "940000000000000003"  # holds the moderator role only on Discord
TS = "2026-11-20T12:00:00.000000+00:00"

_ids = itertools.count(950000000000000001)


def snowflake() -> str:
    """A fresh, increasing id."""
    return str(next(_ids))


def user(uid: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": uid, "username": name, "global_name": name.title(), "discriminator": "0",
            "avatar": None, "bot": bot}


USERS = {BOT_ID: user(BOT_ID, "conductbot", bot=True), MEMBER_ID: user(MEMBER_ID, "dave"),
         MOD_ID: user(MOD_ID, "karen"), NEW_MOD_ID: user(NEW_MOD_ID, "priya")}
ROLES = {MOD_ID: [MOD_ROLE_ID], NEW_MOD_ID: [MOD_ROLE_ID], BOT_ID: [BOT_ROLE_ID]}


def member(uid: str) -> dict[str, Any]:
    return {"user": USERS[uid], "roles": ROLES.get(uid, []), "joined_at": TS, "deaf": False,
            "mute": False, "flags": 0, "nick": None, "permissions": "8"}


def shard_of(guild_id: str, count: int) -> int:
    """The shard that receives a guild's events, as Discord computes it."""
    return (int(guild_id) >> 22) % count


def channel(cid: str, name: str, position: int, guild_id: str = GUILD_ID) -> dict[str, Any]:
    return {"id": cid, "type": 0, "guild_id": guild_id, "name": name, "position": position,
            "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None}


def role(rid: str, name: str, position: int, permissions: str = "0") -> dict[str, Any]:
    return {"id": rid, "name": name, "color": 0, "hoist": False, "position": position,
            "permissions": permissions, "managed": False, "mentionable": False, "flags": 0}


def channels(overwrites: dict[str, list[dict[str, Any]]] | None = None,
             extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The guild's channels; `overwrites` are channels' permission overwrites."""
    found = [channel(GENERAL_ID, "general", 0), channel(MODS_ID, "moderators", 1),
             *(dict(c) for c in extra or [])]
    for c in found:
        c["permission_overwrites"] = (overwrites or {}).get(c["id"],
                                                            c.get("permission_overwrites", []))
    return found


def guild(overwrites: dict[str, list[dict[str, Any]]] | None = None,
          role_permissions: dict[str, str] | None = None,
          extra_channels: list[dict[str, Any]] | None = None, *, guild_id: str = GUILD_ID,
          name: str = "Party members",
          own_channels: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The guild as GUILD_CREATE sends it; `overwrites` are channels' permission overwrites,
    `role_permissions` replace roles' permissions (role id -> permission integer). Another
    guild (`guild_id`, `name`) has `own_channels` instead of #general and #moderators; every
    guild has every member in USERS and the same moderator and bot roles."""
    members = [member(uid) for uid in USERS]
    perms = {guild_id: "1024", MOD_ROLE_ID: "8192", BOT_ROLE_ID: BOT_PERMISSIONS,
             **(role_permissions or {})}
    return {
        "id": guild_id, "name": name, "icon": None, "owner_id": MOD_ID,
        "roles": [role(guild_id, "@everyone", 0, perms[guild_id]),
                  role(MOD_ROLE_ID, "Moderator", 1, perms[MOD_ROLE_ID]),
                  role(BOT_ROLE_ID, "conductbot", 2, perms[BOT_ROLE_ID])],
        "channels": (channels(overwrites, extra_channels) if own_channels is None else
                     [dict(c) for c in own_channels]),
        "members": members, "member_count": len(members), "threads": [], "features": [],
        "emojis": [], "stickers": [], "unavailable": False, "large": False,
        "voice_states": [], "presences": [], "verification_level": 0,
        "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
        "system_channel_flags": 0, "premium_tier": 0, "preferred_locale": "en-GB",
        "nsfw_level": 0, "afk_timeout": 300, "joined_at": TS,
    }


def other_guild() -> dict[str, Any]:
    """A second guild, OTHER_GUILD_ID (on shard 1 of 2), with one channel: #youth."""
    return guild(guild_id=OTHER_GUILD_ID, name="Young members",
                 own_channels=[channel(OTHER_GENERAL_ID, "youth", 0, OTHER_GUILD_ID)])


def _partial_member(uid: str, joined_at: str | None = None) -> dict[str, Any]:
    """A member object without its user, as a message event carries it."""
    found = member(uid) if uid in USERS else {
        "roles": [], "joined_at": TS, "deaf": False, "mute": False, "flags": 0, "nick": None}
    return {k: v for k, v in found.items() if k != "user"} | (
        {"joined_at": joined_at} if joined_at is not None else {})


def message(mid: str, text: str, *, author: str = MEMBER_ID, channel_id: str = GENERAL_ID,
            edited: str | None = None, mentions: Sequence[str] = (),
            mention_roles: Sequence[str] = (), mention_everyone: bool = False,
            joined_at: str | None = None, guild_id: str = GUILD_ID,
            **extra: Any) -> dict[str, Any]:
    """A guild MESSAGE_CREATE (or, with `edited`, MESSAGE_UPDATE) payload.

    `mentions` are the user ids Discord lists as mentioned (each with its member object, as the
    gateway sends them), `mention_roles` the role ids; `joined_at` is the author's join time in
    the event's member object (an author not in USERS gets a member object only with it)."""
    data: dict[str, Any] = {
        "id": mid, "channel_id": channel_id, "author": USERS.get(author) or user(author, "x"),
        "content": text, "timestamp": TS, "edited_timestamp": edited, "tts": False,
        "mention_everyone": mention_everyone,
        "mentions": [{**(USERS.get(uid) or user(uid, "x")), "member": _partial_member(uid)}
                     for uid in mentions],
        "mention_roles": list(mention_roles), "attachments": [],
        "embeds": [], "pinned": False, "type": 0, "flags": 0, "components": [],
    }
    if channel_id != "dm":
        data["guild_id"] = guild_id
        if author in USERS or joined_at is not None:
            data["member"] = _partial_member(author, joined_at)
    data.update(extra)
    return data


@dataclass
class Request:
    """One REST request the client made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any


@dataclass
class Injected:
    """A canned answer for the next request(s) matching method and path pattern."""

    method: str
    pattern: str
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class FakeDiscord:
    """The fake server: `await start()`, then point discord.py at `api_base` / `gateway_url`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.injected: list[Injected] = []
        self.gateway_log: list[dict[str, Any]] = []  # what the client sent (op, d)
        self.identifies = 0
        self.resumes = 0
        self.session_id = "session-1"
        self.seq = 0
        #: the latest gateway connection (unsharded: the only one)
        self.ws: web.WebSocketResponse | None = None
        #: sharded: each shard id's current connection, and the count the client identified with
        self.shard_ws: dict[int, web.WebSocketResponse] = {}
        self.shard_count: int | None = None
        #: each IDENTIFY's `shard` field ([id, count], or None when unsharded), in order
        self.identified: list[list[int] | None] = []
        self._sessions: dict[str, int | None] = {}  # session id -> shard id
        #: GET /gateway/bot's recommended shard count
        self.recommended_shards = 1
        #: Close an IDENTIFY with fewer than recommended_shards shards with 4011, as Discord
        #: does for a bot in too many guilds.
        self.require_sharding = False
        #: Cleared, new gateway connections wait (after the upgrade, before HELLO) until set.
        self.accepting = asyncio.Event()
        self.accepting.set()
        self.connected = asyncio.Event()
        #: Set at every READY; invalidate_session clears it (wait for the new session's READY).
        self.ready_sent = asyncio.Event()
        self.resumed = asyncio.Event()
        self._on_resume: list[tuple[str, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._changed = asyncio.Condition()
        #: channel id -> messages its history holds (GET /channels/{id}/messages)
        self.history: dict[str, list[dict[str, Any]]] = {}
        #: channel id -> permission overwrites the guild is sent with
        self.overwrites: dict[str, list[dict[str, Any]]] = {}
        #: role id -> permission integer replacing the role's default (see guild())
        self.role_permissions: dict[str, str] = {}
        #: more channel payloads of the guild, besides #general and #moderators
        self.extra_channels: list[dict[str, Any]] = []
        #: the application's flags (GET /oauth2/applications/@me): which intents are enabled
        self.app_flags = APP_FLAGS
        #: the guilds the bot is a member of (GET /users/@me/guilds, GET /guilds/{id})
        self.bot_guilds: list[str] = [GUILD_ID]
        #: more guilds (GUILD_CREATE payloads, see `add_guild`), besides GUILD_ID's
        self.extra_guilds: list[dict[str, Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in {id(w): w for w in (self.ws, *self.shard_ws.values()) if w}.values():
            if not ws.closed:
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def add_guild(self, payload: dict[str, Any]) -> None:
        """The bot is also a member of this guild (a `guild(...)` payload, e.g. other_guild())."""
        self.extra_guilds.append(payload)
        self.bot_guilds.append(payload["id"])

    def guilds(self) -> list[dict[str, Any]]:
        """Every guild the gateway sends (GUILD_ID's first), as GUILD_CREATE sends it."""
        return [guild(self.overwrites, self.role_permissions, self.extra_channels),
                *self.extra_guilds]

    # -- assertions and injection -------------------------------------------------------------

    def inject(self, method: str, pattern: str, status: int, body: Any, *,
               headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next `times` requests matching `method` and the path regex `pattern`."""
        self.injected.append(Injected(method, pattern, status, body, headers or {}, times))

    def find(self, method: str, pattern: str) -> list[Request]:
        """Recorded requests whose method matches and whose path fully matches `pattern`."""
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (5 s at most) until `predicate()` holds (re-checked after every request)."""
        async with asyncio.timeout(5):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- gateway ------------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any], *,
                       shard: int | None = None) -> None:
        """Send a dispatch (op 0) event to the connected client: sharded, on `shard`'s
        session, by default that of the event's guild_id (shard 0 without one)."""
        await self._send(self._socket(data, shard), event, data)

    def _socket(self, data: dict[str, Any] | None = None,
                shard: int | None = None) -> web.WebSocketResponse:
        if self.shard_count is not None:
            if shard is None:
                guild_id = (data or {}).get("guild_id")
                shard = 0 if guild_id is None else shard_of(str(guild_id), self.shard_count)
            ws = self.shard_ws.get(shard)
            assert ws is not None and not ws.closed, f"shard {shard} is not connected"
            return ws
        assert self.ws is not None and not self.ws.closed, "no client connected"
        return self.ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self.seq, "d": data}))

    def after_resume(self, event: str, data: dict[str, Any]) -> None:
        """Replay this event right after the next RESUMED (as Discord replays missed events)."""
        self._on_resume.append((event, data))

    async def request_reconnect(self, *, shard: int | None = None) -> None:
        """Ask the client to reconnect and resume (op 7), as Discord does (sharded: on
        `shard`'s session, shard 0 by default)."""
        self.resumed.clear()
        await self._socket(shard=shard).send_str(json.dumps({"op": 7, "d": None}))

    async def invalidate_session(self, *, shard: int | None = None) -> None:
        """Invalidate the session (op 9, not resumable): the client identifies anew."""
        self.ready_sent.clear()
        await self._socket(shard=shard).send_str(json.dumps({"op": 9, "d": False}))

    async def drop(self, *, shard: int | None = None, code: int = 4000) -> None:
        """Close the connection (of `shard`, when sharded) as a network failure would."""
        await self._socket(shard=shard).close(code=code)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self.accepting.wait()
        self.ws = ws
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            op, data = payload.get("op"), payload.get("d")
            self.gateway_log.append({"op": op, "d": data})
            if op == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                await self._identify(ws, data)
            elif op == 6:
                self.resumes += 1
                shard = self._sessions.get(data.get("session_id"))
                if shard is not None:
                    self.shard_ws[shard] = ws
                await self._send(ws, "RESUMED", {})
                for event, event_data in self._on_resume:
                    await self._send(ws, event, event_data)
                self._on_resume.clear()
                self.resumed.set()
            elif op == 8:
                await self._send(ws, "GUILD_MEMBERS_CHUNK", {
                    "guild_id": str(data.get("guild_id") or GUILD_ID),
                    "members": [member(u) for u in USERS],
                    "chunk_index": 0, "chunk_count": 1, "nonce": data.get("nonce")})
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        """READY, then GUILD_CREATE of each guild the session's shard receives."""
        self.identifies += 1
        shard = data.get("shard")
        self.identified.append(shard)
        guilds = self.guilds()
        session = self.session_id
        if shard is not None:
            shard_id, count = shard
            if not 0 <= shard_id < count:
                await ws.close(code=4010, message=b"Invalid shard.")
                return
            session = f"{self.session_id}-shard-{shard_id}"
            self.shard_ws[shard_id] = ws
            self.shard_count = count
            guilds = [g for g in guilds if shard_of(g["id"], count) == shard_id]
        if self.require_sharding and (shard[1] if shard else 1) < self.recommended_shards:
            await ws.close(code=4011, message=b"Sharding required.")
            return
        self._sessions[session] = None if shard is None else shard[0]
        await self._send(ws, "READY", {
            "v": 10, "user": USERS[BOT_ID],
            "guilds": [{"id": g["id"], "unavailable": True} for g in guilds],
            "session_id": session, "resume_gateway_url": self.gateway_url,
            "application": {"id": APP_ID, "flags": 0}, "private_channels": [],
            "relationships": [], **({"shard": shard} if shard is not None else {})})
        for payload in guilds:
            await self._send(ws, "GUILD_CREATE", payload)
        self.connected.set()
        self.ready_sent.set()

    # -- REST ---------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json" and raw:
                body = json.loads(raw)
            elif raw:
                body = raw.decode(errors="replace")
        self.requests.append(Request(request.method, path, dict(request.query), body))
        try:
            for canned in self.injected:
                if canned.method == request.method and re.fullmatch(canned.pattern, path):
                    canned.times -= 1
                    if canned.times <= 0:
                        self.injected.remove(canned)
                    return _json(canned.body, canned.status, canned.headers)
            status, answer = self._answer(request.method, path, body, dict(request.query))
            return _json(answer, status)
        finally:
            await self._notify()

    def _answer(self, method: str, path: str, body: Any, query: dict[str, str]
                ) -> tuple[int, Any]:
        if method == "GET" and path == "/users/@me":
            return 200, USERS[BOT_ID]
        if method == "GET" and path == "/oauth2/applications/@me":
            return 200, {"id": APP_ID, "name": "conductbot", "icon": None, "description": "",
                         "bot_public": False, "bot_require_code_grant": False,
                         "owner": USERS[MOD_ID], "verify_key": "00",
                         "flags": self.app_flags}
        if method == "GET" and path == "/users/@me/guilds":
            return 200, [{"id": g, "name": "Party members", "icon": None, "owner": False,
                          "permissions": "0", "features": []} for g in self.bot_guilds]
        if method == "GET" and path == "/gateway/bot":
            return 200, {"url": self.gateway_url, "shards": self.recommended_shards,
                         "session_start_limit": {"total": 1000, "remaining": 1000,
                                                 "reset_after": 0, "max_concurrency": 1}}
        if method == "GET" and (m := re.fullmatch(r"/channels/(\d+)", path)):
            found = next((c for g in self.guilds() for c in g["channels"] if c["id"] == m[1]),
                         None)
            if found is None:
                return 404, {"message": "Unknown Channel", "code": 10003}
            return 200, found
        if method == "GET" and (m := re.fullmatch(r"/guilds/(\d+)(/channels)?", path)):
            if m[1] not in self.bot_guilds:
                return 404, {"message": "Unknown Guild", "code": 10004}
            full = next((g for g in self.extra_guilds if g["id"] == m[1]), None) or \
                guild(self.overwrites, self.role_permissions, self.extra_channels)
            if m[2]:
                return 200, full["channels"]
            # A REST guild has no channels, members or other gateway-only fields.
            return 200, {k: v for k, v in full.items() if k not in (
                "channels", "members", "threads", "voice_states", "presences", "joined_at",
                "large", "member_count", "unavailable")}
        if method == "GET" and (m := re.fullmatch(r"/guilds/(\d+)/members/(\d+)", path)):
            if m[1] not in self.bot_guilds:
                return 404, {"message": "Unknown Guild", "code": 10004}
            if m[2] not in USERS:
                return 404, {"message": "Unknown Member", "code": 10007}
            return 200, member(m[2])
        if method == "PUT" and re.fullmatch(r"/applications/\d+(/guilds/\d+)?/commands", path):
            return 200, [{"description": "", **c, "id": snowflake(), "application_id": APP_ID,
                          "version": "1",
                          "default_member_permissions": c.get("default_member_permissions")}
                         for c in body or []]
        if method == "POST" and path == "/users/@me/channels":
            recipient = str(body["recipient_id"])
            return 200, {"id": f"96{recipient[2:]}", "type": 1,
                         "recipients": [USERS.get(recipient) or user(recipient, "x")],
                         "last_message_id": None}
        if method == "GET" and (m := re.fullmatch(r"/channels/(\d+)/messages", path)):
            # Like Discord: the `limit` messages just after `after`, newest first.
            after, limit = int(query.get("after", "0")), int(query.get("limit", "50"))
            kept = sorted((msg for msg in self.history.get(m[1], []) if int(msg["id"]) > after),
                          key=lambda msg: int(msg["id"]))[:limit]
            return 200, kept[::-1]
        if method == "POST" and (m := re.fullmatch(r"/channels/(\d+)/messages", path)):
            return 200, self._sent(m[1], body)
        if method == "DELETE" and re.fullmatch(r"/channels/\d+/messages/\d+", path):
            return 204, None
        if method == "PATCH" and (m := re.fullmatch(r"/channels/(\d+)", path)):
            # Edit Channel (e.g. slowmode's rate_limit_per_user): the channel as changed.
            found = next((c for c in channels(self.overwrites, self.extra_channels)
                          if c["id"] == m[1]), None)
            if found is None:
                return 404, {"message": "Unknown Channel", "code": 10003}
            return 200, {**found, "rate_limit_per_user": 0, **(body or {})}
        if method == "PATCH" and (m := re.fullmatch(r"/guilds/\d+/members/(\d+)", path)):
            if m[1] not in USERS:
                return 404, {"message": "Unknown Member", "code": 10007}
            return 200, {**member(m[1]), **(body or {})}
        if method == "POST" and (m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback",
                                                   path)):
            kind = (body or {}).get("type")
            resource: dict[str, Any] = {"type": kind}
            if kind == 4:
                resource["message"] = self._sent(GENERAL_ID, (body or {}).get("data") or {})
            return 200, {"interaction": {"id": m[1], "type": 2,
                                         "response_message_loading": kind == 5,
                                         "response_message_ephemeral": True},
                         "resource": resource}
        if re.fullmatch(r"/webhooks/\d+/[^/]+(/messages/.+)?", path) and method in ("POST",
                                                                                   "PATCH"):
            return 200, self._sent(GENERAL_ID, body or {})
        return 404, {"message": f"fake discord has no {method} {path}", "code": 0}

    @staticmethod
    def _sent(channel_id: str, body: Any) -> dict[str, Any]:
        body = body if isinstance(body, dict) else {}
        return message(snowflake(), body.get("content") or "", author=BOT_ID,
                       channel_id=channel_id, embeds=body.get("embeds") or [],
                       components=body.get("components") or [], flags=body.get("flags") or 0)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py compares the whole Content-Type header: no "; charset=utf-8".
    if status == 204:
        return web.Response(status=204)
    return web.Response(status=status, body=json.dumps(body).encode(),
                        headers={"Content-Type": "application/json", **(headers or {})})
