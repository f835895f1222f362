-- Each labelled case's role in the learning loop, decided once, the first
-- time a retraining cycle sees its label, and never changed: a 'holdout'
-- case evaluates the models and never trains; a 'train' case may train and
-- never joins the holdout. The holdout so grows with the labels instead of
-- staying the few cases labelled when it was first chosen. No row is ever
-- deleted or updated.
CREATE TABLE label_roles (
	instance_id TEXT PRIMARY KEY REFERENCES instances (instance_id),
	role        TEXT NOT NULL CHECK (role IN ('holdout', 'train')),
	decided_at  TEXT NOT NULL
);

-- The holdout chosen before keeps its cases; every other case labelled
-- before now may already have trained, so it stays on the training side.
INSERT INTO label_roles (instance_id, role, decided_at)
	SELECT instance_id, 'holdout', chosen_at FROM holdout;
INSERT INTO label_roles (instance_id, role, decided_at)
	SELECT DISTINCT instance_id, 'train', strftime('%Y-%m-%dT%H:%M:%SZ', 'now') FROM labels
	WHERE instance_id NOT IN (SELECT instance_id FROM holdout);
DROP TABLE holdout;
