-- What the catalog knows about itself: `store` is the identity of the task store it is filled
-- from (a file's absolute path, or a DynamoDB table and region), so a sync from another store
-- is refused instead of merging two cohorts.
CREATE TABLE catalog_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
