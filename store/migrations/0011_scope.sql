-- Files that are valid but not scored (another modality, body part or view,
-- an object without an image, Sentinel's own outputs) are recorded as
-- out_of_scope with their reason. SQLite cannot change a CHECK constraint in
-- place, so the files table is rebuilt with the new status allowed.
CREATE TABLE files_new (
	id              INTEGER PRIMARY KEY,
	path            TEXT NOT NULL,
	size            INTEGER NOT NULL,
	mtime_ns        INTEGER NOT NULL,
	sha256          TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL CHECK (status IN ('done', 'duplicate', 'conflict', 'failed', 'out_of_scope')),
	instance_id     TEXT REFERENCES instances (instance_id),
	error           TEXT NOT NULL DEFAULT '',
	quarantine_path TEXT NOT NULL DEFAULT '',
	seen_at         TEXT NOT NULL,
	archive_path    TEXT NOT NULL DEFAULT '',
	UNIQUE (path, size, mtime_ns)
);
INSERT INTO files_new (id, path, size, mtime_ns, sha256, status, instance_id, error, quarantine_path, seen_at, archive_path)
	SELECT id, path, size, mtime_ns, sha256, status, instance_id, error, quarantine_path, seen_at, archive_path FROM files;
DROP TABLE files;
ALTER TABLE files_new RENAME TO files;
CREATE INDEX files_status ON files (status);

-- Where a film sits in the PACS (accession number, study date and time,
-- view, laterality, body part, series and instance numbers), as JSON, so
-- that a revised report carries it too. Never a name, an ID or a birth date.
ALTER TABLE instances ADD COLUMN placement_json TEXT NOT NULL DEFAULT '{}';
