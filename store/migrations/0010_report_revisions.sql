-- An instance's report may be issued again: when a newer model in use
-- decides otherwise, its report gets the next revision. Each reports row
-- records the revision, the model that wrote it and the decision it gave.
ALTER TABLE reports ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE reports ADD COLUMN model_version TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN decision TEXT NOT NULL DEFAULT '';
-- Reports written before: by the instance's first score.
UPDATE reports SET
	model_version = COALESCE((SELECT s.model_version FROM scores s WHERE s.instance_id = reports.instance_id ORDER BY s.id LIMIT 1), ''),
	decision = COALESCE((SELECT s.decision FROM scores s WHERE s.instance_id = reports.instance_id ORDER BY s.id LIMIT 1), '');
-- A study with a revised instance report is reported again: stale counts
-- the instance revisions its last study report has not taken in.
ALTER TABLE studies ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;
