"""Membership register: the example parses, every bad-row class is reported and left out."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import InputError
from bot.models import Account, MemberStatus, Platform, Role
from bot.register import COLUMNS, RegisterRow, parse_register, read_register

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "register.csv"
BAD = ROOT / "examples" / "register_bad.csv"
HEADER = ",".join(COLUMNS)


def row(**cells: str) -> str:
    """One CSV data line with the given cells, the rest empty."""
    unknown = set(cells) - set(COLUMNS)
    assert not unknown, unknown
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([cells.get(c, "") for c in COLUMNS])
    return out.getvalue()


def parse(*lines: str) -> tuple[list[RegisterRow], dict[int, str]]:
    """Parse a header plus the lines; the rows, and the errors by line."""
    register = parse_register("\n".join((HEADER, *lines)) + "\n")
    return list(register.rows), {e.line: e.message for e in register.errors}


GOOD = {"membership_number": "A123456", "name": "Jo Bloggs", "status": "active"}


# --- the example export ---------------------------------------------------------------------


def test_example_register_parses_without_errors() -> None:
    register = read_register(EXAMPLE)
    assert register.errors == ()
    assert len(register.rows) >= 20
    numbers = [r.membership_number for r in register.rows]
    assert len(set(numbers)) == len(numbers)
    assert [r.line for r in register.rows] == list(range(2, len(register.rows) + 2))


def _demo_accounts() -> dict[str, set[Account]]:
    """Each demo author's handle and the platform accounts they post from."""
    accounts: dict[str, set[Account]] = {}
    for line in (ROOT / "examples" / "forum.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            handle = d.get("author_name", d["author"])
            accounts.setdefault(handle, set()).add(
                Account(Platform(d.get("platform", "console")), d["author"]))
    return accounts


def test_example_register_roles_and_statuses() -> None:
    rows = {r.name: r for r in read_register(EXAMPLE).rows}
    demo = _demo_accounts()
    by_handle = {h: r for r in rows.values() for h, accts in demo.items()
                 if accts <= set(r.accounts)}
    assert Role.MODERATOR in by_handle["mod_karen"].roles
    assert rows["Sarah Whitfield"].roles == {Role.MP}
    assert rows["Rachel Adler"].roles == {Role.MP}
    assert rows["Priya Nair"].roles == {Role.COUNCILLOR}
    assert rows["Tom Hargreaves"].roles == {Role.COUNCILLOR}
    assert rows["Daniel Brooks"].roles == {Role.STAFF}
    assert by_handle["dan_brooks_org"] is rows["Daniel Brooks"]
    # The look-alike members are not the councillors.
    assert by_handle["priya_k"].roles == frozenset()
    assert by_handle["tomh_leeds"].roles == frozenset()

    suspended = by_handle["truthseeker_77"]
    assert suspended.status is MemberStatus.SUSPENDED
    assert suspended.suspended_from == datetime(2026, 11, 20, tzinfo=UTC)  # GMT in November
    assert suspended.suspended_until == datetime(2027, 2, 20, tzinfo=UTC)
    assert suspended.reason == "Antisemitic abuse, case referred to compliance"

    statuses = [r.status for r in rows.values()]
    assert statuses.count(MemberStatus.EXPELLED) == 1
    assert statuses.count(MemberStatus.LAPSED) == 1
    assert statuses.count(MemberStatus.SUSPENDED) == 1


def test_example_register_links_every_account_of_the_demo_authors_it_names() -> None:
    demo = _demo_accounts()
    linked = {a for r in read_register(EXAMPLE).rows for a in r.accounts}
    covered = {h for h, accts in demo.items() if accts & linked}
    assert {"mod_karen", "dan_brooks_org", "truthseeker_77", "gazza_bolton"} <= covered
    for handle in covered:  # a registered author is linked on every platform they post from
        assert demo[handle] <= linked, handle


def test_accounts_pair_each_id_with_its_platform() -> None:
    rows = {r.name: r for r in read_register(EXAMPLE).rows}
    assert rows["Daniel Brooks"].accounts == (
        Account(Platform.SLACK, "U34BEE5A6AA"),
    )
    assert rows["Priya Nair"].accounts == ()


# --- the bad example: one error class per row -----------------------------------------------


def test_bad_register_reports_each_error_on_its_line_and_keeps_good_rows() -> None:
    register = read_register(BAD)
    assert [(r.line, r.membership_number) for r in register.rows] == [
        (2, "A100001"),
        (12, "A100009"),
    ]
    errors = {e.line: e.message for e in register.errors}
    expected = {
        3: "column name: required but empty",
        4: "column status: 'banned' is not a status",
        6: "column suspended_from: '20/11/2026' is not an ISO date",
        7: "column suspended_until: '2026-11-01' is not after suspended_from",
        8: "column suspended_until: given but status is active",
        9: "column discord_id: '12ab' is not a Discord user id (17-20 digits)",
        10: "column roles: 'chair' is not a role",
        11: "column membership_number: 'A100001' already appears on line 2",
    }
    assert set(errors) == set(expected)  # line 5 is blank: skipped, not an error
    for line, text in expected.items():
        assert text in errors[line], (line, errors[line])
    assert all(e.message.count("column ") == 1 for e in register.errors)


def test_bad_register_good_rows_are_whole() -> None:
    good = read_register(BAD).rows[1]
    assert good.status is MemberStatus.SUSPENDED
    assert good.suspended_from == datetime(2026, 11, 20, 9, 20, 33, tzinfo=UTC)
    assert good.suspended_until is None
    assert good.reason == "Doxxing, case referred to compliance"
    assert good.slack_id == "U01ABCDEF23"
    assert good.roles == {Role.COUNCILLOR, Role.STAFF}


# --- individual rules -----------------------------------------------------------------------


def test_cells_are_stripped_and_normalised() -> None:
    rows, errors = parse(
        row(
            membership_number=" a123456 ",
            name="  Jo Bloggs ",
            status=" Suspended ",
            roles=" Moderator ; mp ;",
        )
    )
    assert errors == {}
    (only,) = rows
    assert only.membership_number == "A123456"
    assert only.name == "Jo Bloggs"
    assert only.status is MemberStatus.SUSPENDED
    assert only.suspended_from is None  # suspended, from an unknown date
    assert only.roles == {Role.MODERATOR, Role.MP}


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"membership_number": ""}, "column membership_number: required but empty"),
        ({"membership_number": "A1"}, "column membership_number: 'A1' is not a membership"),
        ({"membership_number": "A12-3456"}, "is not a membership number"),
        ({"status": ""}, "column status: required but empty"),
        ({"discord_id": "1234567890123456"}, "column discord_id: '1234567890123456'"),
        ({"discord_id": "012345678901234567"}, "is not a Discord user id"),
        ({"slack_id": "u01ABCDEF23"}, "column slack_id: 'u01ABCDEF23' is not a Slack user id"),
        ({"slack_id": "C01ABCDEF23"}, "is not a Slack user id"),
        ({"slack_id": "U0123"}, "is not a Slack user id"),
        ({"console_id": "two words"}, "column console_id: 'two words' is not a console handle"),
        ({"console_id": "x" * 65}, "is not a console handle"),
        ({"roles": "mp,staff"}, "separate roles with ';'"),
        (
            {"status": "lapsed", "suspended_from": "2026-01-01"},
            "column suspended_from: given but status is lapsed",
        ),
        (
            {"status": "expelled", "suspended_until": "2027-01-01"},
            "column suspended_until: given but status is expelled",
        ),
        ({"suspended_from": "2026-13-01", "status": "suspended"}, "is not an ISO date"),
        ({"suspended_until": "next week", "status": "suspended"}, "is not an ISO date"),
        (
            {
                "status": "suspended",
                "suspended_from": "2026-11-20T10:00:00Z",
                "suspended_until": "2026-11-20T10:00:00Z",
            },
            "is not after suspended_from",
        ),
        ({"name": "x" * 101}, "column name: longer than 100 characters"),
    ],
)
def test_bad_cell_is_reported_and_row_left_out(cells: dict[str, str], message: str) -> None:
    rows, errors = parse(row(**{**GOOD, **cells}), row(**{**GOOD, "membership_number": "B999999"}))
    assert [r.line for r in rows] == [3]
    assert list(errors) == [2]
    assert message in errors[2]


def test_every_problem_in_a_row_is_named_in_one_error() -> None:
    rows, errors = parse(row(membership_number="A123456", status="gone", discord_id="12ab"))
    assert rows == []
    assert "column name" in errors[2]
    assert "column status" in errors[2]
    assert "column discord_id" in errors[2]


@pytest.mark.parametrize("column", ["discord_id", "slack_id", "console_id"])
def test_same_account_on_two_rows_is_refused_on_the_later(column: str) -> None:
    value = {"discord_id": "123456789012345678", "slack_id": "W0123ABCD9", "console_id": "jo"}
    rows, errors = parse(
        row(**GOOD, **{column: value[column]}),
        row(**{**GOOD, "membership_number": "B999999"}, **{column: value[column]}),
    )
    assert [r.line for r in rows] == [2]
    assert errors == {3: f"column {column}: {value[column]!r} already appears on line 2"}


def test_duplicate_of_a_rejected_row_is_still_a_duplicate() -> None:
    rows, errors = parse(row(**{**GOOD, "status": "banned"}), row(**GOOD))
    assert rows == []
    assert "already appears on line 2" in errors[3]


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\t"])
def test_control_characters_are_refused(char: str) -> None:
    rows, errors = parse(row(**{**GOOD, "name": f"Jo{char}Bloggs"}))
    assert rows == []
    assert errors[2].startswith(f"column name: contains control character U+{ord(char):04X}")


def test_newline_inside_a_quoted_cell_is_refused_and_lines_still_count() -> None:
    text = "\n".join((HEADER, 'A111111,"Jo\nBloggs",active,,,,,,,', "", row(**GOOD)))
    register = parse_register(text)
    assert [e.line for e in register.errors] == [2]
    assert "U+000A" in register.errors[0].message
    assert [r.line for r in register.rows] == [5]


def test_unclosed_quote_names_the_lines_it_swallowed() -> None:
    text = "\n".join((HEADER, 'A111111,"Jo Bloggs,active', row(**GOOD), ""))
    register = parse_register(text)
    assert register.rows == ()
    (error,) = register.errors
    assert error.line == 2
    assert "runs from line 2 to line 3" in error.message


def test_unreadable_csv_row_is_an_error_and_reading_goes_on() -> None:
    huge = row(**{**GOOD, "reason": "x" * 200_000})
    register = parse_register("\n".join((HEADER, huge, row(**{**GOOD, "name": "Next"}), "")))
    assert [(e.line, "field limit" in e.message) for e in register.errors] == [(2, True)]
    assert [(r.line, r.name) for r in register.rows] == [(3, "Next")]


def test_blank_and_empty_cell_lines_are_skipped() -> None:
    rows, errors = parse("", ",,,,,,,,,", "   ", row(**GOOD))
    assert errors == {}
    assert [r.line for r in rows] == [5]


def test_short_rows_read_missing_trailing_cells_as_empty() -> None:
    rows, errors = parse("A123456,Jo Bloggs,active")
    assert errors == {}
    assert rows[0].roles == frozenset()


def test_extra_non_empty_cells_are_refused() -> None:
    rows, errors = parse(row(**GOOD) + ",surplus", row(**{**GOOD, "membership_number": "B1234"}))
    assert [r.line for r in rows] == [3]
    assert "11 cells but the header has 10 columns" in errors[2]


def test_crlf_line_endings_and_bom() -> None:
    text = "\ufeff" + HEADER + "\r\n" + row(**GOOD) + "\r\n"
    register = parse_register(text)
    assert register.errors == ()
    assert register.rows[0].line == 2


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        # A date is 00:00 UK time: GMT in winter, BST (UTC+1) in summer.
        ("2026-11-20", datetime(2026, 11, 20, 0, 0, tzinfo=UTC)),
        ("2026-07-01", datetime(2026, 6, 30, 23, 0, tzinfo=UTC)),
        ("2026-11-20T09:20:33Z", datetime(2026, 11, 20, 9, 20, 33, tzinfo=UTC)),
        ("2026-07-01T09:00:00+01:00", datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        # Without an offset, a time is UK local time.
        ("2026-07-01 09:00", datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T09:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_dates_become_aware_utc(cell: str, expected: datetime) -> None:
    rows, errors = parse(row(**{**GOOD, "status": "suspended", "suspended_from": cell}))
    assert errors == {}
    since = rows[0].suspended_from
    assert since == expected
    assert since is not None and since.utcoffset() is not None and since.tzinfo is UTC


def test_expelled_member_may_keep_suspended_from() -> None:
    rows, errors = parse(row(**{**GOOD, "status": "expelled", "suspended_from": "2026-05-11"}))
    assert errors == {}
    assert rows[0].suspended_from == datetime(2026, 5, 10, 23, 0, tzinfo=UTC)


# --- header problems ------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["membership_number", "name", "status"])
def test_header_missing_required_column_is_named(column: str) -> None:
    header = ",".join(c for c in COLUMNS if c != column)
    with pytest.raises(InputError, match=f"missing required column\\(s\\): {column}") as info:
        parse_register(header + "\n", source="reg.csv")
    assert info.value.source == "reg.csv"
    assert info.value.line == 1


def test_header_unknown_column_is_named() -> None:
    with pytest.raises(InputError, match="unknown column\\(s\\): 'email'"):
        parse_register(HEADER + ",email\n")


def test_header_duplicate_and_blank_columns_are_refused() -> None:
    with pytest.raises(InputError, match="given twice: name"):
        parse_register(HEADER + ",Name\n")
    with pytest.raises(InputError, match="header cell\\(s\\) 11 have no column name"):
        parse_register(HEADER + ",\n")


def test_optional_columns_may_be_left_out_and_header_is_case_insensitive() -> None:
    register = parse_register("Status, Membership_Number ,NAME\nactive,A123456,Jo\n")
    assert register.errors == ()
    assert register.rows[0].name == "Jo"
    assert register.rows[0].discord_id is None


def test_empty_register_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty"):
        parse_register("\n\n")


def test_header_only_register_has_no_rows() -> None:
    assert parse_register(HEADER + "\n").rows == ()


def test_read_register_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the register") as info:
        read_register(tmp_path / "absent.csv")
    assert info.value.source.endswith("absent.csv")


def test_read_register_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "\nA123456,Zoë,active\n").encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_register(path)


def test_read_register_tolerates_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes((HEADER + "\r\n" + row(**GOOD) + "\r\n").encode("utf-8-sig"))
    register = read_register(path)
    assert register.errors == ()
    assert register.rows[0].membership_number == "A123456"


def test_read_register_header_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "reg.csv"
    path.write_text("membership_number,name\n", encoding="utf-8")
    with pytest.raises(InputError, match="status") as info:
        read_register(path)
    assert str(path) in str(info.value)
