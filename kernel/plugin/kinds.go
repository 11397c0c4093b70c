package plugin

import (
	"context"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/grant"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/userstore"
)

// authenticator adapts an authenticator entry (abi.KindAuthenticator).
type authenticator struct{ base }

// Authenticate sends OpCodeAuthenticate. Read the answer with authn.Check.
func (a *authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	req.Config = a.cfg(req.Config)
	var resp abi.AuthenticateResponse
	err := a.call(a.scoped(ctx, req.Tenant), abi.OpCodeAuthenticate, &req, &resp)
	return resp, err
}

// grantType adapts a grant entry (abi.KindGrant).
type grantType struct{ base }

// Token sends OpCodeToken. Read the answer with grant.Check.
func (g *grantType) Token(ctx context.Context, req abi.TokenRequest) (abi.TokenResponse, error) {
	req.Config = g.cfg(req.Config)
	var resp abi.TokenResponse
	err := g.call(g.scoped(ctx, req.Tenant), abi.OpCodeToken, &req, &resp)
	return resp, err
}

// userStore adapts a user store entry (abi.KindUserStore). It implements
// the optional Writer and GroupLister whatever the guest supports; a guest
// without them answers CodeUnsupported.
type userStore struct{ base }

// GetUser sends OpCodeGetUser; the response's Error comes back as a fault
// (a not_found matches userstore.ErrNotFound).
func (s *userStore) GetUser(ctx context.Context, req abi.GetUserRequest) (abi.User, error) {
	req.Config = s.cfg(req.Config)
	return s.user(s.scoped(ctx, req.Tenant), abi.OpCodeGetUser, &req)
}

// FindUsers sends OpCodeFindUsers; the response's Error comes back as a
// fault.
func (s *userStore) FindUsers(ctx context.Context, req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	req.Config = s.cfg(req.Config)
	var resp abi.FindUsersResponse
	if err := s.call(s.scoped(ctx, req.Tenant), abi.OpCodeFindUsers, &req, &resp); err != nil {
		return abi.FindUsersResponse{}, err
	}
	if resp.Error != nil {
		return abi.FindUsersResponse{}, fault.FromWire(*resp.Error)
	}
	return resp, nil
}

// AuthenticateUser sends OpCodeAuthenticateUser. Read the answer with
// userstore.CheckAuthenticate.
func (s *userStore) AuthenticateUser(ctx context.Context, req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	req.Config = s.cfg(req.Config)
	var resp abi.AuthenticateUserResponse
	err := s.call(s.scoped(ctx, req.Tenant), abi.OpCodeAuthenticateUser, &req, &resp)
	return resp, err
}

// CreateUser sends OpCodeCreateUser; the response's Error comes back as a
// fault (a conflict matches userstore.ErrConflict).
func (s *userStore) CreateUser(ctx context.Context, req abi.CreateUserRequest) (abi.User, error) {
	req.Config = s.cfg(req.Config)
	return s.user(s.scoped(ctx, req.Tenant), abi.OpCodeCreateUser, &req)
}

// UpdateUser sends OpCodeUpdateUser; the response's Error comes back as a
// fault.
func (s *userStore) UpdateUser(ctx context.Context, req abi.UpdateUserRequest) (abi.User, error) {
	req.Config = s.cfg(req.Config)
	return s.user(s.scoped(ctx, req.Tenant), abi.OpCodeUpdateUser, &req)
}

// DeleteUser sends OpCodeDeleteUser; the response's Error comes back as a
// fault.
func (s *userStore) DeleteUser(ctx context.Context, req abi.DeleteUserRequest) error {
	req.Config = s.cfg(req.Config)
	var resp abi.DeleteUserResponse
	if err := s.call(s.scoped(ctx, req.Tenant), abi.OpCodeDeleteUser, &req, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return fault.FromWire(*resp.Error)
	}
	return nil
}

// ListGroups sends OpCodeListGroups; the response's Error comes back as a
// fault.
func (s *userStore) ListGroups(ctx context.Context, req abi.ListGroupsRequest) (abi.ListGroupsResponse, error) {
	req.Config = s.cfg(req.Config)
	var resp abi.ListGroupsResponse
	if err := s.call(s.scoped(ctx, req.Tenant), abi.OpCodeListGroups, &req, &resp); err != nil {
		return abi.ListGroupsResponse{}, err
	}
	if resp.Error != nil {
		return abi.ListGroupsResponse{}, fault.FromWire(*resp.Error)
	}
	return resp, nil
}

// user makes a call answered with a UserResponse.
func (s *userStore) user(ctx context.Context, op abi.OpCode, req abi.Message) (abi.User, error) {
	var resp abi.UserResponse
	if err := s.call(ctx, op, req, &resp); err != nil {
		return abi.User{}, err
	}
	if resp.Error != nil {
		return abi.User{}, fault.FromWire(*resp.Error)
	}
	return resp.User, nil
}

// mapper adapts a claim mapper entry (abi.KindClaims).
type mapper struct{ base }

// Map sends OpCodeMapClaims. Read the answer with claims.Check.
func (m *mapper) Map(ctx context.Context, req abi.MapRequest) (abi.MapResponse, error) {
	req.Config = m.cfg(req.Config)
	var resp abi.MapResponse
	err := m.call(m.scoped(ctx, req.Tenant), abi.OpCodeMapClaims, &req, &resp)
	return resp, err
}

// throttler adapts a throttler entry (abi.KindThrottler).
type throttler struct{ base }

// Allow sends OpCodeAllow. Read the answer with throttle.Check.
func (t *throttler) Allow(ctx context.Context, req abi.AllowRequest) (abi.AllowResponse, error) {
	req.Config = t.cfg(req.Config)
	var resp abi.AllowResponse
	err := t.call(t.scoped(ctx, req.Tenant), abi.OpCodeAllow, &req, &resp)
	return resp, err
}

// provisioner adapts a provisioner entry (abi.KindProvisioner).
type provisioner struct{ base }

// Push sends OpCodeProvision. Read the answer with provision.Check.
func (p *provisioner) Push(ctx context.Context, ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	ev.Config = p.cfg(ev.Config)
	var resp abi.ProvisionResponse
	err := p.call(p.scoped(ctx, ev.Tenant), abi.OpCodeProvision, &ev, &resp)
	return resp, err
}

// Interface guards: each adapter implements its kind and the lifecycle.
var (
	_ authn.Authenticator     = (*authenticator)(nil)
	_ grant.Type              = (*grantType)(nil)
	_ userstore.Store         = (*userStore)(nil)
	_ userstore.Writer        = (*userStore)(nil)
	_ userstore.GroupLister   = (*userStore)(nil)
	_ claims.Mapper           = (*mapper)(nil)
	_ throttle.Throttler      = (*throttler)(nil)
	_ provision.Provisioner   = (*provisioner)(nil)
	_ extension.Provisioner   = (*authenticator)(nil)
	_ extension.HealthChecker = (*grantType)(nil)
	_ extension.Cleaner       = (*userStore)(nil)
)
