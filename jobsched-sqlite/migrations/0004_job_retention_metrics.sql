-- Per job: how long and how many of its ended runs are kept (0: the system's retention; 0: no limit by
-- count), and whether it has its own metrics series.
ALTER TABLE jobs ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retention_runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN metrics INTEGER NOT NULL DEFAULT 0;
