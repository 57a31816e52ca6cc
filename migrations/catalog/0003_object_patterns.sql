-- Where each object's sample_id came from: the pattern that read it and the prefix whose
-- listing it was read under. A later sync with another pattern can then say which pattern set
-- the ids it clears, and a sync of a wider prefix leaves alone the ids a narrower one set.
ALTER TABLE objects ADD COLUMN sample_pattern TEXT;
ALTER TABLE objects ADD COLUMN sample_prefix TEXT;
