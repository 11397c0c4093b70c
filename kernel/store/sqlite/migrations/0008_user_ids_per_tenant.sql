-- latch:compatible-from 1
-- User ids are unique per tenant, no longer across tenants: the shadow
-- records of directory users (kernel/userstore/router) are keyed by the
-- tenant and the routable id ("LDAP:<entryUUID>"), so two tenants that
-- sign their users in through one directory each keep their own shadow of
-- an entry. Every query already names the tenant beside the id, and the
-- references to users are on (tenant_id, id), which stays unique.
--
-- SQLite cannot drop a primary key in place, so the table is rebuilt with
-- the same columns and rows. Migrate runs with foreign-key enforcement off
-- (dropping the old table must not cascade to sessions, role assignments
-- and the other tables that refer to users) and checks every reference
-- before it commits.
CREATE TABLE users_0008 (
    id             TEXT    NOT NULL,
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username       TEXT    NOT NULL,
    username_fold  TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL DEFAULT '',
    email          TEXT    NOT NULL DEFAULT '',
    email_fold     TEXT    NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    phone_number   TEXT    NOT NULL DEFAULT '',
    display_name   TEXT    NOT NULL DEFAULT '',
    given_name     TEXT    NOT NULL DEFAULT '',
    family_name    TEXT    NOT NULL DEFAULT '',
    enabled        INTEGER NOT NULL DEFAULT 0,
    locked_until   TEXT,
    attributes     TEXT,
    version        INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username_fold)
) STRICT;
INSERT INTO users_0008 (id, tenant_id, username, username_fold, password_hash, email, email_fold,
    email_verified, phone_number, display_name, given_name, family_name, enabled, locked_until,
    attributes, version, created_at, updated_at)
SELECT id, tenant_id, username, username_fold, password_hash, email, email_fold,
    email_verified, phone_number, display_name, given_name, family_name, enabled, locked_until,
    attributes, version, created_at, updated_at
FROM users;
DROP TABLE users;
ALTER TABLE users_0008 RENAME TO users;
CREATE INDEX users_email ON users (tenant_id, email_fold);
