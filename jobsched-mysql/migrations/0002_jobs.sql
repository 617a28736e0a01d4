-- jobs: what the model adds to the design document's columns.
--  * times keep milliseconds;
--  * `type` keeps the design's TINYINT (1 shell, 2 http, 0 other) and `type_name` the handler's name;
--  * `version` for optimistic updates, `revision` for the change feed (every write takes the next revision
--    from jobsched_counters), `deleted` marks a tombstone the change feed still reports.

ALTER TABLE jobs
    MODIFY create_time DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    MODIFY update_time DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    MODIFY priority INT NOT NULL DEFAULT 0,
    MODIFY timeout INT NOT NULL DEFAULT 0,
    MODIFY retry_count INT NOT NULL DEFAULT 0,
    MODIFY retry_interval INT NOT NULL DEFAULT 0,
    ADD COLUMN type_name VARCHAR(32) NOT NULL DEFAULT 'shell' AFTER type,
    ADD COLUMN schedule_type VARCHAR(16) NOT NULL DEFAULT 'cron',
    ADD COLUMN `interval` INT NULL,
    ADD COLUMN start_time DATETIME(3) NULL,
    ADD COLUMN time_zone VARCHAR(64) NOT NULL DEFAULT 'UTC',
    ADD COLUMN retry_backoff VARCHAR(24) NOT NULL DEFAULT 'fixed',
    ADD COLUMN retry_max_interval INT NOT NULL DEFAULT 0,
    ADD COLUMN enabled TINYINT(1) NOT NULL DEFAULT 1,
    ADD COLUMN owner VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN description TEXT NOT NULL,
    ADD COLUMN params MEDIUMTEXT NOT NULL,
    ADD COLUMN executor_group VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN executor_labels TEXT NOT NULL,
    ADD COLUMN routing_strategy VARCHAR(24) NOT NULL DEFAULT 'round_robin',
    ADD COLUMN misfire_policy VARCHAR(16) NOT NULL DEFAULT 'fire_once',
    ADD COLUMN misfire_max_fires INT NOT NULL DEFAULT 100,
    ADD COLUMN overlap_policy VARCHAR(16) NOT NULL DEFAULT 'allow',
    ADD COLUMN version BIGINT NOT NULL DEFAULT 1,
    ADD COLUMN revision BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN deleted TINYINT(1) NOT NULL DEFAULT 0;

-- Rows of the design's schema: a job without a cron expression runs on request only.
UPDATE jobs SET
    type_name = CASE type WHEN 2 THEN 'http' ELSE 'shell' END,
    schedule_type = IF(cron_expression IS NULL OR cron_expression = '', 'manual', 'cron'),
    params = '{}',
    executor_labels = '{}';

CREATE INDEX idx_jobs_revision ON jobs (revision);
CREATE INDEX idx_jobs_owner ON jobs (owner, job_id);

CREATE TABLE IF NOT EXISTS jobsched_counters (
    name VARCHAR(64) PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO jobsched_counters (name, value) VALUES ('job_revision', 0)
    ON DUPLICATE KEY UPDATE value = value;

-- Existing jobs enter the change feed.
UPDATE jobs SET revision = 1 WHERE revision = 0;
UPDATE jobsched_counters SET value = GREATEST(value, (SELECT COUNT(*) FROM jobs)) WHERE name = 'job_revision';
