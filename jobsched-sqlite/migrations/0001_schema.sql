-- jobsched's schema on SQLite: the same logical tables as the MySQL store (jobs, job_logs, executors with
-- the design document's columns plus what the model needs; counters, settings, fences). STRICT tables
-- check column types. Times are UTC text with millisecond precision ('YYYY-MM-DD HH:MM:SS.sss').

CREATE TABLE jobs (
    job_id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    command TEXT NOT NULL,
    type INTEGER NOT NULL,
    type_name TEXT NOT NULL DEFAULT 'shell',
    priority INTEGER NOT NULL DEFAULT 0,
    schedule_type TEXT NOT NULL DEFAULT 'cron',
    cron_expression TEXT,
    `interval` INTEGER,
    start_time TEXT,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    timeout INTEGER NOT NULL DEFAULT 0,
    retry_count INTEGER NOT NULL DEFAULT 0,
    retry_interval INTEGER NOT NULL DEFAULT 0,
    retry_backoff TEXT NOT NULL DEFAULT 'fixed',
    retry_max_interval INTEGER NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1,
    owner TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}',
    executor_group TEXT NOT NULL DEFAULT '',
    executor_labels TEXT NOT NULL DEFAULT '{}',
    routing_strategy TEXT NOT NULL DEFAULT 'round_robin',
    misfire_policy TEXT NOT NULL DEFAULT 'fire_once',
    misfire_max_fires INTEGER NOT NULL DEFAULT 100,
    overlap_policy TEXT NOT NULL DEFAULT 'allow',
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    revision INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX idx_jobs_revision ON jobs (revision);
CREATE INDEX idx_jobs_owner ON jobs (owner, job_id);

-- One row per attempt of a task. `fire_time` is set only on the first attempt of a scheduled fire, and
-- unique per job: a fire is recorded once (NULLs do not collide). AUTOINCREMENT: ids never repeat, even
-- after the newest rows are purged.
CREATE TABLE job_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    job_id TEXT NOT NULL,
    executor_id TEXT NOT NULL DEFAULT '',
    executor_epoch INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL,
    trigger_kind TEXT NOT NULL DEFAULT 'schedule',
    scheduled_time TEXT NOT NULL,
    due_time TEXT NOT NULL,
    create_time TEXT NOT NULL,
    start_time TEXT,
    end_time TEXT,
    output TEXT,
    error TEXT,
    exit_code INTEGER,
    command TEXT NOT NULL,
    type_name TEXT NOT NULL DEFAULT 'shell',
    params TEXT NOT NULL DEFAULT '{}',
    timeout INTEGER NOT NULL DEFAULT 0,
    retry_count INTEGER NOT NULL DEFAULT 0,
    retry_interval INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    fire_time TEXT
) STRICT;

CREATE UNIQUE INDEX uk_task_attempt ON job_logs (task_id, attempt);
CREATE UNIQUE INDEX uk_fire ON job_logs (job_id, fire_time);
-- SQLite, like InnoDB, ends every index with the row id: (job_id, id) and (status, id).
CREATE INDEX idx_job_id ON job_logs (job_id);
CREATE INDEX idx_start_time ON job_logs (start_time);
CREATE INDEX idx_status_log ON job_logs (status);
CREATE INDEX idx_end_time ON job_logs (end_time);

CREATE TABLE executors (
    executor_id TEXT NOT NULL PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    status INTEGER NOT NULL,
    last_heartbeat_time TEXT NOT NULL,
    register_time TEXT NOT NULL,
    capacity INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0,
    group_name TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    handlers TEXT NOT NULL DEFAULT '["shell"]',
    enabled INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE INDEX idx_status ON executors (status);

CREATE TABLE jobsched_counters (
    name TEXT NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO jobsched_counters (name, value) VALUES ('job_revision', 0);

CREATE TABLE jobsched_settings (
    name TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL
) STRICT;

CREATE TABLE jobsched_fences (
    scope TEXT NOT NULL PRIMARY KEY,
    token INTEGER NOT NULL
) STRICT;
