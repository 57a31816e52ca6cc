-- A dropped sample's tasks that had not started are withdrawn from the store: their
-- tombstones say so, and adding them again (the sample back in the study) is allowed.
ALTER TABLE tombstones ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;
