-- Accounts and the audit log: the same logical tables as the MySQL store's migration 0005.

CREATE TABLE jobsched_users (
    user_id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    sessions_since TEXT NOT NULL,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    version INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX uk_user_name ON jobsched_users (name);

CREATE TABLE jobsched_tokens (
    token_id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    create_time TEXT NOT NULL,
    expire_time TEXT,
    revoke_time TEXT
) STRICT;
CREATE INDEX idx_tokens_user ON jobsched_tokens (user_id, create_time);

CREATE TABLE jobsched_ended_sessions (
    session_id TEXT NOT NULL PRIMARY KEY,
    expire_time TEXT NOT NULL
) STRICT;
CREATE INDEX idx_sessions_expire ON jobsched_ended_sessions (expire_time);

CREATE TABLE jobsched_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_time TEXT NOT NULL,
    user_name TEXT NOT NULL,
    role TEXT,
    client TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;
CREATE INDEX idx_audit_time ON jobsched_audit (event_time);
CREATE INDEX idx_audit_user ON jobsched_audit (user_name);
CREATE INDEX idx_audit_target ON jobsched_audit (target);
