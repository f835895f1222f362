-- A keyed hash standing for each instance's patient (never the Patient ID
-- itself), so that the learning loop keeps a patient's films on one side
-- of its holdout; '' when unknown (no Patient ID, PNG, or read before this
-- column existed).
ALTER TABLE instances ADD COLUMN patient_key TEXT NOT NULL DEFAULT '';

-- Secrets the workspace keeps, such as the key of the patient hash.
CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

-- The seed normals' patients, so that the films of a patient every model
-- trained on never judge a model.
ALTER TABLE seed_normals ADD COLUMN patient_key TEXT NOT NULL DEFAULT '';
