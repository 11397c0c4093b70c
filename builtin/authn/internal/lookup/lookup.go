// Package lookup finds a user in a tenant's user stores by username,
// email or attribute, for the authenticators that identify a user without
// a password (identifier-first, X.509 certificates).
package lookup

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

// DepUserStores is the dependency name of the tenant's user stores (the
// one authn.password takes).
const DepUserStores = "userstores"

// UserStores gives a tenant's user store instances in search order.
type UserStores interface {
	UserStores(ctx context.Context, tenant string) []*extension.Instance
}

// ErrNotUnique means the search matched more than one user.
var ErrNotUnique = errors.New("more than one user matches")

// Find searches the tenant's user stores in order and returns the first
// store's only match. found is false when no store has a match; an error
// is a technical failure, or ErrNotUnique.
func Find(ctx context.Context, stores UserStores, req abi.FindUsersRequest) (abi.User, bool, error) {
	for _, inst := range stores.UserStores(ctx, req.Tenant) {
		us, ok := extension.As[userstore.Store](inst)
		if !ok {
			continue
		}
		q := req
		q.Limit, q.Config = 2, inst.Config()
		var res abi.FindUsersResponse
		err := extension.Call(ctx, inst, abi.OpFindUsers, func(ctx context.Context) error {
			var err error
			res, err = us.FindUsers(ctx, q)
			return err
		})
		if err != nil {
			return abi.User{}, false, fault.Unavailable.WithCause(fmt.Errorf("searching user store %q: %w", inst.Name(), err))
		}
		switch len(res.Users) {
		case 0:
			continue
		case 1:
			return res.Users[0], true, nil
		default:
			return abi.User{}, false, ErrNotUnique
		}
	}
	return abi.User{}, false, nil
}
