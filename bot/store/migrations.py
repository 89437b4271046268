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
    # 2: standing (status details, strikes), cases with history, the audit log, reviews.
    """
    ALTER TABLE members ADD COLUMN status_reason TEXT;
    ALTER TABLE members ADD COLUMN suspended_from TEXT;
    ALTER TABLE members ADD COLUMN suspended_until TEXT;
    ALTER TABLE members ADD COLUMN updated_at TEXT;
    CREATE TABLE cases (
        id            INTEGER PRIMARY KEY,
        member_id     TEXT NOT NULL REFERENCES members(id),
        kind          TEXT NOT NULL,
        state         TEXT NOT NULL,
        priority      INTEGER NOT NULL DEFAULT 0,
        clause        TEXT,
        summary       TEXT NOT NULL,
        automatic     INTEGER NOT NULL DEFAULT 0,
        opened_by     TEXT NOT NULL,
        assignee      TEXT,
        proposal      TEXT,
        appeal        TEXT,
        appeal_outcome TEXT,
        resolution    TEXT,
        opened_at     TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        resolved_at   TEXT
    );
    CREATE INDEX cases_state ON cases(state, priority, opened_at);
    CREATE INDEX cases_member ON cases(member_id);
    CREATE TABLE case_messages (
        case_id     INTEGER NOT NULL REFERENCES cases(id),
        message_row INTEGER NOT NULL REFERENCES messages(id),
        verdict_id  INTEGER REFERENCES verdicts(id),
        PRIMARY KEY (case_id, message_row)
    );
    CREATE TABLE case_events (
        id         INTEGER PRIMARY KEY,
        case_id    INTEGER NOT NULL REFERENCES cases(id),
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        event      TEXT NOT NULL,
        from_state TEXT,
        to_state   TEXT,
        detail     TEXT
    );
    CREATE INDEX case_events_case ON case_events(case_id, id);
    CREATE TABLE strikes (
        id          INTEGER PRIMARY KEY,
        member_id   TEXT NOT NULL REFERENCES members(id),
        case_id     INTEGER REFERENCES cases(id),
        verdict_id  INTEGER REFERENCES verdicts(id),
        points      REAL NOT NULL,
        reason      TEXT NOT NULL,
        at          TEXT NOT NULL,
        pardoned_at TEXT,
        pardon_reason TEXT
    );
    CREATE INDEX strikes_member ON strikes(member_id, at);
    CREATE TABLE audit_log (
        id             INTEGER PRIMARY KEY,
        at             TEXT NOT NULL,
        actor          TEXT NOT NULL,
        action         TEXT NOT NULL,
        member_id      TEXT,
        case_id        INTEGER,
        reason         TEXT,
        policy_version TEXT,
        model_version  TEXT,
        detail         TEXT
    );
    CREATE INDEX audit_member ON audit_log(member_id, at);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE reviews (
        id          INTEGER PRIMARY KEY,
        verdict_id  INTEGER NOT NULL REFERENCES verdicts(id),
        case_id     INTEGER NOT NULL REFERENCES cases(id),
        outcome     TEXT NOT NULL,
        moderator   TEXT NOT NULL,
        categories  TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    """,
    # 3: the weekly digest: covering indexes for its week-range aggregations, and its runs.
    """
    CREATE INDEX messages_digest ON messages(sent_at, channel, platform, channel_name);
    CREATE INDEX verdicts_acted ON verdicts(action, message_row);
    CREATE INDEX strikes_at ON strikes(at);
    CREATE INDEX cases_resolved ON cases(resolved_at);
    CREATE INDEX case_events_at ON case_events(at, event);
    CREATE INDEX reviews_at ON reviews(at);
    CREATE TABLE digest_runs (
        week   TEXT PRIMARY KEY,
        ran_at TEXT,
        posted TEXT
    );
    """,
    # 4: review before punishment: an automatic escalation's strike waits for a moderator;
    # the ladder step a strike fired (once per climb); a case's outbox rows found by the case
    # number their payload carries.
    """
    ALTER TABLE strikes ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE strikes ADD COLUMN step REAL;
    CREATE INDEX outbox_case ON outbox(json_extract(payload, '$.case'));
    """,
    # 5: the durable inbox: a delivered message is written here before the platform is told it
    # arrived, and deleted once decided; what a stop left here is decided at the next start.
    """
    CREATE TABLE inbox (
        id          INTEGER PRIMARY KEY,
        platform    TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        revision    INTEGER NOT NULL,
        message     TEXT NOT NULL,
        received_at TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT,
        UNIQUE (platform, message_id, revision)
    );
    """,
    # 6: shadow mode: a verdict recorded for review only, nothing done to the member; verdicts
    # by the time they were made (the transparency report's quarter).
    """
    ALTER TABLE verdicts ADD COLUMN mode TEXT NOT NULL DEFAULT 'enforce';
    CREATE INDEX verdicts_decided ON verdicts(decided_at);
    """,
    # 7: the moderators' log: how far each platform's log channel has read the audit log.
    """
    CREATE TABLE modlog_cursors (
        platform TEXT PRIMARY KEY,
        last_id  INTEGER NOT NULL
    );
    """,
    # 8: floods, spam and raids: what each message counts towards (its channel, its text's
    # fingerprint, the protected person it names, a new account's post), at the message's
    # time, so the windows survive a restart; and the raids the moderators were alerted to.
    """
    CREATE TABLE spam_events (
        id        INTEGER PRIMARY KEY,
        kind      TEXT NOT NULL,
        key       TEXT NOT NULL,
        member_id TEXT NOT NULL,
        at        TEXT NOT NULL
    );
    CREATE INDEX spam_events_key ON spam_events(kind, key, at);
    CREATE INDEX spam_events_member ON spam_events(member_id, kind, at);
    CREATE TABLE raids (
        id           INTEGER PRIMARY KEY,
        platform     TEXT NOT NULL,
        channel      TEXT NOT NULL,
        channel_name TEXT,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        ended_by     TEXT,
        accounts     TEXT NOT NULL,
        response     TEXT NOT NULL
    );
    CREATE INDEX raids_open ON raids(platform, channel, ended_at);
    """,
    # 9: several processes on one store: an outbox row is claimed by one of them, for a lease,
    # before it is executed, so no action runs twice; a dead process's claims expire.
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
