-- The durable work queue: files found stable and not yet handled. A row
-- leaves the queue in the same transaction that records the file's outcome,
-- so a crash at any moment leaves each file either queued or recorded.
CREATE TABLE queue (
	path            TEXT PRIMARY KEY,
	size            INTEGER NOT NULL,
	mtime_ns        INTEGER NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('pending', 'processing')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TEXT NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	found_at        TEXT NOT NULL,
	enqueued_at     TEXT NOT NULL
);
CREATE INDEX queue_ready ON queue (state, next_attempt_at);

ALTER TABLE files ADD COLUMN archive_path TEXT NOT NULL DEFAULT '';

-- Studies: when their last instance arrived, and each revision of their
-- study report. A study is reported when it has been quiet for a while, and
-- again, as a new revision, when late instances arrive.
CREATE TABLE studies (
	study_instance_uid TEXT PRIMARY KEY,
	instances          INTEGER NOT NULL DEFAULT 0,
	last_instance_at   TEXT NOT NULL,
	reported_instances INTEGER NOT NULL DEFAULT 0,
	revision           INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE study_reports (
	study_instance_uid TEXT NOT NULL REFERENCES studies (study_instance_uid),
	revision           INTEGER NOT NULL,
	instances          INTEGER NOT NULL,
	path               TEXT NOT NULL,
	created_at         TEXT NOT NULL,
	PRIMARY KEY (study_instance_uid, revision)
);
