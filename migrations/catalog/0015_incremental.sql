-- Incremental sync reads the tasks the catalog holds as running again (their leases move
-- without a change the store's change feed shows): a small partial index finds them.
CREATE INDEX tasks_running ON tasks (collection) WHERE state = 'running' AND removed_at IS NULL;
