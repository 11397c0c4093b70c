package saml

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// SPMetadataEntityID checks an SP's metadata document as the IdP checks
// the metadata it loads (size, no DTD, round-trip safety, exactly one
// entity) and returns the entity ID, which is the SP's client_id.
func SPMetadataEntityID(doc []byte) (string, error) {
	ed, err := parseMetadata(doc)
	if err != nil {
		return "", err
	}
	return ed.EntityID, nil
}

// FetchSPMetadata gets an SP's metadata document from u through the same
// SSRF guard the IdP fetches metadata_url with: only public unicast
// addresses, checked at connect time, at most three redirects, a 10 s
// timeout and the metadata size limit.
func FetchSPMetadata(ctx context.Context, u string) ([]byte, error) {
	if err := checkEndpoint(u); err != nil {
		return nil, fmt.Errorf("metadata url: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := guardedClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching metadata: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	if _, err := parseMetadata(b); err != nil {
		return nil, err
	}
	return b, nil
}
