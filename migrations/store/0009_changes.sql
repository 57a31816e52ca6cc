-- Incremental sync: what changed since a time is read by `updated_at` (every write but a lease
-- extension moves it) and, for removals, by the tombstone's `removed_at`.
CREATE INDEX tasks_by_change ON tasks (updated_at);
CREATE INDEX tombstones_by_removal ON tombstones (removed_at);
