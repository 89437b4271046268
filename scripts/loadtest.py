#!/usr/bin/env python3
"""Live load: `bot.py run` with both adapters against loopback fakes, at a steady rate.

    python scripts/loadtest.py [--rate 20] [--seconds 300]

Starts the fake Slack (signed Events API requests, Web API) and the fake Discord (gateway
WebSocket and REST) from ``tests/adapters/`` on 127.0.0.1, then ``bot.py run`` as a child
process pointed at them: the default offline scorer and policy, a fresh database. Once both
adapters are connected it sends posts of the realistic mix (scripts/benchmix.py) at `--rate`
per second for `--seconds`, alternating Slack and Discord, from 40 members per platform, and
prints (issue 12, P3; goals in brackets):

- Slack ack: from sending a signed event to the HTTP answer [p99 <= 50 ms];
- event to action: from sending an event to the first platform call that names the message
  (the delete, the notice, the escalation), for the messages the bot acted on [p99 <= 1.5 s];
- the bot process's CPU and peak RSS [<= 700 MB], read from /proc (Linux).

The load generator and the fakes share the machine with the bot, as they would not in
production: on a 2-core machine they take part of the CPU the bot would have.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from benchmix import realistic_mix  # noqa: E402

from adapters.slack.adapter import sign  # noqa: E402
from tests.adapters.discord import fake_discord  # noqa: E402
from tests.adapters.discord.fake_discord import FakeDiscord  # noqa: E402
from tests.adapters.slack.fake_slack import BOT_USER, GENERAL, MODS, TEAM, Call, FakeSlack  # noqa: E402

SECRET = "loadtest-signing-secret"
#: Authors, half on each platform: at 20 msg/s each posts about once every 20 s, a busy evening
#: on a big server. (Forty authors would each post every two seconds: a flood the policy's
#: [spam] checks hide, which is not the traffic this test is about.)
MEMBERS = 400
_LONG_AGO = "2024-01-15T12:00:00+00:00"
#: Discord's epoch (2015-01-01), in milliseconds: a snowflake's top bits count from it.
_DISCORD_EPOCH_MS = 1_420_070_400_000


def _snowflake_now() -> int:
    """A Discord id of this moment (Discord dates a message by its id)."""
    return (int(datetime.now(UTC).timestamp() * 1000) - _DISCORD_EPOCH_MS) << 22
#: Message ids as they appear in platform calls: Slack timestamps and Discord snowflakes.
_IDS = re.compile(r"\d{10}\.\d{6}|\d{17,20}")


class Stamps:
    """When the first platform call naming each sent message arrived."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.acted: dict[str, float] = {}

    def seen(self, content: Any) -> None:
        now = time.perf_counter()
        for found in _IDS.findall(json.dumps(content, default=str)):
            if found in self.sent and found not in self.acted:
                self.acted[found] = now


class TimedSlack(FakeSlack):
    stamps: Stamps

    def _record(self, call: Call) -> None:
        super()._record(call)
        self.stamps.seen(call.params)


class TimedDiscord(FakeDiscord):
    stamps: Stamps

    async def _rest(self, request: web.Request) -> web.Response:
        response = await super()._rest(request)
        last = self.requests[-1]
        self.stamps.seen([last.path, last.body])
        return response


def _tail(log: Path) -> str:
    """The end of the bot's log, for a failure message."""
    return log.read_text(errors="replace")[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def _pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long to send")
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")

    stamps = Stamps()
    slack, discord_fake = TimedSlack(), TimedDiscord()
    slack.stamps = discord_fake.stamps = stamps
    # Members of the fake guild, so every author is a guild member as on a real server.
    discord_users = [str(941000000000000000 + n) for n in range(MEMBERS)]
    for uid in discord_users:
        fake_discord.USERS[uid] = fake_discord.user(uid, f"member{uid[-3:]}")
    await slack.start()
    await discord_fake.start()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CONDUCTBOT_DB": str(Path(tmp) / "load.sqlite3"),
               "DISCORD_TOKEN": "load-test-token", "DISCORD_MOD_CHANNEL_ID": fake_discord.MODS_ID,
               "DISCORD_API_BASE": discord_fake.api_base,
               "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
               "SLACK_BOT_TOKEN": "xoxb-load-test", "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_BASE": slack.api_base, "SLACK_MOD_CHANNEL": MODS,
               "SLACK_PORT": str(port), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("SLACK_APP_TOKEN", None)
        log_path = Path(tmp) / "bot.log"
        started = time.perf_counter()
        with log_path.open("wb") as log:
            bot = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "bot.py"), "run", cwd=str(ROOT), env=env,
                stdout=log, stderr=asyncio.subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/slack/events"
            async with aiohttp.ClientSession() as http:
                await _ready(http, url, discord_fake, bot, log_path)
                print(f"bot.py run ready in {time.perf_counter() - started:.1f} s "
                      f"(pid {bot.pid}); sending {args.rate:g} msg/s for {args.seconds:g} s")
                acks, samples = await _send(http, url, discord_fake, discord_users, stamps,
                                            args.rate, args.seconds, bot.pid)
                # Stragglers: actions still in flight when the last message was sent.
                await asyncio.sleep(5)
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(bot.wait(), 30)
                except TimeoutError:
                    bot.kill()
            await slack.stop()
            await discord_fake.stop()
        if bot.returncode not in (0, -signal.SIGTERM):
            print(f"bot.py run exited with {bot.returncode}; its log ends:\n"
                  + _tail(log_path))
        decided = _decided(Path(env["CONDUCTBOT_DB"]))
    _report(stamps, acks, samples)
    print(f"  decided and stored: {decided:,} of {len(stamps.sent):,} messages")
    return 0 if decided == len(stamps.sent) else 1


def _decided(db: Path) -> int:
    """Messages with a verdict in the bot's database."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])


async def _ready(http: aiohttp.ClientSession, url: str, discord_fake: FakeDiscord,
                 bot: asyncio.subprocess.Process, log_path: Path) -> None:
    """Wait (60 s at most) until Discord identified and the Slack endpoint answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if bot.returncode is not None:
            raise SystemExit("bot.py run stopped while starting; its log ends:\n"
                             + _tail(log_path))
        if discord_fake.connected.is_set():
            try:
                async with http.post(url, data=b"{}") as response:
                    if response.status in (200, 401):  # listening (an unsigned probe: 401)
                        return
            except aiohttp.ClientConnectionError:
                pass
        await asyncio.sleep(0.2)
    raise SystemExit("bot.py run did not connect within 60 s; its log ends:\n"
                     + _tail(log_path))


def _texts() -> Iterator[str]:
    return itertools.cycle(realistic_mix())


async def _send(http: aiohttp.ClientSession, url: str, discord_fake: FakeDiscord,
                discord_users: list[str], stamps: Stamps, rate: float, seconds: float,
                pid: int) -> tuple[list[float], list[tuple[float, float, int]]]:
    """Send at a steady rate; Slack ack latencies (s) and (time, CPU s, RSS) samples."""
    acks: list[float] = []
    samples = [(time.perf_counter(), *_proc(pid))]
    texts = _texts()
    pending: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    total = int(rate * seconds)
    next_sample = start + 1.0

    async def slack_event(n: int, text: str) -> None:
        ts = f"{int(time.time())}.{n:06d}"
        body = json.dumps({
            "type": "event_callback", "team_id": TEAM, "api_app_id": "A0LOAD001",
            "event_id": f"Ev0LOAD{n:07d}", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
            "event": {"type": "message", "channel": GENERAL, "user": f"ULOAD{n % MEMBERS:04d}",
                      "text": text, "ts": ts, "channel_type": "channel", "team": TEAM}})
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": sign(SECRET, stamp, body)}
        sent = stamps.sent[ts] = time.perf_counter()
        async with http.post(url, data=body.encode(), headers=headers) as response:
            await response.read()
            if response.status == 200:
                acks.append(time.perf_counter() - sent)

    for n in range(total):
        due = start + n / rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        # The mix comes round every 15 s: numbered, no two posts are one copy-paste campaign.
        text = f"{next(texts)} ({n})"
        if n % 2:
            # An id of this moment: Discord dates a message by its id.
            mid = str(_snowflake_now() + n)
            stamps.sent[mid] = time.perf_counter()
            # Posted now by members of long standing (the fake's default ids and join date
            # would read to the [spam] checks as a raid of newcomers).
            await discord_fake.dispatch("MESSAGE_CREATE", fake_discord.message(
                mid, text, author=discord_users[n % MEMBERS], joined_at=_LONG_AGO))
        else:
            task = asyncio.create_task(slack_event(n, text))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if time.perf_counter() >= next_sample:
            samples.append((time.perf_counter(), *_proc(pid)))
            next_sample += 1.0
            if len(samples) % 30 == 0:
                print(f"  {n + 1:,} sent, {len(stamps.acted):,} acted on, RSS "
                      f"{samples[-1][2] / 2**20:,.0f} MB")
    await asyncio.gather(*pending)
    samples.append((time.perf_counter(), *_proc(pid)))
    return acks, samples


def _report(stamps: Stamps, acks: list[float], samples: list[tuple[float, float, int]]) -> None:
    latencies = [stamps.acted[k] - stamps.sent[k] for k in stamps.acted]
    elapsed = samples[-1][0] - samples[0][0]
    cpu = (samples[-1][1] - samples[0][1]) / elapsed if elapsed else float("nan")
    peak = max(rss for _, _, rss in samples)

    def row(label: str, values: list[float], goal: str) -> None:
        if not values:
            print(f"  {label:<22} no samples")
            return
        ms = [v * 1000 for v in values]
        print(f"  {label:<22} p50 {_pct(ms, 50):8.1f} ms  p95 {_pct(ms, 95):8.1f} ms  "
              f"p99 {_pct(ms, 99):8.1f} ms  max {max(ms):8.1f} ms  (n={len(ms):,}; {goal})")

    print(f"sent {len(stamps.sent):,} messages; the bot acted on {len(stamps.acted):,}")
    row("Slack ack", acks, "goal p99 <= 50 ms")
    row("event to action", latencies, "goal p99 <= 1,500 ms")
    print(f"  bot.py run CPU {cpu * 100:.0f}% of one core on average; peak RSS "
          f"{peak / 2**20:,.0f} MB (goal <= 700 MB)")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
