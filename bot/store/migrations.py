"""Schema migrations, keyed by PRAGMA user_version; each runs in its own transaction."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

# Append only: a released migration is never edited, a change is a new entry.
MIGRATIONS: tuple[str, ...] = (
    # 1: members and accounts, messages (evidence), verdicts, outbox.
    """
    CREATE TABLE members (
        id                TEXT PRIMARY KEY,
        display_name      TEXT NOT NULL,
        status            TEXT NOT NULL DEFAULT 'active',
        roles             TEXT NOT NULL DEFAULT '',
        membership_number TEXT UNIQUE,
        points            REAL NOT NULL DEFAULT 0,
        created_at        TEXT NOT NULL
    );
    CREATE TABLE accounts (
        platform     TEXT NOT NULL,
        account_id   TEXT NOT NULL,
        member_id    TEXT NOT NULL REFERENCES members(id),
        display_name TEXT,
        PRIMARY KEY (platform, account_id)
    );
    CREATE INDEX accounts_member ON accounts(member_id);
    CREATE TABLE messages (
        id           INTEGER PRIMARY KEY,
        platform     TEXT NOT NULL,
        message_id   TEXT NOT NULL,
        revision     INTEGER NOT NULL,
        channel      TEXT NOT NULL,
        channel_name TEXT,
        author       TEXT NOT NULL,
        member_id    TEXT REFERENCES members(id),
        text         TEXT,
        sent_at      TEXT NOT NULL,
        received_at  TEXT NOT NULL,
        reply_to     TEXT,
        thread       TEXT,
        UNIQUE (platform, message_id, revision)
    );
    CREATE INDEX messages_member ON messages(member_id, sent_at);
    CREATE INDEX messages_sent ON messages(sent_at);
    CREATE TABLE verdicts (
        id             INTEGER PRIMARY KEY,
        message_row    INTEGER NOT NULL UNIQUE REFERENCES messages(id),
        action         TEXT NOT NULL,
        severity       INTEGER NOT NULL,
        categories     TEXT NOT NULL,
        rule_ids       TEXT NOT NULL,
        clause         TEXT,
        scores         TEXT NOT NULL,
        thresholds     TEXT NOT NULL,
        model          TEXT NOT NULL,
        model_version  TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        reasons        TEXT NOT NULL,
        priority       INTEGER NOT NULL DEFAULT 0,
        decided_at     TEXT NOT NULL
    );
    CREATE INDEX verdicts_action ON verdicts(action, decided_at);
    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY,
        verdict_id  INTEGER REFERENCES verdicts(id),
        kind        TEXT NOT NULL,
        platform    TEXT NOT NULL,
        channel     TEXT,
        message_id  TEXT,
        user_id     TEXT,
        payload     TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'pending',
        attempts    INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        not_before  TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX outbox_pending ON outbox(platform, status, not_before);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
