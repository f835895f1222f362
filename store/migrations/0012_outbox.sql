-- The outbox: each object Sentinel sends (a Structured Report, a Secondary
-- Capture, a report for a webhook), once per destination. The object's
-- bytes are a file (path) written before its rows; a row is pending until
-- the destination took it (sent) or it failed max_attempts times (failed,
-- set aside with its reason in last_error).
CREATE TABLE outbox (
	id INTEGER PRIMARY KEY,
	destination TEXT NOT NULL,
	-- object identifies what is sent: the SOP Instance UID of a DICOM
	-- object, "<instance>#<revision>" of a report.
	object TEXT NOT NULL,
	output TEXT NOT NULL,
	instance_id TEXT NOT NULL,
	revision INTEGER NOT NULL,
	sop_class_uid TEXT NOT NULL DEFAULT '',
	study_instance_uid TEXT NOT NULL DEFAULT '',
	path TEXT NOT NULL,
	state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
	attempts INTEGER NOT NULL DEFAULT 0,
	-- next_try is in Unix nanoseconds, so that it orders as a number.
	next_try INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	UNIQUE (destination, object)
);
CREATE INDEX outbox_due ON outbox (state, next_try);
CREATE INDEX outbox_path ON outbox (path);
