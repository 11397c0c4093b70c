-- latch:compatible-from 1
-- Account links: a local user's identities at federated identity providers
-- (authn.oidc_federation, authn.saml_federation instances). An external
-- identity links to one local user per tenant.
CREATE TABLE user_links (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    idp        TEXT NOT NULL,
    subject    TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, idp, subject),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX user_links_user ON user_links (tenant_id, user_id);
