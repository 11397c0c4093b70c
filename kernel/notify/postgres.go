package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"
)

// Conn is one dedicated PostgreSQL session, as LISTEN needs: the session
// that ran LISTEN is the one notifications arrive on, so a pooled
// connection that changes under the caller will not do. The PostgreSQL
// store adapter provides it (kernel/store/postgres); the kernel does not
// import a driver.
type Conn interface {
	// Exec runs one statement with $n arguments.
	Exec(ctx context.Context, sql string, args ...any) error
	// WaitForNotification blocks until a notification arrives on a
	// channel this session listens on, ctx is done, or the session
	// fails.
	WaitForNotification(ctx context.Context) (channel, payload string, err error)
	// Close ends the session.
	Close(ctx context.Context) error
}

// Dialer opens a new dedicated session.
type Dialer func(ctx context.Context) (Conn, error)

// Defaults of PostgresOptions.
const (
	DefaultChannel        = "latch_changes"
	DefaultResyncInterval = time.Minute
	// maxBackoff caps the wait between reconnection attempts.
	maxBackoff = 5 * time.Second
	minBackoff = 100 * time.Millisecond
)

// channelRE is the form of a channel name: a plain lowercase SQL
// identifier, so it can be written into LISTEN unquoted.
var channelRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// PostgresOptions configure a Postgres bus. The zero value is usable.
type PostgresOptions struct {
	// Channel is the NOTIFY channel. Clusters sharing one database (in
	// different schemas) need different channels. Default
	// DefaultChannel.
	Channel string
	// ResyncInterval is how often every subscriber gets a Resync, the
	// safety net for notifications lost to a broken connection.
	// Zero means DefaultResyncInterval; negative disables it.
	ResyncInterval time.Duration
	// Logger receives connection failures and bad payloads. Default
	// slog.Default().
	Logger *slog.Logger
}

// Postgres is the Bus over PostgreSQL LISTEN/NOTIFY. Every node of a
// cluster runs one on the shared database: Publish is pg_notify on the
// channel, and a listening session per node hands what arrives to the
// node's subscribers, including the node's own changes. When the
// listening session breaks, the bus reconnects with backoff and sends
// every subscriber a Resync, since notifications sent meanwhile are lost.
type Postgres struct {
	dial Dialer
	opts PostgresOptions
	hub  *hub

	pubMu sync.Mutex
	pub   Conn // the publishing session; nil until needed or after a failure

	stop context.CancelFunc
	done chan struct{}
}

// NewPostgres returns a bus that opens its sessions with dial. It does not
// connect until Start.
func NewPostgres(dial Dialer, opts PostgresOptions) (*Postgres, error) {
	if opts.Channel == "" {
		opts.Channel = DefaultChannel
	}
	if !channelRE.MatchString(opts.Channel) {
		return nil, fmt.Errorf("notify: channel %q must be a lowercase identifier (a-z, 0-9, '_', at most 63 bytes)", opts.Channel)
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Postgres{dial: dial, opts: opts, hub: newHub(opts.Logger)}, nil
}

// Start opens the listening session and starts delivering. It fails when
// the first connection or LISTEN fails; later failures are retried in the
// background until Close.
func (p *Postgres) Start(ctx context.Context) error {
	conn, err := p.listen(ctx)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(context.Background())
	p.stop, p.done = stop, make(chan struct{})
	go p.run(runCtx, conn) //nolint:gosec // G118: the bus outlives Start's ctx on purpose; Close stops it.
	return nil
}

// listen opens a session and runs LISTEN on the channel.
func (p *Postgres) listen(ctx context.Context) (Conn, error) {
	conn, err := p.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify: connecting to listen: %w", err)
	}
	// The channel matched channelRE, so it is a safe bare identifier;
	// LISTEN takes no bind parameters.
	if err := conn.Exec(ctx, "LISTEN "+p.opts.Channel); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("notify: listening on %s: %w", p.opts.Channel, err)
	}
	return conn, nil
}

// run receives notifications until ctx is done, reconnecting after
// failures, and sends the periodic resyncs.
func (p *Postgres) run(ctx context.Context, conn Conn) {
	defer close(p.done)
	if p.opts.ResyncInterval > 0 {
		go func() {
			t := time.NewTicker(p.opts.ResyncInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					p.hub.resyncAll()
				}
			}
		}()
	}
	backoff := minBackoff
	for {
		err := p.receive(ctx, conn)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.opts.Logger.WarnContext(ctx, "change notifications: listening session lost; reconnecting", "err", err)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			conn, err = p.listen(ctx)
			if err == nil {
				break
			}
			backoff = min(2*backoff, maxBackoff)
			p.opts.Logger.WarnContext(ctx, "change notifications: reconnecting", "err", err, "retry_in", backoff)
		}
		backoff = minBackoff
		// Changes made while no session listened were not heard.
		p.hub.resyncAll()
		p.opts.Logger.InfoContext(ctx, "change notifications: listening again")
	}
}

// receive hands notifications of conn to the hub until conn fails or ctx
// is done.
func (p *Postgres) receive(ctx context.Context, conn Conn) error {
	for {
		channel, payload, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if channel != p.opts.Channel {
			continue
		}
		c, err := decode(payload)
		if err != nil {
			p.opts.Logger.WarnContext(ctx, "change notifications: ignoring a malformed notification", "channel", channel, "err", err)
			continue
		}
		p.hub.deliver(c)
	}
}

// Publish sends c with pg_notify on a session of its own, reconnecting
// once when that session has failed. Call it after the change committed.
func (p *Postgres) Publish(ctx context.Context, c Change) error {
	if err := c.Validate(); err != nil {
		return err
	}
	payload, err := encode(c)
	if err != nil {
		return err
	}
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if p.done == nil {
		return fmt.Errorf("notify: publishing %s: bus not started", c.Topic)
	}
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	var errs []error
	for range 2 {
		if p.pub == nil {
			conn, err := p.dial(ctx)
			if err != nil {
				return fmt.Errorf("notify: publishing %s: connecting: %w", c.Topic, errors.Join(append(errs, err)...))
			}
			p.pub = conn
		}
		err := p.pub.Exec(ctx, "SELECT pg_notify($1, $2)", p.opts.Channel, payload)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		_ = p.pub.Close(ctx)
		p.pub = nil
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("notify: publishing %s: %w", c.Topic, errors.Join(errs...))
}

// Subscribe calls h with every change of topic, from every node, until
// unsubscribe is called.
func (p *Postgres) Subscribe(topic string, h Handler) (unsubscribe func()) {
	return p.hub.subscribe(topic, h)
}

// Close stops listening, closes the sessions and waits for running
// handlers.
func (p *Postgres) Close() error {
	if p.stop != nil {
		p.stop()
		<-p.done
	}
	p.pubMu.Lock()
	if p.pub != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.pub.Close(ctx)
		cancel()
		p.pub = nil
	}
	p.pubMu.Unlock()
	p.hub.close()
	return nil
}

var _ Bus = (*Postgres)(nil)
