package sqlstore

import (
	"context"

	"github.com/latchid/latch/kernel/store"
)

const clientCols = `id, tenant_id, client_id, name, secret_hash, public, first_party, redirect_uris, grant_types,
	response_types, scopes, audience, token_endpoint_auth_method, settings, enabled, created_at, updated_at`

func scanClient(r Row) (store.Client, error) {
	var c store.Client
	err := r.Scan(&c.ID, &c.TenantID, &c.ClientID, &c.Name, &c.SecretHash, &c.Public, &c.FirstParty,
		jsonDst(&c.RedirectURIs), jsonDst(&c.GrantTypes), jsonDst(&c.ResponseTypes), jsonDst(&c.Scopes),
		jsonDst(&c.Audience), &c.TokenEndpointAuthMethod, jsonDst(&c.Settings), &c.Enabled,
		timeDst(&c.CreatedAt), timeDst(&c.UpdatedAt))
	return c, err
}

// clientArgs encodes the JSON columns of c in column order.
func clientArgs(c store.Client) ([]any, error) {
	var out []any
	for _, l := range [][]string{c.RedirectURIs, c.GrantTypes, c.ResponseTypes, c.Scopes, c.Audience} {
		v, err := jsonArg(l)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	v, err := jsonArg(c.Settings)
	if err != nil {
		return nil, err
	}
	return append(out, v), nil
}

// CreateClient stores c with a new id (kept when set).
func (s *Store) CreateClient(ctx context.Context, c store.Client) (store.Client, error) {
	if err := checkClient(c); err != nil {
		return store.Client{}, s.fail("creating client", err)
	}
	j, err := clientArgs(c)
	if err != nil {
		return store.Client{}, s.fail("creating client", err)
	}
	c.ID = orNewID(c.ID)
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	err = s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO clients (`+clientCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			c.ID, c.TenantID, c.ClientID, c.Name, c.SecretHash, c.Public, c.FirstParty, j[0], j[1],
			j[2], j[3], j[4], c.TokenEndpointAuthMethod, j[5], c.Enabled, c.CreatedAt, c.UpdatedAt)
		return err
	})
	if err != nil {
		return store.Client{}, s.fail("creating client", err)
	}
	return c, nil
}

// GetClient returns the client with the id.
func (s *Store) GetClient(ctx context.Context, tenantID, id string) (store.Client, error) {
	c, err := scanClient(s.read().QueryRow(ctx, `SELECT `+clientCols+` FROM clients WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return store.Client{}, s.fail("getting client", err)
	}
	return c, nil
}

// GetClientByClientID returns the client with the public client id.
func (s *Store) GetClientByClientID(ctx context.Context, tenantID, clientID string) (store.Client, error) {
	c, err := scanClient(s.read().QueryRow(ctx, `SELECT `+clientCols+` FROM clients WHERE tenant_id = $1 AND client_id = $2`,
		tenantID, clientID))
	if err != nil {
		return store.Client{}, s.fail("getting client by client id", err)
	}
	return c, nil
}

// ListClients lists the tenant's clients ordered by id.
func (s *Store) ListClients(ctx context.Context, tenantID string, p store.Page) ([]store.Client, string, error) {
	p = p.Normalize()
	cs, err := collect(ctx, s.read(), scanClient,
		`SELECT `+clientCols+` FROM clients WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.fail("listing clients", err)
	}
	cs, next := page(cs, p.Limit, func(c store.Client) string { return c.ID })
	return cs, next, nil
}

// UpdateClient replaces the stored client with c.
func (s *Store) UpdateClient(ctx context.Context, c store.Client) (store.Client, error) {
	if err := checkClient(c); err != nil {
		return store.Client{}, s.fail("updating client", err)
	}
	j, err := clientArgs(c)
	if err != nil {
		return store.Client{}, s.fail("updating client", err)
	}
	c.UpdatedAt = now()
	err = s.write(ctx, func(q Querier) error {
		return q.QueryRow(ctx, `UPDATE clients SET client_id = $3, name = $4, secret_hash = $5, public = $6,
			first_party = $7, redirect_uris = $8, grant_types = $9, response_types = $10, scopes = $11, audience = $12,
			token_endpoint_auth_method = $13, settings = $14, enabled = $15, updated_at = $16
			WHERE tenant_id = $1 AND id = $2 RETURNING created_at`,
			c.TenantID, c.ID, c.ClientID, c.Name, c.SecretHash, c.Public, c.FirstParty, j[0], j[1], j[2], j[3], j[4],
			c.TokenEndpointAuthMethod, j[5], c.Enabled, c.UpdatedAt).Scan(timeDst(&c.CreatedAt))
	})
	if err != nil {
		return store.Client{}, s.fail("updating client", err)
	}
	return c, nil
}

// DeleteClient removes the client.
func (s *Store) DeleteClient(ctx context.Context, tenantID, id string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM clients WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	})
	if err != nil {
		return s.fail("deleting client", err)
	}
	return nil
}
