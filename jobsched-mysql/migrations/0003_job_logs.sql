-- job_logs: one row per attempt of a task.
--  * `task_id` + `attempt` identify the attempt (unique);
--  * `fire_time` is set only on the first attempt of a scheduled fire: unique per job, it makes a fire
--    recordable exactly once (NULLs do not collide);
--  * a snapshot of the task as fired (command, type, params, timeout, retries, priority);
--  * `start_time` may be NULL: a queued attempt has not started; `executor_id` is '' until dispatched;
--  * output and error up to 16 MiB (MEDIUMTEXT).

ALTER TABLE job_logs
    MODIFY executor_id VARCHAR(64) NOT NULL DEFAULT '',
    MODIFY start_time DATETIME(3) NULL,
    MODIFY end_time DATETIME(3) NULL,
    MODIFY output MEDIUMTEXT,
    MODIFY error MEDIUMTEXT,
    ADD COLUMN task_id VARCHAR(64) NULL AFTER id,
    ADD COLUMN attempt INT NOT NULL DEFAULT 1 AFTER task_id,
    ADD COLUMN executor_epoch BIGINT NOT NULL DEFAULT 0 AFTER executor_id,
    ADD COLUMN trigger_kind VARCHAR(16) NOT NULL DEFAULT 'schedule' AFTER status,
    ADD COLUMN scheduled_time DATETIME(3) NULL,
    ADD COLUMN due_time DATETIME(3) NULL,
    ADD COLUMN create_time DATETIME(3) NULL,
    ADD COLUMN fire_time DATETIME(3) NULL,
    ADD COLUMN exit_code INT NULL,
    ADD COLUMN command TEXT NOT NULL,
    ADD COLUMN type_name VARCHAR(32) NOT NULL DEFAULT 'shell',
    ADD COLUMN params MEDIUMTEXT NOT NULL,
    ADD COLUMN timeout INT NOT NULL DEFAULT 0,
    ADD COLUMN retry_count INT NOT NULL DEFAULT 0,
    ADD COLUMN retry_interval INT NOT NULL DEFAULT 0,
    ADD COLUMN priority INT NOT NULL DEFAULT 0;

-- Rows of the design's schema get an id of their own and their start as fire time.
UPDATE job_logs SET
    task_id = CONCAT('task-legacy-', id),
    scheduled_time = start_time,
    due_time = start_time,
    create_time = start_time,
    params = '{}'
WHERE task_id IS NULL;

ALTER TABLE job_logs
    MODIFY task_id VARCHAR(64) NOT NULL,
    MODIFY scheduled_time DATETIME(3) NOT NULL,
    MODIFY due_time DATETIME(3) NOT NULL,
    MODIFY create_time DATETIME(3) NOT NULL;

-- The queries of the scheduler and the API. InnoDB appends the primary key to every secondary index, so
-- the seed's idx_job_id serves "a job's history, newest first" (job_id, id) and idx_status serves "active
-- attempts by id" (status, id); every further index costs each insert and result, so there are no more.
CREATE UNIQUE INDEX uk_task_attempt ON job_logs (task_id, attempt);
CREATE UNIQUE INDEX uk_fire ON job_logs (job_id, fire_time);
CREATE INDEX idx_status ON job_logs (status);
CREATE INDEX idx_end_time ON job_logs (end_time);
