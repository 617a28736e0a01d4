-- Accounts and the audit log (SPEC R-8): users, API tokens (only hashes of their secrets), ended login
-- sessions (until their tokens expire), and the audit log, written in the same transaction as the change
-- it records.

CREATE TABLE IF NOT EXISTS jobsched_users (
    user_id VARCHAR(64) PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    role VARCHAR(16) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    disabled TINYINT(1) NOT NULL DEFAULT 0,
    sessions_since DATETIME(3) NOT NULL,
    create_time DATETIME(3) NOT NULL,
    update_time DATETIME(3) NOT NULL,
    version BIGINT NOT NULL,
    UNIQUE KEY uk_user_name (name)
);

CREATE TABLE IF NOT EXISTS jobsched_tokens (
    token_id VARCHAR(64) PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    role VARCHAR(16) NOT NULL,
    secret_hash VARCHAR(255) NOT NULL,
    create_time DATETIME(3) NOT NULL,
    expire_time DATETIME(3) NULL,
    revoke_time DATETIME(3) NULL,
    KEY idx_tokens_user (user_id, create_time)
);

CREATE TABLE IF NOT EXISTS jobsched_ended_sessions (
    session_id VARCHAR(64) PRIMARY KEY,
    expire_time DATETIME(3) NOT NULL,
    KEY idx_sessions_expire (expire_time)
);

CREATE TABLE IF NOT EXISTS jobsched_audit (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    event_time DATETIME(3) NOT NULL,
    user_name VARCHAR(64) NOT NULL,
    role VARCHAR(16) NULL,
    client VARCHAR(64) NOT NULL,
    action VARCHAR(64) NOT NULL,
    target VARCHAR(255) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    message TEXT NOT NULL,
    detail MEDIUMTEXT NOT NULL,
    KEY idx_audit_time (event_time),
    KEY idx_audit_user (user_name, id),
    KEY idx_audit_target (target, id)
);
