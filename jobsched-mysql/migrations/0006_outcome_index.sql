-- The dashboard counts attempts by the hour they ended in and their status: with the status in the
-- end-time index the count reads the index alone. The purge's `end_time < ? ORDER BY end_time` uses it
-- as it used idx_end_time. (A job's newest record is a seek of idx_job_id, which InnoDB ends with the
-- primary key.)
CREATE INDEX idx_end_time_status ON job_logs (end_time, status);
DROP INDEX idx_end_time ON job_logs;
