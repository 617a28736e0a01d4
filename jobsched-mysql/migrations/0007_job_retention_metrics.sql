-- Per job: how long and how many of its ended runs are kept (0: the system's retention; 0: no limit by
-- count), and whether it has its own metrics series.
ALTER TABLE jobs
    ADD COLUMN retention_days INT NOT NULL DEFAULT 0,
    ADD COLUMN retention_runs INT NOT NULL DEFAULT 0,
    ADD COLUMN metrics TINYINT(1) NOT NULL DEFAULT 0;
