package notify

import (
	"context"
	"log/slog"
	"sync"
)

// maxQueued is how many changes wait for one subscription before they are
// replaced by a single Resync.
const maxQueued = 256

// hub fans changes out to the subscriptions of this process. Each
// subscription has its own goroutine, so a slow handler delays only its
// own changes.
type hub struct {
	log *slog.Logger
	ctx context.Context // handlers' context; cancelled by close

	mu     sync.Mutex
	subs   map[string]map[*subscription]struct{}
	closed bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type subscription struct {
	topic string
	h     Handler

	mu     sync.Mutex
	queue  []Change
	resync bool
	wake   chan struct{} // capacity 1
	stop   chan struct{}
	done   chan struct{}
}

func newHub(log *slog.Logger) *hub {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{log: log, ctx: ctx, cancel: cancel, subs: map[string]map[*subscription]struct{}{}}
}

// subscribe adds a subscription to topic and starts its goroutine.
func (h *hub) subscribe(topic string, fn Handler) func() {
	s := &subscription{topic: topic, h: fn, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.done)
		return func() {}
	}
	if h.subs[topic] == nil {
		h.subs[topic] = map[*subscription]struct{}{}
	}
	h.subs[topic][s] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	go h.run(s)
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs[topic], s)
			h.mu.Unlock()
			close(s.stop)
			<-s.done
		})
	}
}

// deliver queues c for every subscription of its topic.
func (h *hub) deliver(c Change) {
	for _, s := range h.subscriptions(c.Topic) {
		s.push(c)
	}
}

// resyncAll tells every subscription to reload its topic.
func (h *hub) resyncAll() {
	for _, s := range h.subscriptions("") {
		s.mu.Lock()
		s.queue, s.resync = nil, true
		s.mu.Unlock()
		s.signal()
	}
}

// subscriptions returns the subscriptions of topic, or all of them for "".
func (h *hub) subscriptions(topic string) []*subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*subscription
	for t, set := range h.subs {
		if topic != "" && t != topic {
			continue
		}
		for s := range set {
			out = append(out, s)
		}
	}
	return out
}

// close stops every subscription and waits for their handlers.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	var all []*subscription
	for _, set := range h.subs {
		for s := range set {
			all = append(all, s)
		}
	}
	h.subs = map[string]map[*subscription]struct{}{}
	h.mu.Unlock()
	h.cancel()
	for _, s := range all {
		close(s.stop)
	}
	h.wg.Wait()
}

func (s *subscription) push(c Change) {
	s.mu.Lock()
	switch {
	case s.resync:
		// A pending resync reloads everything; c adds nothing.
	case len(s.queue) >= maxQueued:
		s.queue, s.resync = nil, true
	default:
		s.queue = append(s.queue, c)
	}
	s.mu.Unlock()
	s.signal()
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers s's changes until it is stopped.
func (h *hub) run(s *subscription) {
	defer h.wg.Done()
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		queue, resync := s.queue, s.resync
		s.queue, s.resync = nil, false
		s.mu.Unlock()
		if resync {
			h.call(s, Change{Topic: s.topic, Resync: true})
			continue
		}
		for _, c := range queue {
			select {
			case <-s.stop:
				return
			default:
			}
			h.call(s, c)
		}
	}
}

// call runs the handler, containing a panic so one bad subscriber does
// not stop the node's notifications.
func (h *hub) call(s *subscription, c Change) {
	defer func() {
		if r := recover(); r != nil {
			h.log.ErrorContext(h.ctx, "change handler panicked", "topic", c.Topic, "panic", r)
		}
	}()
	s.h(h.ctx, c)
}
