"""The digest's renderers: pure functions of a Digest built from synthetic grouped rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest

from bot.digest import (
    Digest,
    assemble,
    to_csv,
    to_discord_embeds,
    to_html,
    to_json,
    to_markdown,
    to_slack_blocks,
)
from bot.store.digest_queries import DigestRows

MONDAY = date(2026, 11, 16)


def rows(*, channels: int = 4, members: int = 6) -> DigestRows:
    """Grouped rows as the store returns them, for a two-week window."""
    messages = [(day, f"C{c:03d}", "discord" if c % 2 else "slack",
                 f"a-rather-long-channel-name-{c:03d}", 10 + day + c)
                for day in range(14) for c in range(channels)]
    acted = [(day, "C000", "slack", action, cats, n) for day in range(14)
             for action, cats, n in (("warn", '["insult"]', 3 + day % 3),
                                     ("hide", '["toxicity", "insult"]', 2),
                                     ("escalate", '["threat"]', 1))]
    acted += [(7 * wk, f"C{c:03d}", "discord" if c % 2 else "slack", "warn", "[]", 2 + wk)
              for wk in (0, 1) for c in range(1, channels)]
    acted_members = [(wk, f"m{m}", "hide", 0, 1 + m % 3 + wk) for wk in (0, 1)
                     for m in range(members)]
    acted_members += [(1, "m1", "hide", 1, 3), (1, "m1", "escalate", 1, 1), (0, "m1", "hide", 1, 1)]
    return DigestRows(
        messages=messages, acted=acted, acted_members=acted_members,
        protected=[(1, "protected:mp-jones", 2), (0, "protected:cllr-b", 1)],
        points=[(f"m{m}", 1.0, 2.0, 4.5) for m in range(members)],
        members=[(f"m{m}", f"Member <{m}>", f"N{m:05d}", "suspended" if m == 1 else "active")
                 for m in range(members)],
        open_cases=[(7, "escalation", 3, "2026-11-20T10:00:00.000000+00:00", "open")],
        resolved=[(1, "2026-11-17T10:00:00+00:00", "2026-11-17T14:00:00+00:00")],
        appeals=[(1, "upheld"), (1, None)],
        calibration=[(1, "threat", "dismissed", 1), (1, "threat", "upheld", 3)],
        evidence=[(7, "quoted <b>evidence</b>")])


def digest(**kw: Any) -> Digest:
    return assemble(rows(**kw), monday=MONDAY, tz="Europe/London")


def test_assemble_counts() -> None:
    d = digest()
    warn = (sum(3 + x % 3 for x in range(7, 14)) + 3 * 3, sum(3 + x % 3 for x in range(7)) + 3 * 2)
    messages = d.messages
    assert {f.key: (f.this_week, f.last_week) for f in d.actions} == {
        "allow": (messages.this_week - warn[0] - 14 - 7, messages.last_week - warn[1] - 14 - 7),
        "warn": warn, "hide": (14, 14), "escalate": (7, 7)}
    assert sum(x.allow + x.warn + x.hide + x.escalate for x in d.days) == messages.this_week
    assert d.categories[0].key == "insult" and d.categories[0].this_week == (
        sum(3 + x % 3 for x in range(7, 14)) + 14)
    assert d.repeat_offenders[0].member == "m1"  # ids, not names, by default
    assert (d.repeat_offenders[0].points, d.repeat_offenders[0].points_last_week) == (2, 1)
    assert d.sanctioned[0].attempted == 4 and d.sanctioned[0].hidden == 3
    assert d.sanctioned[0].status == "suspended"
    assert d.calibration[0].share_dismissed == 0.25
    assert d.open_escalations[0].evidence == ()
    assert d.median_resolution_hours == 4


def test_json_round_trips() -> None:
    d = assemble(rows(), monday=MONDAY, tz="Europe/London", show_names=True,
                 quote_evidence=True)
    assert Digest.from_json(to_json(d)) == d
    assert json.loads(d.to_json())["open_escalations"][0]["evidence"] == [
        "quoted <b>evidence</b>"]


def test_csv_parses_one_row_per_figure() -> None:
    d = digest()
    table = list(csv.reader(io.StringIO(to_csv(d))))
    assert table[0] == ["section", "key", "this_week", "last_week", "change"]
    assert all(len(r) == 5 for r in table)
    as_dict = {(r[0], r[1]): r[2:] for r in table[1:]}
    warn = d.actions[1]
    assert as_dict[("actions", "warn")] == [str(int(warn.this_week)), str(int(warn.last_week)),
                                            str(int(warn.change))]
    assert as_dict[("messages", "total")][0] == str(int(d.messages.this_week))


def test_markdown_has_every_section() -> None:
    text = to_markdown(digest())
    for heading in ("# Weekly moderation digest 2026-W47", "## Channels: messages",
                    "## Repeat offenders", "## Protected persons targeted", "mp-jones",
                    "## Calibration"):
        assert heading in text


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.stack: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found.get("src") or "")
        if tag in ("script", "link") or (found.get("src") or "").startswith("http"):
            self.external.append(tag)
        if tag not in ("meta", "img", "br", "!doctype"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
        self.stack.pop()


def test_html_is_self_contained_with_png_charts() -> None:
    d = assemble(rows(), monday=MONDAY, tz="Europe/London", show_names=True,
                 quote_evidence=True)
    page = to_html(d)
    parser = _Parser()
    parser.feed(page)
    parser.close()
    assert parser.stack == [] and parser.external == []
    assert len(parser.images) == 3
    assert all(src.startswith("data:image/png;base64,iVBOR") for src in parser.images)
    assert "Member &lt;2&gt;" in page and "<b>evidence" not in page


def _discord_ok(messages: list[list[dict[str, Any]]]) -> None:
    for embeds in messages:
        assert 1 <= len(embeds) <= 10
        total = 0
        for embed in embeds:
            assert len(embed["title"]) <= 256 and len(embed.get("description", "")) <= 4096
            assert len(embed["fields"]) <= 25
            total += len(embed["title"]) + len(embed.get("description", ""))
            for f in embed["fields"]:
                assert 0 < len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024
                total += len(f["name"]) + len(f["value"])
        assert total <= 6000


def _slack_ok(messages: list[list[dict[str, Any]]]) -> None:
    for blocks in messages:
        assert 1 <= len(blocks) <= 50
        for block in blocks:
            limit = 150 if block["type"] == "header" else 3000
            assert 0 < len(block["text"]["text"]) <= limit


@pytest.mark.parametrize("channels", [4, 200, 1500])
def test_chat_renderers_stay_within_limits_and_split(channels: int) -> None:
    d = digest(channels=channels, members=channels)
    discord, slack = to_discord_embeds(d), to_slack_blocks(d)
    _discord_ok(discord)
    _slack_ok(slack)
    # Nothing is truncated: every channel and every repeat offender appears somewhere.
    values = "\n".join(f["value"] for m in discord for e in m for f in e["fields"])
    texts = "\n".join(b["text"]["text"] for m in slack for b in m)
    for figure in (*d.channel_messages, *d.channel_actions):
        assert f"{figure.key}: {int(figure.this_week)}" in values
    for r in d.repeat_offenders:
        assert f"{r.member}: {r.acted} acted on" in values
        assert f"{r.member}: {r.acted} acted on" in texts
    for figure in d.channel_messages:
        assert f"{figure.key}: {int(figure.this_week)}" in texts
    assert (len(discord) > 1) == (channels >= 200)
    assert (len(slack) > 1) == (channels >= 1500)


def test_slack_escapes_control_characters() -> None:
    d = assemble(rows(), monday=MONDAY, tz="Europe/London", show_names=True)
    text = json.dumps(to_slack_blocks(d))
    assert "Member &lt;2&gt;" in text and "Member <2>" not in text
