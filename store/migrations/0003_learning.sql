-- The learning loop: seed normals, the frozen holdout, the oracle-free
-- admission gates and admissions, and the retraining cycles with their
-- promotion decisions.

-- The verified normals a workspace started from, by instance id (for PNG
-- research images the content hash), with the file they are read from.
-- They are not necessarily ingested instances, hence no foreign key.
CREATE TABLE seed_normals (
	instance_id TEXT PRIMARY KEY,
	path        TEXT NOT NULL,
	added_at    TEXT NOT NULL
);

-- The labelled holdout: chosen once, then frozen. No row is ever deleted
-- or added after the first choice; the retraining cycle never trains on it.
CREATE TABLE holdout (
	instance_id TEXT PRIMARY KEY REFERENCES instances (instance_id),
	chosen_at   TEXT NOT NULL
);

-- Every gate measurement of every admission cycle, kept for audit.
CREATE TABLE gate_checks (
	cycle         INTEGER NOT NULL,
	instance_id   TEXT NOT NULL REFERENCES instances (instance_id),
	model_version TEXT NOT NULL,
	distance_z    REAL NOT NULL,
	uncertainty_z REAL,
	pass          INTEGER NOT NULL,
	checked_at    TEXT NOT NULL,
	PRIMARY KEY (cycle, instance_id)
);

-- How many cycles in a row a case has passed both gates.
CREATE TABLE gate_streaks (
	instance_id TEXT PRIMARY KEY REFERENCES instances (instance_id),
	streak      INTEGER NOT NULL,
	last_cycle  INTEGER NOT NULL
);

-- Cases admitted to the normal set without a label, with the gate values
-- that admitted them; undone (never deleted) when a reader labels the case
-- abnormal.
CREATE TABLE admissions (
	instance_id   TEXT PRIMARY KEY REFERENCES instances (instance_id),
	cycle         INTEGER NOT NULL,
	model_version TEXT NOT NULL,
	distance_z    REAL NOT NULL,
	uncertainty_z REAL,
	state         TEXT NOT NULL CHECK (state IN ('admitted', 'undone')),
	admitted_at   TEXT NOT NULL,
	undone_at     TEXT NOT NULL DEFAULT '',
	undo_reason   TEXT NOT NULL DEFAULT ''
);

-- One row per admission or retraining cycle.
CREATE TABLE learning_cycles (
	id                INTEGER PRIMARY KEY,
	kind              TEXT NOT NULL CHECK (kind IN ('admission', 'retrain')),
	started_at        TEXT NOT NULL,
	finished_at       TEXT NOT NULL DEFAULT '',
	labels_at_start   INTEGER NOT NULL DEFAULT 0,
	model_version     TEXT NOT NULL DEFAULT '',
	candidate_version TEXT NOT NULL DEFAULT '',
	promoted          INTEGER NOT NULL DEFAULT 0,
	status            TEXT NOT NULL DEFAULT 'running',
	reason            TEXT NOT NULL DEFAULT '',
	metrics_json      TEXT NOT NULL DEFAULT '{}'
);

-- Why a model version is (or is not) active: promoted, rejected, rolled back.
ALTER TABLE models ADD COLUMN note TEXT NOT NULL DEFAULT '';
