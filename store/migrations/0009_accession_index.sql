-- Labels may name a study by its accession number (the key a RIS reports
-- by); each such row looks up every instance of the study.
CREATE INDEX instances_accession ON instances (accession_number);
