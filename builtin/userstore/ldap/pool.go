package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// errPoolClosed is returned by a pool after Close.
var errPoolClosed = errors.New("ldap connection pool is closed")

// conn is a pooled connection.
type conn struct {
	*goldap.Conn
	idleSince time.Time
	// reused is true when the connection came from the idle list (it may
	// have died while idle; a network error on it is retried once on a
	// fresh connection).
	reused bool
}

// pool is a bounded pool of connections to the directory. Connections are
// dialled on demand (trying the URLs in order), secured (LDAPS or
// StartTLS) and, for the service pool, bound as the service account. A
// connection idle for longer than healthAfter is checked before use; a
// connection that failed is closed rather than returned, and a network
// error drops every idle connection, since after a server restart they are
// all dead.
//
// go-ldap has no pool of its own; this one is small because it only needs
// a semaphore and an idle list.
type pool struct {
	name  string
	st    *settings
	bind  bool // bind as the service account after connecting
	slots chan struct{}

	mu     sync.Mutex
	idle   []*conn
	closed bool

	onDial func(err error) // metrics hook
	open   func(delta int) // metrics hook
}

func newPool(name string, st *settings, bind bool) *pool {
	return &pool{
		name: name, st: st, bind: bind,
		slots:  make(chan struct{}, st.poolSize),
		onDial: func(error) {}, open: func(int) {},
	}
}

// get returns a connection, waiting for a free slot until ctx is done.
// The caller must hand it back with put.
func (p *pool) get(ctx context.Context) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a %s connection: %w", p.name, ctx.Err())
	}
	for {
		c := p.popIdle()
		if c == nil {
			break
		}
		if c.IsClosing() || (time.Since(c.idleSince) > p.st.healthAfter && !p.healthy(c)) {
			p.discard(c)
			continue
		}
		c.reused = true
		return c, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

// fresh returns a newly dialled connection, for the retry after a reused
// connection turned out dead. The caller holds no slot for it yet.
func (p *pool) fresh(ctx context.Context) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a %s connection: %w", p.name, ctx.Err())
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

// put returns c to the pool; a broken connection is closed instead, and a
// network failure also drops the idle connections.
func (p *pool) put(c *conn, err error) {
	defer func() { <-p.slots }()
	if err != nil && !reusable(err) || c.IsClosing() {
		p.discard(c)
		if isNetwork(err) {
			p.dropIdle()
		}
		return
	}
	c.idleSince = time.Now()
	c.reused = false
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.discard(c)
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *pool) popIdle() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	c := p.idle[n-1]
	p.idle = p.idle[:n-1]
	return c
}

func (p *pool) dropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		p.discard(c)
	}
}

func (p *pool) discard(c *conn) {
	_ = c.Close()
	p.open(-1)
}

// close closes the idle connections and makes later puts close theirs.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.dropIdle()
}

// healthy asks the server who we are, within the operation timeout.
func (p *pool) healthy(c *conn) bool {
	c.SetTimeout(p.st.timeout)
	_, err := c.WhoAmI(nil)
	return err == nil
}

// dial connects to the first URL that answers.
func (p *pool) dial(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errPoolClosed
	}
	var errs []error
	for _, u := range p.st.urls {
		c, err := p.dialURL(ctx, u.Scheme, u.Host, u.Hostname())
		p.onDial(err)
		if err == nil {
			p.open(1)
			return &conn{Conn: c}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u.Redacted(), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connecting to the directory: %w", errors.Join(errs...))
}

// dialURL opens one connection. The whole set-up (TCP, TLS, StartTLS,
// service bind) runs under one deadline: go-ldap's StartTLS handshake has
// none of its own, so the deadline is set on the socket.
func (p *pool) dialURL(ctx context.Context, scheme, hostport, host string) (*goldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.st.dialTimeout)
	defer cancel()
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		port := "389"
		if scheme == "ldaps" {
			port = "636"
		}
		hostport = net.JoinHostPort(hostport, port)
	}
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("dialling: %w", err)
	}
	deadline, _ := ctx.Deadline()
	if err := raw.SetDeadline(deadline); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("setting the connect deadline: %w", err)
	}
	tc := p.st.tls.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	nc := raw
	isTLS := false
	if scheme == "ldaps" {
		t := tls.Client(raw, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc, isTLS = t, true
	}
	c := goldap.NewConn(nc, isTLS)
	c.Start()
	c.SetTimeout(p.st.dialTimeout)
	fail := func(what string, err error) (*goldap.Conn, error) {
		_ = c.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if p.st.startTLS {
		if err := c.StartTLS(tc); err != nil {
			return fail("StartTLS", err)
		}
	}
	if p.bind && p.st.bindDN != "" {
		if err := c.Bind(p.st.bindDN, p.st.bindPassword); err != nil {
			return fail("binding as the service account", err)
		}
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return fail("clearing the connect deadline", err)
	}
	c.SetTimeout(p.st.timeout)
	return c, nil
}

// reusable reports whether a connection that returned err can serve the
// next operation: an LDAP result (no such object, invalid credentials) can;
// a network error, a timeout or a cancelled operation cannot, since a late
// answer may still arrive on it.
func reusable(err error) bool {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return false
	}
	switch le.ResultCode {
	case goldap.ErrorNetwork, goldap.ErrorFilterCompile, goldap.ErrorFilterDecompile,
		goldap.ErrorDebugging, goldap.ErrorUnexpectedMessage, goldap.ErrorUnexpectedResponse,
		goldap.ErrorEmptyPassword, goldap.LDAPResultTimeout, goldap.LDAPResultTimeLimitExceeded:
		return false
	}
	return true
}

// isNetwork reports whether err says the connection is gone.
func isNetwork(err error) bool {
	if err == nil {
		return false
	}
	if goldap.IsErrorWithCode(err, goldap.ErrorNetwork) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
