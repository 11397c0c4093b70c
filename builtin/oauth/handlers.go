package oauth

import (
	"context"

	"github.com/ory/fosite"
)

// ownGrantOnly runs a token endpoint handler of fosite's for the requests
// of its own grant type only. fosite asks every handler to populate every
// response, and its handlers decline a request of another grant type with
// an error carrying a stack trace; capturing those traces was a tenth of
// the cost of a client_credentials token. This wrapper declines with the
// bare fosite.ErrUnknownRequest instead, as the handlers' own
// CanHandleTokenEndpointRequest says they would, and lets everything else
// through unchanged.
type ownGrantOnly struct {
	fosite.TokenEndpointHandler
}

// PopulateTokenEndpointResponse calls the handler's when it handles the
// request's grant type, and declines otherwise.
func (h ownGrantOnly) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, resp)
}

// HandleTokenEndpointRequest calls the handler's when it handles the
// request's grant type, and declines otherwise. fosite checks
// CanHandleTokenEndpointRequest first already; this keeps the wrapper
// correct for any caller.
func (h ownGrantOnly) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, r)
}

var _ fosite.TokenEndpointHandler = ownGrantOnly{}
