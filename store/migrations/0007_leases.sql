-- Leases on work that must not run twice at once, such as a learning
-- cycle: a holder takes a lease for a while and renews it while it works;
-- a lease left by a process that died runs out by itself.
CREATE TABLE leases (
	name        TEXT PRIMARY KEY,
	holder      TEXT NOT NULL,
	acquired_at TEXT NOT NULL,
	expires_at  TEXT NOT NULL
);
