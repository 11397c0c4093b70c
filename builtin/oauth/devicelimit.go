package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// Brute-force protection of the user code page (RFC 8628 section 5.1): a
// user code has about 34 bits of entropy, so wrong entries are counted per
// SSO session and per client address, and once either count reaches its
// limit within a window the page refuses further entries until the window
// ends.
const (
	// kindDeviceAttempt is the store.Token kind of one counted wrong
	// entry; its key is a slot of a counter (attemptSlotKey).
	kindDeviceAttempt = "device_attempt"
	// deviceAttemptWindow is the length of a counting window.
	deviceAttemptWindow = 10 * time.Minute
	// deviceAttemptsPerSession and deviceAttemptsPerIP are the wrong
	// entries allowed per window.
	deviceAttemptsPerSession = 5
	deviceAttemptsPerIP      = 20
)

// attemptCounter is one counted subject: a session or an address.
type attemptCounter struct {
	subject string
	limit   int
}

// deviceCounters are the counters of a request.
func deviceCounters(sessionID, ip string) []attemptCounter {
	return []attemptCounter{
		{subject: "session\x00" + sessionID, limit: deviceAttemptsPerSession},
		{subject: "ip\x00" + ip, limit: deviceAttemptsPerIP},
	}
}

// attemptSlotKey is the key of slot i of a counter in the current window.
// Counting by slots keeps the count exact under concurrency without a
// read-modify-write: a wrong entry takes the first free slot, and the
// store's unique key makes two requests never take the same one.
func attemptSlotKey(subject string, window int64, i int) string {
	sum := sha256.Sum256([]byte(subject + "\x00" + strconv.FormatInt(window, 10)))
	return hex.EncodeToString(sum[:16]) + "." + strconv.Itoa(i)
}

// currentWindow returns the window index and its end.
func currentWindow(now time.Time) (int64, time.Time) {
	w := now.UnixNano() / int64(deviceAttemptWindow)
	return w, time.Unix(0, (w+1)*int64(deviceAttemptWindow))
}

// deviceLimited reports whether a counter of the request is at its limit.
func (p *Provider) deviceLimited(ctx context.Context, t tenantInfo, sessionID, ip string) (bool, error) {
	w, _ := currentWindow(time.Now())
	for _, c := range deviceCounters(sessionID, ip) {
		_, err := p.d.Store.GetToken(ctx, t.id, kindDeviceAttempt, attemptSlotKey(c.subject, w, c.limit-1))
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, store.ErrNotFound):
			return false, fmt.Errorf("checking device code attempts: %w: %w", errStorage, err)
		}
	}
	return false, nil
}

// countDeviceFailure counts a wrong entry on every counter of the request.
func (p *Provider) countDeviceFailure(ctx context.Context, t tenantInfo, sessionID, ip string) error {
	now := time.Now().UTC()
	w, end := currentWindow(now)
	for _, c := range deviceCounters(sessionID, ip) {
		for i := range c.limit {
			err := p.d.Store.CreateToken(ctx, store.Token{
				Kind: kindDeviceAttempt, Key: attemptSlotKey(c.subject, w, i), TenantID: t.id, Active: true,
				CreatedAt: now, ExpiresAt: end,
			})
			if err == nil {
				break
			}
			if !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("counting a device code attempt: %w: %w", errStorage, err)
			}
		}
	}
	return nil
}
