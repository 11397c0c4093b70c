package adaptive

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/latchid/latch/kernel/store"
)

// StaticHost is a Host over fixed data: the try-it runner builds one from
// its request, and tests use it. It must not be changed while in use.
type StaticHost struct {
	// UsersByID holds the users by unique id.
	UsersByID map[string]User `json:"users,omitempty"`
	// SessionsByUser holds active sessions by user id.
	SessionsByUser map[string][]Session `json:"sessions,omitempty"`
	// SecretsByAlias holds secret values by alias.
	SecretsByAlias map[string]string `json:"secrets,omitempty"`
	// LibrariesByName holds library sources by name.
	LibrariesByName map[string]string `json:"libraries,omitempty"`
}

// User implements Host.
func (h *StaticHost) User(_ context.Context, _, id string) (*User, error) {
	u, ok := h.UsersByID[id]
	if !ok {
		return nil, nil
	}
	u.ID = id
	return &u, nil
}

// FindUsers implements Host; users are matched in id order.
func (h *StaticHost) FindUsers(_ context.Context, _ string, claims map[string]string, limit int) ([]User, error) {
	var out []User
	for _, id := range slices.Sorted(maps.Keys(h.UsersByID)) {
		u := h.UsersByID[id]
		u.ID = id
		match := true
		for k, v := range claims {
			if u.Claims[k] != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, u)
			if len(out) >= limit {
				break
			}
		}
	}
	return out, nil
}

// Sessions implements Host.
func (h *StaticHost) Sessions(_ context.Context, _, userID string) ([]Session, error) {
	return h.SessionsByUser[userID], nil
}

// Secret implements Host.
func (h *StaticHost) Secret(_ context.Context, _, alias string) (string, error) {
	s, ok := h.SecretsByAlias[alias]
	if !ok {
		return "", fmt.Errorf("secret %q: %w", alias, store.ErrNotFound)
	}
	return s, nil
}

// Library implements Host.
func (h *StaticHost) Library(_ context.Context, _, name string) (string, error) {
	s, ok := h.LibrariesByName[name]
	if !ok {
		return "", fmt.Errorf("library %q: %w", name, store.ErrNotFound)
	}
	return s, nil
}

var _ Host = (*StaticHost)(nil)
