"""A fake Slack Web API (and Socket Mode endpoint) on 127.0.0.1 for driving slack-bolt/slack_sdk.

It records every call (method name, params, the token used), answers with the shapes slack_sdk
parses, can inject errors and 429s, records posts to response_urls, and serves a Socket Mode
WebSocket at /link that a test can push envelopes through.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

TEAM = "T0PARTY01"
BOT_USER = "UBOT00001"
MEMBER = "UMEMBER01"  # an ordinary member
MODERATOR = "UMOD00001"  # a moderator in the register
GENERAL = "CGENERAL1"
MODS = "CMODS0001"
ADMIN = "UADMIN001"  # the workspace admin who installed the app: the user token's owner
#: What an app installed from docs/slack.md's manifest is granted (X-OAuth-Scopes of auth.test).
BOT_SCOPES = ("channels:history", "groups:history", "channels:read", "groups:read", "chat:write",
              "commands", "users:read", "im:write", "channels:manage", "groups:write",
              "usergroups:read")
USER_SCOPES = ("chat:write",)

_ts = itertools.count(1)


@dataclass
class Call:
    """One Web API request."""

    method: str
    params: dict[str, Any]
    token: str | None
    http: str = "POST"


@dataclass
class FakeSlack:
    """The fake server; `calls` holds every request in order."""

    calls: list[Call] = field(default_factory=list)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    missing_channels: set[str] = field(default_factory=set)  # conversations.info: not found
    not_joined: set[str] = field(default_factory=set)  # conversations.info: is_member false
    injected: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = \
        field(default_factory=dict)
    private_channels: set[str] = field(default_factory=set)  # conversations.info: is_private
    #: scopes auth.test reports for the bot token and for a user (xoxp-) token
    bot_scopes: list[str] = field(default_factory=lambda: list(BOT_SCOPES))
    user_scopes: list[str] = field(default_factory=lambda: list(USER_SCOPES))
    #: users.info: the workspace's users (id -> extra fields such as is_admin, deleted)
    users: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        BOT_USER: {"name": "conductbot", "is_bot": True}, MEMBER: {"name": "dave"},
        MODERATOR: {"name": "karen"}, ADMIN: {"name": "alex", "is_admin": True}})
    socket_frames: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _ws: web.WebSocketResponse | None = None
    _ws_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test helpers ----------------------------------------------------------------------------

    def inject(self, method: str, *, error: str = "", status: int = 200,
               headers: dict[str, str] | None = None) -> None:
        """Answer the next call of `method` with an error (or an HTTP status such as 429)."""
        body = {"ok": False, "error": error or ("ratelimited" if status == 429 else "fatal")}
        self.injected.setdefault(method, []).append((status, body, headers or {}))

    def find(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to the connected client."""
        await asyncio.wait_for(self._ws_ready.wait(), 5)
        assert self._ws is not None
        await self._ws.send_json(envelope)

    # -- handlers --------------------------------------------------------------------------------

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._changed.set()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        for key in ("blocks", "view"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth else params.get("token")
        self._record(Call(method, params, token, request.method))
        queue = self.injected.get(method)
        if queue:
            status, body, headers = queue.pop(0)
            return web.json_response(body, status=status, headers=headers)
        headers = {}
        if method == "auth.test":  # Slack names the token's scopes in a header
            scopes = self.user_scopes if str(token).startswith("xoxp-") else self.bot_scopes
            headers["X-OAuth-Scopes"] = ",".join(scopes)
        return web.json_response(self._answer(method, params, token), headers=headers)

    def _answer(self, method: str, params: dict[str, Any], token: str | None = None
                ) -> dict[str, Any]:
        ts = f"1790000000.{next(_ts):06d}"
        match method:
            case "auth.test" if str(token).startswith("xoxp-"):
                return {"ok": True, "url": "https://party.slack.com/", "team": "Party",
                        "user": "alex", "team_id": TEAM, "user_id": ADMIN,
                        "is_enterprise_install": False}
            case "users.info":
                uid = str(params.get("user"))
                if uid not in self.users:
                    return {"ok": False, "error": "user_not_found"}
                return {"ok": True, "user": {"id": uid, "team_id": TEAM, "deleted": False,
                                             "is_admin": False, "is_owner": False,
                                             "is_bot": False, **self.users[uid]}}
            case "auth.test":
                return {"ok": True, "url": "https://party.slack.com/", "team": "Party",
                        "user": "conductbot", "team_id": TEAM, "user_id": BOT_USER,
                        "bot_id": "BBOT00001", "is_enterprise_install": False}
            case "conversations.open":
                return {"ok": True, "channel": {"id": "D" + str(params.get("users"))[1:]}}
            case "chat.postMessage":
                return {"ok": True, "channel": params.get("channel"), "ts": ts,
                        "message": {"text": params.get("text"), "ts": ts}}
            case "chat.postEphemeral":
                return {"ok": True, "message_ts": ts}
            case "views.open":
                return {"ok": True, "view": {"id": "V0001", **(params.get("view") or {})}}
            case "usergroups.users.list":
                return {"ok": True, "users": self.usergroups.get(str(params.get("usergroup")),
                                                                 [])}
            case "conversations.info":
                channel = str(params.get("channel"))
                if channel in self.missing_channels:
                    return {"ok": False, "error": "channel_not_found"}
                return {"ok": True, "channel": {"id": channel, "name": channel.lower(),
                                                "is_member": channel not in self.not_joined,
                                                "is_private": channel in self.private_channels,
                                                "is_archived": False}}
            case "apps.connections.open":
                return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}
            case _:
                return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(Call(f"response_url:{request.match_info['key']}", body, None))
        return web.Response(text="ok")

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0APP0001"}})
        self._ws_ready.set()
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                self.socket_frames.append(json.loads(frame.data))
                self._changed.set()
        return ws
