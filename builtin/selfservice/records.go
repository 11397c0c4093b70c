package selfservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
)

// Hashes derived from a user's secrets (previous passwords, security
// answers) are kept as store.Tokens of their own, keyed by the user id,
// never in the user's attributes: attributes are shown by the admin API,
// SCIM and claims, and hashes must not leave the server.
const (
	kindHistory = "password_history"
	kindAnswers = "security_answers"
	// recordLifetime is the expiry of these records: they live as long
	// as the account in practice.
	recordLifetime = 50 * 365 * 24 * time.Hour
)

// loadRecord returns the JSON of a user's record of the kind, or nil.
func (s *Service) loadRecord(ctx context.Context, tenantID, kind, userID string, into any) (bool, error) {
	if userID == "" {
		return false, nil
	}
	tok, err := s.d.Store.GetToken(ctx, tenantID, kind, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("loading %s: %w", kind, err)
	}
	if err := json.Unmarshal(tok.Data, into); err != nil {
		return false, fmt.Errorf("decoding %s: %w", kind, err)
	}
	return true, nil
}

// saveRecord replaces a user's record of the kind; a nil v deletes it.
func (s *Service) saveRecord(ctx context.Context, tenantID, kind, userID string, v any) error {
	if err := s.d.Store.DeleteToken(ctx, tenantID, kind, userID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("replacing %s: %w", kind, err)
	}
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.d.Store.CreateToken(ctx, store.Token{Kind: kind, Key: userID, TenantID: tenantID, Subject: userID, Active: true, Data: data, CreatedAt: now, ExpiresAt: now.Add(recordLifetime)}); err != nil {
		return fmt.Errorf("saving %s: %w", kind, err)
	}
	return nil
}

// history returns the user's previous password hashes, newest first (the
// current one is the user's PasswordHash, not in the list).
func (s *Service) history(ctx context.Context, tenantID, userID string) ([]string, error) {
	var h []string
	_, err := s.loadRecord(ctx, tenantID, kindHistory, userID, &h)
	return h, err
}

// remember adds prev (the hash just replaced) to the user's history, kept
// as long as the policy asks.
func (s *Service) remember(ctx context.Context, tenantID string, p password.Policy, userID, prev string) error {
	if userID == "" || prev == "" {
		return nil
	}
	if p.History <= 1 {
		return s.saveRecord(ctx, tenantID, kindHistory, userID, nil)
	}
	old, err := s.history(ctx, tenantID, userID)
	if err != nil {
		return err
	}
	h := append([]string{prev}, old...)
	if len(h) > p.History-1 {
		h = h[:p.History-1]
	}
	return s.saveRecord(ctx, tenantID, kindHistory, userID, h)
}

// answers returns the user's security answer hashes by question number.
func (s *Service) answers(ctx context.Context, tenantID, userID string) (map[string]string, error) {
	m := map[string]string{}
	_, err := s.loadRecord(ctx, tenantID, kindAnswers, userID, &m)
	return m, err
}
