-- latch:compatible-from 1
-- User ids are unique per tenant, no longer across tenants: the shadow
-- records of directory users (kernel/userstore/router) are keyed by the
-- tenant and the routable id ("LDAP:<entryUUID>"), so two tenants that
-- sign their users in through one directory each keep their own shadow of
-- an entry. Every query already names the tenant beside the id, and the
-- references to users are on (tenant_id, id), whose unique constraint
-- stays; it becomes the primary key.
ALTER TABLE users DROP CONSTRAINT users_pkey;
ALTER TABLE users ADD PRIMARY KEY (tenant_id, id);
