-- Several agents may share one database (PostgreSQL). A file taken from
-- the queue names the agent that claimed it and stays its claim until
-- lease_until, which that agent's heartbeat extends; another agent takes
-- the file up once the claim runs out. Files, reports and study reports
-- record the agent that settled or wrote them (its reports lie in its own
-- workspace).
ALTER TABLE queue ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN lease_until TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN agent TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN agent TEXT NOT NULL DEFAULT '';
-- The report as written, so that any agent can answer for it.
ALTER TABLE reports ADD COLUMN body TEXT NOT NULL DEFAULT '';
ALTER TABLE study_reports ADD COLUMN agent TEXT NOT NULL DEFAULT '';
-- A study due for a report is claimed by the agent writing it, so that two
-- agents never report one study at once.
ALTER TABLE studies ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN claim_until TEXT NOT NULL DEFAULT '';

-- The agents sharing the database, with their last heartbeat.
CREATE TABLE agents (
	name         TEXT PRIMARY KEY,
	host         TEXT NOT NULL,
	workspace    TEXT NOT NULL,
	version      TEXT NOT NULL DEFAULT '',
	started_at   TEXT NOT NULL,
	heartbeat_at TEXT NOT NULL,
	stopped_at   TEXT NOT NULL DEFAULT ''
);

-- The seed normals keep the order they were added in (SQLite's rowid gave
-- it before, which PostgreSQL lacks).
ALTER TABLE seed_normals ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE seed_normals SET seq = rowid; -- sqlite only
