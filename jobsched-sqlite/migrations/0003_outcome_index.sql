-- The Web UI's reads over a long history:
-- * the dashboard counts attempts by the hour they ended in and their status: with the status in the
--   end-time index the count reads the index alone (the purge's `end_time < ? ORDER BY end_time` uses it
--   as it used idx_end_time);
-- * a job list shows each job's last run and filters by it: (job_id, id, status) finds a job's newest
--   record and its status in the index alone. It replaces idx_job_id, whose every use it serves.
CREATE INDEX idx_end_time_status ON job_logs (end_time, status);
DROP INDEX idx_end_time;
CREATE INDEX idx_job_latest ON job_logs (job_id, id, status);
DROP INDEX idx_job_id;
