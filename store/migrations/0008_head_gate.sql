-- The admission head gate's value: the supervised head's logit for the
-- case, NULL when the gate was not applied (no labels yet, no trusted head,
-- or the gate switched off).
ALTER TABLE gate_checks ADD COLUMN head_logit REAL;
ALTER TABLE admissions ADD COLUMN head_logit REAL;
