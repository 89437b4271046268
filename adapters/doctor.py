"""`conductbot doctor`: ask Discord and Slack whether the bot has everything it needs.

Each configured platform is asked with the configured tokens (read-only calls: nothing is
changed there) and answers a checklist: intents, permissions and scopes, the channels the bot
watches and posts to, the admin token for deletes, and whether the register's moderators can be
found. Every failed check carries the fix, in words a party's administrator can follow. The
platform modules (`adapters/discord/doctor.py`, `adapters/slack/doctor.py`) hold the checks and
the list of what the adapters need; this module holds the checklist, the register look-up, the
rendering and the exit status: 0 when every check passed, 1 when one failed; a configuration
error (a malformed variable, no platform configured) is raised as a ConductError (exit 2).
"""

from __future__ import annotations

__all__ = ["DOCTOR_TIMEOUT", "Check", "RegisteredModerator", "Report", "Status", "doctor",
           "failed", "join_names", "passed", "register_moderators", "render_lines", "render_text",
           "run_doctor", "to_json", "warned"]

import asyncio
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bot.config import Settings
from bot.database import Target, described, is_url
from bot.errors import ConductError
from bot.models import Platform
from bot.policy import load_policy

#: Seconds one platform may take to answer every question before its checks stop with a
#: failed "answered in time" check.
DOCTOR_TIMEOUT = 60.0

_TITLES = {"discord": "Discord", "slack": "Slack"}


class Status(StrEnum):
    """How a check came out; only FAIL makes the command fail."""

    OK = "ok"
    FAIL = "fail"
    WARN = "warn"


_MARKS = {Status.OK: ("✓", "green"), Status.FAIL: ("✗", "bold red"),
          Status.WARN: ("!", "yellow")}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist: what was checked, what the platform said, how to fix it."""

    platform: str
    name: str
    status: Status
    detail: str = ""
    fix: str = ""
    #: Machine-readable extras for --json (e.g. the missing permissions).
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether this check does not fail the command."""
        return self.status is not Status.FAIL


def passed(platform: str, name: str, detail: str = "", /, **data: Any) -> Check:
    """A check that passed."""
    return Check(platform, name, Status.OK, detail, "", data)


def failed(platform: str, name: str, detail: str, /, *, fix: str, **data: Any) -> Check:
    """A check that failed, with what to do about it."""
    return Check(platform, name, Status.FAIL, detail, fix, data)


def warned(platform: str, name: str, detail: str, /, *, fix: str = "", **data: Any) -> Check:
    """Worth knowing, but the bot works: does not fail the command."""
    return Check(platform, name, Status.WARN, detail, fix, data)


@dataclass(frozen=True, slots=True)
class RegisteredModerator:
    """A moderator in the register with an account on one platform."""

    account: str
    label: str


@dataclass(frozen=True, slots=True)
class Report:
    """The whole checklist, platform by platform."""

    platforms: tuple[str, ...]
    checks: tuple[Check, ...]

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status is Status.FAIL]

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failures else 0


async def register_moderators(db: Target, /) -> dict[Platform, list[RegisteredModerator]] | None:
    """The register's moderators in good standing with their account on each platform; None
    when there is no database file (opening one would create it empty)."""
    from bot.store import Store

    if not is_url(db) and not await asyncio.to_thread(Path(db).exists):
        return None
    found: dict[Platform, list[RegisteredModerator]] = {}
    async with Store.open(db) as store:
        for platform in (Platform.DISCORD, Platform.SLACK):
            found[platform] = []
            for account in await store.moderator_accounts(platform):
                member = await store.member_by_account(platform, account)
                label = member.label if member is not None else f"{platform}:{account}"
                found[platform].append(RegisteredModerator(account, label))
    return found


async def run_doctor(settings: Settings, /, env: Mapping[str, str] | None = None) -> Report:
    """Check every configured platform; a ConductError for a configuration error."""
    from adapters.runner import configured_platforms
    from bot.schedule import DigestSchedule

    env = os.environ if env is None else env
    platforms = configured_platforms(env)
    if not platforms:
        raise ConductError("no platform is configured: set DISCORD_TOKEN (see docs/discord.md) "
                           "and/or SLACK_BOT_TOKEN (see docs/slack.md), then run doctor again")
    # Every setting is validated before anything connects, as `run` does.
    discord_config = slack_config = None
    if "discord" in platforms:
        from adapters.discord.config import DiscordConfig

        discord_config = DiscordConfig.from_env(env)
    if "slack" in platforms:
        from adapters.slack.config import SlackConfig

        slack_config = SlackConfig.from_env(env)
    digest = DigestSchedule.from_env(env)
    unserved = sorted(str(p) for p in digest.targets if str(p) not in platforms)
    if unserved:
        raise ConductError(f"the digest is set to post to {', '.join(unserved)}, which is not "
                           f"configured: set its token or drop CONDUCTBOT_DIGEST_"
                           f"{unserved[0].upper()}_CHANNEL")
    register = await register_moderators(settings.db)
    checks: list[Check] = []
    if discord_config is not None:
        from adapters.discord.doctor import check_discord

        spam = load_policy(settings.policy).spam
        checks += await check_discord(
            discord_config, digest_channel=digest.targets.get(Platform.DISCORD),
            moderators=None if register is None else register[Platform.DISCORD],
            db=described(settings.db), slowmode=spam is not None and spam.raid is not None
            and spam.raid_response == "slowmode")
    if slack_config is not None:
        from adapters.slack.doctor import check_slack

        checks += await check_slack(
            slack_config, digest_channel=digest.targets.get(Platform.SLACK),
            moderators=None if register is None else register[Platform.SLACK],
            db=described(settings.db))
    return Report(tuple(platforms), tuple(checks))


def render_lines(report: Report, /) -> Iterator[tuple[str, str]]:
    """The checklist as (text, style) lines: a heading per platform, a mark per check, the
    fix indented under each failure, and a summary."""
    for platform in report.platforms:
        checks = [c for c in report.checks if c.platform == platform]
        bad = sum(1 for c in checks if c.status is Status.FAIL)
        yield (f"{_TITLES.get(platform, platform)}: "
               + (f"{bad} of {len(checks)} checks failed" if bad else
                  f"all {len(checks)} checks passed"), "bold")
        for check in checks:
            mark, style = _MARKS[check.status]
            text = f"  {mark} {check.name}" + (f": {check.detail}" if check.detail else "")
            yield text, style if check.status is not Status.OK else ""
            if check.fix:
                yield f"      fix: {check.fix}", ""
    bad = len(report.failures)
    yield ((f"{bad} check(s) failed: fix them and run `conductbot doctor` again." if bad else
            "Everything the bot needs is in place."), "bold red" if bad else "bold green")


def render_text(report: Report, /) -> str:
    """The checklist as plain text."""
    return "\n".join(text for text, _ in render_lines(report)) + "\n"


def to_json(report: Report, /) -> str:
    """The checklist as one JSON object."""
    return json.dumps({
        "ok": not report.failures,
        "platforms": list(report.platforms),
        "failed": len(report.failures),
        "checks": [{"platform": c.platform, "check": c.name, "status": str(c.status),
                    "detail": c.detail, "fix": c.fix or None, **dict(c.data)}
                   for c in report.checks],
    }, ensure_ascii=False, indent=2)


def doctor(settings: Settings, /, *, as_json: bool = False,
           env: Mapping[str, str] | None = None) -> int:
    """`conductbot doctor`: print the checklist; the exit status (0 all passed, 1 a check
    failed). A configuration error is raised (the command line exits 2)."""
    report = asyncio.run(run_doctor(settings, env))
    if as_json:
        print(to_json(report))
        return report.exit_code
    out = Console(highlight=False, soft_wrap=True)
    for text, style in render_lines(report):
        out.print(escape(text), style=style or None)
    return report.exit_code


def join_names(items: Sequence[str], /) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
