-- Whether a query's case was drawn at random (the random strategy, or the
-- hybrid's exploration share) rather than chosen for being informative:
-- such cases fill the holdout first, so that it is representative.
ALTER TABLE queries ADD COLUMN drawn_at_random INTEGER NOT NULL DEFAULT 0;
UPDATE queries SET drawn_at_random = 1
	WHERE strategy = 'random' OR reason LIKE 'drawn at random%';
