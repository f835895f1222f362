-- Readers sign in to the page with their own token, stored only as its
-- SHA-256. A revoked reader keeps their row (their labels and audit
-- entries name them) and can no longer sign in.
CREATE TABLE readers (
	name       TEXT PRIMARY KEY,
	role       TEXT NOT NULL CHECK (role IN ('reader', 'admin')),
	token_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	revoked_at TEXT NOT NULL DEFAULT ''
);

-- A signed-in browser: the session id (kept only as its SHA-256), its
-- reader and the CSRF token its forms carry.
CREATE TABLE sessions (
	id_hash    TEXT PRIMARY KEY,
	reader     TEXT NOT NULL REFERENCES readers (name),
	csrf       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL
);
CREATE INDEX sessions_reader ON sessions (reader);

-- Who did what, when, from where: every label and every model action
-- taken on the page or by a reader's token.
CREATE TABLE audit (
	id      INTEGER PRIMARY KEY,
	at      TEXT NOT NULL,
	reader  TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	detail  TEXT NOT NULL DEFAULT '',
	remote  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);

-- The page finds a film's file (its archive copy when there is one) by
-- instance, for each row of a page of studies.
CREATE INDEX IF NOT EXISTS files_instance ON files (instance_id);
