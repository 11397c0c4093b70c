package sqlstore

import (
	"context"
	"unicode/utf8"

	"github.com/latchid/latch/kernel/store"
)

const (
	localClaimCols   = `tenant_id, uri, name, description, attribute_mappings, created_at, updated_at`
	claimMappingCols = `tenant_id, dialect, claim, local_uri, updated_at`
)

// Bounds of the claim records' fields.
const (
	maxClaimURI         = 512
	maxClaimName        = 128
	maxClaimDescription = 1024
	maxClaimDialect     = 256
	maxClaimAttrs       = 64
)

func scanLocalClaim(r Row) (store.LocalClaim, error) {
	var c store.LocalClaim
	err := r.Scan(&c.TenantID, &c.URI, &c.Name, &c.Description, jsonDst(&c.AttributeMappings),
		timeDst(&c.CreatedAt), timeDst(&c.UpdatedAt))
	return c, err
}

func scanClaimMapping(r Row) (store.ClaimMapping, error) {
	var m store.ClaimMapping
	err := r.Scan(&m.TenantID, &m.Dialect, &m.Claim, &m.LocalURI, timeDst(&m.UpdatedAt))
	return m, err
}

func checkLocalClaim(c store.LocalClaim) error {
	if err := required("tenant id", c.TenantID, "uri", c.URI, "name", c.Name); err != nil {
		return err
	}
	switch {
	case len(c.URI) > maxClaimURI:
		return invalid("uri is longer than %d bytes", maxClaimURI)
	case len(c.Name) > maxClaimName:
		return invalid("name is longer than %d bytes", maxClaimName)
	case len(c.Description) > maxClaimDescription:
		return invalid("description is longer than %d bytes", maxClaimDescription)
	case len(c.AttributeMappings) > maxClaimAttrs:
		return invalid("more than %d attribute mappings", maxClaimAttrs)
	case !utf8.ValidString(c.URI) || !utf8.ValidString(c.Name) || !utf8.ValidString(c.Description):
		return invalid("claim fields must be UTF-8")
	}
	for d, a := range c.AttributeMappings {
		if d == "" || a == "" || len(d) > maxClaimName || len(a) > maxClaimName {
			return invalid("attribute mappings need a domain and an attribute of 1..%d bytes", maxClaimName)
		}
	}
	return nil
}

func checkClaimMapping(m store.ClaimMapping) error {
	if err := required("tenant id", m.TenantID, "dialect", m.Dialect, "claim", m.Claim, "local uri", m.LocalURI); err != nil {
		return err
	}
	switch {
	case len(m.Dialect) > maxClaimDialect:
		return invalid("dialect is longer than %d bytes", maxClaimDialect)
	case len(m.Claim) > maxClaimURI || len(m.LocalURI) > maxClaimURI:
		return invalid("claim names are at most %d bytes", maxClaimURI)
	case !utf8.ValidString(m.Dialect) || !utf8.ValidString(m.Claim) || !utf8.ValidString(m.LocalURI):
		return invalid("mapping fields must be UTF-8")
	}
	return nil
}

// PutLocalClaim creates or replaces the local claim with c.URI, keeping
// its CreatedAt.
func (s *Store) PutLocalClaim(ctx context.Context, c store.LocalClaim) (store.LocalClaim, error) {
	if err := checkLocalClaim(c); err != nil {
		return store.LocalClaim{}, s.fail("storing local claim", err)
	}
	attrs, err := jsonArg(c.AttributeMappings)
	if err != nil {
		return store.LocalClaim{}, s.fail("storing local claim", err)
	}
	c.UpdatedAt = now()
	var out store.LocalClaim
	err = s.write(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO local_claims (`+localClaimCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (tenant_id, uri) DO UPDATE SET name = excluded.name, description = excluded.description,
			attribute_mappings = excluded.attribute_mappings, updated_at = excluded.updated_at`,
			c.TenantID, c.URI, c.Name, c.Description, attrs, c.UpdatedAt, c.UpdatedAt); err != nil {
			return err
		}
		var err error
		out, err = scanLocalClaim(q.QueryRow(ctx, `SELECT `+localClaimCols+` FROM local_claims WHERE tenant_id = $1 AND uri = $2`,
			c.TenantID, c.URI))
		return err
	})
	if err != nil {
		return store.LocalClaim{}, s.fail("storing local claim", err)
	}
	return out, nil
}

// ListLocalClaims lists a tenant's stored local claims by URI.
func (s *Store) ListLocalClaims(ctx context.Context, tenantID string) ([]store.LocalClaim, error) {
	cs, err := collect(ctx, s.read(), scanLocalClaim, `SELECT `+localClaimCols+` FROM local_claims
		WHERE tenant_id = $1 ORDER BY uri`, tenantID)
	if err != nil {
		return nil, s.fail("listing local claims", err)
	}
	return cs, nil
}

// DeleteLocalClaim removes a stored local claim and the mappings to it.
func (s *Store) DeleteLocalClaim(ctx context.Context, tenantID, uri string) error {
	err := s.write(ctx, func(q Querier) error {
		if err := mustChange(q.Exec(ctx, `DELETE FROM local_claims WHERE tenant_id = $1 AND uri = $2`, tenantID, uri)); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `DELETE FROM claim_mappings WHERE tenant_id = $1 AND local_uri = $2`, tenantID, uri)
		return err
	})
	if err != nil {
		return s.fail("deleting local claim", err)
	}
	return nil
}

// PutClaimMapping creates or replaces the mapping of (Dialect, Claim).
func (s *Store) PutClaimMapping(ctx context.Context, m store.ClaimMapping) (store.ClaimMapping, error) {
	if err := checkClaimMapping(m); err != nil {
		return store.ClaimMapping{}, s.fail("storing claim mapping", err)
	}
	m.UpdatedAt = now()
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO claim_mappings (`+claimMappingCols+`) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, dialect, claim) DO UPDATE SET local_uri = excluded.local_uri, updated_at = excluded.updated_at`,
			m.TenantID, m.Dialect, m.Claim, m.LocalURI, m.UpdatedAt)
		return err
	})
	if err != nil {
		return store.ClaimMapping{}, s.fail("storing claim mapping", err)
	}
	return m, nil
}

// ListClaimMappings lists a tenant's stored mappings, of one dialect when
// dialect is set, ordered by dialect then claim.
func (s *Store) ListClaimMappings(ctx context.Context, tenantID, dialect string) ([]store.ClaimMapping, error) {
	var w where
	w.and("tenant_id = " + w.arg(tenantID))
	if dialect != "" {
		w.and("dialect = " + w.arg(dialect))
	}
	ms, err := collect(ctx, s.read(), scanClaimMapping, `SELECT `+claimMappingCols+` FROM claim_mappings`+w.String()+
		` ORDER BY dialect, claim`, w.args...)
	if err != nil {
		return nil, s.fail("listing claim mappings", err)
	}
	return ms, nil
}

// DeleteClaimMapping removes the mapping of (dialect, claim).
func (s *Store) DeleteClaimMapping(ctx context.Context, tenantID, dialect, claim string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM claim_mappings WHERE tenant_id = $1 AND dialect = $2 AND claim = $3`,
			tenantID, dialect, claim))
	})
	if err != nil {
		return s.fail("deleting claim mapping", err)
	}
	return nil
}
