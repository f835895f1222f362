-- Instances Sentinel has identified, one row per instance id (the SOP
-- Instance UID, or the content hash of a PNG/JPEG). Patient names, IDs and
-- birth dates are deliberately absent.
CREATE TABLE instances (
	instance_id         TEXT PRIMARY KEY,
	sop_instance_uid    TEXT NOT NULL,
	study_instance_uid  TEXT NOT NULL DEFAULT '',
	series_instance_uid TEXT NOT NULL DEFAULT '',
	sop_class_uid       TEXT NOT NULL DEFAULT '',
	modality            TEXT NOT NULL DEFAULT '',
	accession_number    TEXT NOT NULL DEFAULT '',
	transfer_syntax_uid TEXT NOT NULL DEFAULT '',
	format              TEXT NOT NULL,
	rows                INTEGER NOT NULL DEFAULT 0,
	columns             INTEGER NOT NULL DEFAULT 0,
	frames              INTEGER NOT NULL DEFAULT 0,
	photometric         TEXT NOT NULL DEFAULT '',
	path                TEXT NOT NULL,
	sha256              TEXT NOT NULL,
	status              TEXT NOT NULL,
	error               TEXT NOT NULL DEFAULT '',
	created_at          TEXT NOT NULL,
	updated_at          TEXT NOT NULL
);
CREATE INDEX instances_study ON instances (study_instance_uid);

-- Every file the agent has taken, whatever became of it. A file is known
-- by its path, size and modification time, so a restart does not hash the
-- whole inbox again.
CREATE TABLE files (
	id              INTEGER PRIMARY KEY,
	path            TEXT NOT NULL,
	size            INTEGER NOT NULL,
	mtime_ns        INTEGER NOT NULL,
	sha256          TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL CHECK (status IN ('done', 'duplicate', 'conflict', 'failed')),
	instance_id     TEXT REFERENCES instances (instance_id),
	error           TEXT NOT NULL DEFAULT '',
	quarantine_path TEXT NOT NULL DEFAULT '',
	seen_at         TEXT NOT NULL,
	UNIQUE (path, size, mtime_ns)
);
CREATE INDEX files_status ON files (status);

CREATE TABLE models (
	version     TEXT PRIMARY KEY,
	kind        TEXT NOT NULL,
	path        TEXT NOT NULL,
	info_json   TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	active      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE training_runs (
	id            INTEGER PRIMARY KEY,
	model_version TEXT NOT NULL DEFAULT '',
	started_at    TEXT NOT NULL,
	finished_at   TEXT NOT NULL DEFAULT '',
	images        INTEGER NOT NULL,
	status        TEXT NOT NULL,
	metrics_json  TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE scores (
	id            INTEGER PRIMARY KEY,
	instance_id   TEXT NOT NULL REFERENCES instances (instance_id),
	model_version TEXT NOT NULL,
	value         REAL NOT NULL,
	threshold     REAL NOT NULL,
	decision      TEXT NOT NULL,
	uncertainty   REAL,
	components    TEXT NOT NULL DEFAULT '{}',
	created_at    TEXT NOT NULL,
	UNIQUE (instance_id, model_version)
);

CREATE TABLE reports (
	id           INTEGER PRIMARY KEY,
	instance_id  TEXT NOT NULL REFERENCES instances (instance_id),
	path         TEXT NOT NULL,
	heatmap_path TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL
);
CREATE INDEX reports_instance ON reports (instance_id);

CREATE TABLE queries (
	id          INTEGER PRIMARY KEY,
	instance_id TEXT NOT NULL UNIQUE REFERENCES instances (instance_id),
	strategy    TEXT NOT NULL,
	reason      TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('open', 'answered', 'expired')),
	created_at  TEXT NOT NULL,
	answered_at TEXT NOT NULL DEFAULT ''
);

CREATE TABLE labels (
	id          INTEGER PRIMARY KEY,
	instance_id TEXT NOT NULL REFERENCES instances (instance_id),
	label       TEXT NOT NULL CHECK (label IN ('normal', 'abnormal')),
	finding     TEXT NOT NULL DEFAULT '',
	reader      TEXT NOT NULL DEFAULT '',
	time        TEXT NOT NULL,
	source      TEXT NOT NULL DEFAULT '',
	UNIQUE (instance_id, reader, time)
);
