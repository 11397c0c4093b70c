package event_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// memSink keeps what it is given. When gate is not nil, each Write first
// signals entered and then waits for gate.
type memSink struct {
	name    string
	mu      sync.Mutex
	batches [][]event.Event
	entered chan struct{}
	gate    chan struct{}
	err     error
}

func (s *memSink) Name() string { return s.name }

func (s *memSink) Write(ctx context.Context, events []event.Event) error {
	if s.gate != nil {
		s.entered <- struct{}{}
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, slices.Clone(events))
	return s.err
}

func (s *memSink) actions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.batches {
		for _, e := range b {
			out = append(out, e.Target)
		}
	}
	return out
}

func gated(name string) *memSink {
	return &memSink{name: name, entered: make(chan struct{}, 100), gate: make(chan struct{})}
}

func newMetrics(t *testing.T) (*event.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := event.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func targets(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = event.Ref("user", string(rune('a'+i)))
	}
	return out
}

func TestBusDeliversToEverySink(t *testing.T) {
	a, b := &memSink{name: "a"}, &memSink{name: "b"}
	var logs bytes.Buffer
	bus := event.NewBus(event.Options{}, a, b, event.NewLogSink(slog.New(slog.NewJSONHandler(&logs, nil))))
	want := targets(5)
	for _, tg := range want {
		if !bus.Publish(event.Event{Tenant: "t1", Actor: event.ActorSystem, Action: event.UserCreate, Target: tg, Outcome: event.OutcomeSuccess}) {
			t.Fatal("Publish refused an event with room in every queue")
		}
	}
	if err := bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*memSink{a, b} {
		if got := s.actions(); !slices.Equal(got, want) {
			t.Errorf("sink %s got %q, want %q in order", s.name, got, want)
		}
	}
	first := a.batches[0][0]
	if first.ID == "" || first.Time.IsZero() {
		t.Errorf("Publish did not fill ID and Time: %+v", first)
	}
	if bus.Dropped() != 0 {
		t.Errorf("Dropped = %d", bus.Dropped())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("log sink wrote %d lines, want 5", len(lines))
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"msg": "audit", "action": "user.create", "tenant": "t1", "actor": "system", "target": "user:a", "outcome": "success"} {
		if rec[k] != v {
			t.Errorf("log record %s = %v, want %v", k, rec[k], v)
		}
	}
}

func TestBusDropsInsteadOfBlocking(t *testing.T) {
	m, reg := newMetrics(t)
	slow, fast := gated("slow"), &memSink{name: "fast"}
	bus := event.NewBus(event.Options{QueueSize: 2, Metrics: m}, slow, fast)

	bus.Publish(event.Event{Target: "first"})
	<-slow.entered // the slow sink holds "first" in Write; its queue is empty

	done := make(chan struct{})
	go func() {
		for i := range 9 {
			bus.Publish(event.Event{Target: string(rune('0' + i))})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a full queue")
	}
	// 2 of the 9 fit the slow sink's queue, 7 are dropped for it. The fast
	// sink may drop some too, since it drains concurrently.
	if d := bus.Dropped(); d < 7 {
		t.Fatalf("Dropped = %d, want at least 7", d)
	}
	if got := testutil.ToFloat64(counterFor(t, reg, "latch_events_dropped_total", "slow")); got != 7 {
		t.Fatalf("dropped metric for slow = %v, want 7", got)
	}
	close(slow.gate)
	if err := bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := slow.actions(); !slices.Equal(got, []string{"first", "0", "1"}) {
		t.Fatalf("slow sink got %q, want the first event and the two queued", got)
	}
	if got := testutil.ToFloat64(counterFor(t, reg, "latch_events_published_total", "")); got != 10 {
		t.Fatalf("published = %v, want 10", got)
	}
}

// counterFor returns the value of a counter series as a Collector for
// testutil.ToFloat64, by gathering the registry.
func counterFor(t *testing.T, reg *prometheus.Registry, name, sink string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			match := sink == ""
			for _, l := range mt.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == sink {
					match = true
				}
			}
			if match {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return mt.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no %s{sink=%q}", name, sink)
	return nil
}

func TestCloseFlushes(t *testing.T) {
	s := &memSink{name: "s"}
	bus := event.NewBus(event.Options{MaxBatch: 7}, s)
	want := targets(50)
	for _, tg := range want {
		bus.Publish(event.Event{Target: tg})
	}
	if err := bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.actions(); !slices.Equal(got, want) {
		t.Fatalf("after Close the sink has %d events, want all %d in order", len(got), len(want))
	}
	for _, b := range s.batches {
		if len(b) > 7 {
			t.Fatalf("batch of %d exceeds MaxBatch 7", len(b))
		}
	}
	if bus.Publish(event.Event{Target: "late"}) {
		t.Fatal("Publish after Close reported success")
	}
	if bus.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want the late event counted", bus.Dropped())
	}
	if err := bus.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseGivesUpAtDeadline(t *testing.T) {
	s := gated("stuck")
	bus := event.NewBus(event.Options{WriteTimeout: time.Minute}, s)
	bus.Publish(event.Event{Target: "first"})
	<-s.entered // "first" is stuck in Write; the next three wait in the queue
	for _, tg := range targets(3) {
		bus.Publish(event.Event{Target: tg})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := bus.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for bus.Dropped() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if bus.Dropped() != 3 {
		t.Fatalf("Dropped = %d, want the 3 abandoned queued events", bus.Dropped())
	}
}

func TestSinkErrorsAreCounted(t *testing.T) {
	m, reg := newMetrics(t)
	var logs bytes.Buffer
	s := &memSink{name: "broken", err: errors.New("disk full")}
	bus := event.NewBus(event.Options{Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, s)
	bus.Publish(event.Event{Target: "x"})
	if err := bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(counterFor(t, reg, "latch_event_sink_errors_total", "broken")); got != 1 {
		t.Fatalf("sink errors = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "disk full") || !strings.Contains(logs.String(), "sink=broken") {
		t.Fatalf("failure not logged: %s", logs.String())
	}
}

// fakeAudit is an in-memory store.AuditLog. When block is set, the first
// AppendAudit waits for it.
type fakeAudit struct {
	mu      sync.Mutex
	calls   [][]store.AuditEvent
	entered chan struct{}
	block   chan struct{}
}

func (f *fakeAudit) AppendAudit(ctx context.Context, events ...store.AuditEvent) error {
	if f.block != nil {
		f.entered <- struct{}{}
		<-f.block
		f.block = nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, events)
	return nil
}

func (f *fakeAudit) QueryAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.AuditEvent
	for _, c := range f.calls {
		for _, e := range c {
			if q.Action == "" || e.Action == q.Action {
				out = append(out, e)
			}
		}
	}
	return out, "next", nil
}

func TestStoreSinkBatches(t *testing.T) {
	audit := &fakeAudit{entered: make(chan struct{}, 1), block: make(chan struct{})}
	bus := event.NewBus(event.Options{MaxBatch: 3}, event.NewStoreSink(audit))
	bus.Publish(event.Event{Tenant: "t1", Action: event.KeyRotate, Target: "first", Detail: map[string]any{"alg": "ES256"}})
	<-audit.entered
	for _, tg := range targets(7) {
		bus.Publish(event.Event{Tenant: "t1", Action: event.UserUpdate, Target: tg})
	}
	close(audit.block)
	if err := bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, c := range audit.calls {
		sizes = append(sizes, len(c))
	}
	if !slices.Equal(sizes, []int{1, 3, 3, 1}) {
		t.Fatalf("AppendAudit batch sizes = %v, want [1 3 3 1]", sizes)
	}
	rec := audit.calls[0][0]
	if rec.TenantID != "t1" || rec.Action != "key.rotate" || rec.Detail["alg"] != "ES256" || rec.ID == "" {
		t.Fatalf("stored record = %+v", rec)
	}

	got, next, err := event.Query(t.Context(), audit, store.AuditQuery{Action: string(event.KeyRotate)})
	if err != nil || next != "next" || len(got) != 1 || got[0].Action != event.KeyRotate || got[0].Tenant != "t1" {
		t.Fatalf("Query = %+v, %q, %v", got, next, err)
	}
}

func BenchmarkPublish(b *testing.B) {
	bus := event.NewBus(event.Options{}, event.NewStoreSink(&fakeAudit{}))
	b.Cleanup(func() {
		if err := bus.Close(context.Background()); err != nil {
			b.Errorf("closing bus: %v", err)
		}
	})
	e := event.Event{Tenant: "t", Actor: "user:u", Action: event.UserUpdate, Target: "user:u", Outcome: event.OutcomeSuccess}
	b.ReportAllocs()
	for b.Loop() {
		bus.Publish(e)
	}
}
