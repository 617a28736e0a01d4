-- executors: capacity, running count, group, labels, handler types, and the operator's enabled flag.
ALTER TABLE executors
    MODIFY last_heartbeat_time DATETIME(3) NOT NULL,
    MODIFY register_time DATETIME(3) NOT NULL,
    ADD COLUMN capacity INT NOT NULL DEFAULT 0,
    ADD COLUMN running INT NOT NULL DEFAULT 0,
    ADD COLUMN group_name VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN labels TEXT NOT NULL,
    ADD COLUMN handlers TEXT NOT NULL,
    ADD COLUMN enabled TINYINT(1) NOT NULL DEFAULT 1;
UPDATE executors SET labels = '{}', handlers = '["shell"]';

-- Settings (the system configuration, the fire watermark), versioned for compare-and-set.
CREATE TABLE IF NOT EXISTS jobsched_settings (
    name VARCHAR(128) PRIMARY KEY,
    value MEDIUMTEXT NOT NULL,
    version BIGINT NOT NULL
);

-- The newest fencing token seen per scope: writes with an older one are refused.
CREATE TABLE IF NOT EXISTS jobsched_fences (
    scope VARCHAR(128) PRIMARY KEY,
    token BIGINT NOT NULL
);
