-- Which sample pattern gave each object its sample_id, so a later sync with another pattern
-- can say which pattern had set the ids it clears.
ALTER TABLE objects ADD COLUMN sample_pattern TEXT;
