package sqlstore

import "context"

// DeactivateBySubject marks every active, unexpired token of the kind
// issued to subject inactive, only those of clientID when it is not empty,
// and returns how many changed.
func (s *Store) DeactivateBySubject(ctx context.Context, tenantID, kind, subject, clientID string) (int, error) {
	if subject == "" {
		return 0, nil
	}
	query := `UPDATE tokens SET active = $4
		WHERE tenant_id = $1 AND kind = $2 AND subject = $3 AND active = $5 AND ` + notExpired("$6")
	args := []any{tenantID, kind, subject, false, true, now()}
	if clientID != "" {
		query += ` AND client_id = $7`
		args = append(args, clientID)
	}
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, query, args...)
		return err
	})
	if err != nil {
		return 0, s.fail("deactivating tokens by subject", err)
	}
	return int(n), nil
}
