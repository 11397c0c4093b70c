package event

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/kernel/store"
)

// Sink receives published events, in batches, from one goroutine at a time.
type Sink interface {
	// Name names the sink in metrics and logs ("log", "store").
	Name() string
	// Write handles a batch of events in publication order. The bus does
	// not retry a failed batch: a sink that must not lose events retries
	// inside Write, within ctx.
	Write(ctx context.Context, events []Event) error
}

// Defaults of Options.
const (
	DefaultQueueSize    = 4096
	DefaultMaxBatch     = 256
	DefaultWriteTimeout = 5 * time.Second
)

// Options configure a Bus.
type Options struct {
	// QueueSize is how many events wait for each sink before new ones are
	// dropped; 0 means DefaultQueueSize.
	QueueSize int
	// MaxBatch caps the events handed to one Write; 0 means
	// DefaultMaxBatch.
	MaxBatch int
	// WriteTimeout bounds each Write; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger reports failed writes; nil discards.
	Logger *slog.Logger
	// Metrics counts events; nil counts only Dropped.
	Metrics *Metrics
}

// Metrics counts events on buses:
//
//	latch_events_published_total          counter
//	latch_events_dropped_total{sink}      counter (queue full, or bus closing)
//	latch_events_written_total{sink}      counter
//	latch_event_sink_errors_total{sink}   counter (failed Write calls)
type Metrics struct {
	published prometheus.Counter
	dropped   *prometheus.CounterVec
	written   *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "events", Name: "published_total",
			Help: "Audit events published.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "events", Name: "dropped_total",
			Help: "Audit events a sink lost because its queue was full or the bus was closing.",
		}, []string{"sink"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "events", Name: "written_total",
			Help: "Audit events a sink wrote.",
		}, []string{"sink"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "event_sink", Name: "errors_total",
			Help: "Failed writes of audit event batches.",
		}, []string{"sink"}),
	}
	for _, c := range []prometheus.Collector{m.published, m.dropped, m.written, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering event metrics: %w", err)
		}
	}
	return m, nil
}

type queue struct {
	sink    Sink
	ch      chan Event
	dropped prometheus.Counter
	written prometheus.Counter
	errors  prometheus.Counter
}

// Bus fans published events out to its sinks. Each sink has its own bounded
// queue and goroutine, so a slow sink delays (or drops) only its own events.
type Bus struct {
	opts      Options
	queues    []*queue
	published prometheus.Counter

	mu      sync.RWMutex // guards closed against Publish
	closed  bool
	closing chan struct{}
	done    chan struct{}
	ctx     context.Context // ends writes when Close gives up
	cancel  context.CancelFunc
	dropped atomic.Uint64
}

// NewBus starts a bus with the sinks. Close it to flush and stop.
func NewBus(opts Options, sinks ...Sink) *Bus {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{opts: opts, closing: make(chan struct{}), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	if m := opts.Metrics; m != nil {
		b.published = m.published
	}
	var wg sync.WaitGroup
	for _, s := range sinks {
		q := &queue{sink: s, ch: make(chan Event, opts.QueueSize)}
		if m := opts.Metrics; m != nil {
			q.dropped = m.dropped.WithLabelValues(s.Name())
			q.written = m.written.WithLabelValues(s.Name())
			q.errors = m.errors.WithLabelValues(s.Name())
		}
		b.queues = append(b.queues, q)
		wg.Go(func() { b.run(q) })
	}
	go func() {
		wg.Wait()
		close(b.done)
	}()
	return b
}

// Publish hands e to every sink without blocking, filling its ID and Time
// when empty. A sink whose queue is full loses e, counted in Dropped and in
// the metrics. After Close, every event is dropped. Publish reports whether
// every sink accepted e.
func (b *Bus) Publish(e Event) bool {
	if e.ID == "" {
		e.ID = store.NewID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if b.published != nil {
		b.published.Inc()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	all := true
	for _, q := range b.queues {
		if b.closed {
			b.drop(q, 1)
			all = false
			continue
		}
		select {
		case q.ch <- e:
		default:
			b.drop(q, 1)
			all = false
		}
	}
	return all
}

// Dropped returns how many (event, sink) deliveries were lost so far.
func (b *Bus) Dropped() uint64 {
	return b.dropped.Load()
}

// drop counts n events lost for q; n is a count, so n <= 0 counts nothing.
func (b *Bus) drop(q *queue, n int) {
	if n <= 0 {
		return
	}
	b.dropped.Add(uint64(n))
	if q.dropped != nil {
		q.dropped.Add(float64(n))
	}
}

// Close stops accepting events and waits until every queued event has been
// written, or until ctx ends: then it abandons the remaining writes (counted
// as dropped) and returns ctx's error. It is safe to call more than once.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.closing)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		b.cancel()
		return fmt.Errorf("closing event bus: %w", ctx.Err())
	}
}

// run is a sink's goroutine: it writes batches until the bus closes, then
// writes what is left in the queue.
func (b *Bus) run(q *queue) {
	batch := make([]Event, 0, b.opts.MaxBatch)
	for {
		select {
		case e := <-q.ch:
			batch = b.fill(q, append(batch[:0], e))
			b.write(q, batch)
		case <-b.closing:
			for {
				batch = b.fill(q, batch[:0])
				if len(batch) == 0 {
					return
				}
				b.write(q, batch)
			}
		}
	}
}

// fill adds queued events to batch, without waiting, up to MaxBatch.
func (b *Bus) fill(q *queue, batch []Event) []Event {
	for len(batch) < b.opts.MaxBatch {
		select {
		case e := <-q.ch:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// write hands batch to the sink, or drops it once Close has given up.
func (b *Bus) write(q *queue, batch []Event) {
	if b.ctx.Err() != nil {
		b.drop(q, len(batch))
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.WriteTimeout)
	defer cancel()
	err := q.sink.Write(ctx, batch)
	if err != nil {
		if q.errors != nil {
			q.errors.Inc()
		}
		b.opts.Logger.Error("writing audit events",
			slog.String("sink", q.sink.Name()), slog.Int("events", len(batch)), slog.Any("error", err))
		return
	}
	if q.written != nil {
		q.written.Add(float64(len(batch)))
	}
}

// LogSink writes every event as one structured log record at Info level,
// with the message "audit" and the event's fields as attributes.
type LogSink struct {
	logger *slog.Logger
}

// NewLogSink returns a sink writing to logger.
func NewLogSink(logger *slog.Logger) *LogSink {
	return &LogSink{logger: logger}
}

// Name returns "log".
func (s *LogSink) Name() string { return "log" }

// Write logs the events.
func (s *LogSink) Write(ctx context.Context, events []Event) error {
	for _, e := range events {
		attrs := []slog.Attr{
			slog.String("event_id", e.ID),
			slog.Time("event_time", e.Time),
			slog.String("tenant", e.Tenant),
			slog.String("request_id", e.RequestID),
			slog.String("actor", e.Actor),
			slog.String("action", string(e.Action)),
			slog.String("target", e.Target),
			slog.String("outcome", e.Outcome),
		}
		if len(e.Detail) > 0 {
			attrs = append(attrs, slog.Any("detail", e.Detail))
		}
		s.logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
	}
	return nil
}

// StoreSink appends events to the store's audit log, one AppendAudit call
// per batch.
type StoreSink struct {
	log store.AuditLog
}

// NewStoreSink returns a sink appending to log.
func NewStoreSink(log store.AuditLog) *StoreSink {
	return &StoreSink{log: log}
}

// Name returns "store".
func (s *StoreSink) Name() string { return "store" }

// Write appends the batch.
func (s *StoreSink) Write(ctx context.Context, events []Event) error {
	recs := make([]store.AuditEvent, len(events))
	for i, e := range events {
		recs[i] = e.Record()
	}
	if err := s.log.AppendAudit(ctx, recs...); err != nil {
		return fmt.Errorf("appending %d audit events: %w", len(recs), err)
	}
	return nil
}

var (
	_ Sink = (*LogSink)(nil)
	_ Sink = (*StoreSink)(nil)
)
