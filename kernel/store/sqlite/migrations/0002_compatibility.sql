-- latch:compatible-from 1
-- Records, for every migration applied from this one on, the oldest
-- schema version whose builds still work with the schema once it is
-- applied (the file's "-- latch:compatible-from N" header; without one,
-- the migration's own version). A build older than the database starts
-- only when every newer migration it finds recorded a version no newer
-- than its own newest (docs/operations.md, upgrades).
ALTER TABLE schema_migrations ADD COLUMN compatible_from BIGINT;
