package wasmhost

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// outputBudget is how many bytes of standard output and error one instance
// may log in its life; the rest is dropped, so that a guest cannot flood
// the log.
const outputBudget = 64 << 10

// guestOutput sends an instance's WASI standard output and error to the
// logger, one record per line (lines cut at MaxLogBytes), within
// outputBudget. Standard output logs at info, standard error at warn (a Go
// guest's panic message lands there).
type guestOutput struct {
	logger *slog.Logger

	mu      sync.Mutex
	budget  int
	dropped bool
	streams [2]outputStream
}

type outputStream struct {
	o     *guestOutput
	name  string
	level slog.Level
	line  []byte
	cut   bool
}

func newGuestOutput(logger *slog.Logger) *guestOutput {
	o := &guestOutput{logger: logger, budget: outputBudget}
	o.streams[0] = outputStream{o: o, name: "stdout", level: slog.LevelInfo}
	o.streams[1] = outputStream{o: o, name: "stderr", level: slog.LevelWarn}
	return o
}

func (o *guestOutput) stdout() io.Writer { return &o.streams[0] }
func (o *guestOutput) stderr() io.Writer { return &o.streams[1] }

// flush logs what is left of unfinished lines; called when the instance
// goes away.
func (o *guestOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.streams {
		if len(o.streams[i].line) > 0 || o.streams[i].cut {
			o.streams[i].emit()
		}
	}
}

// Write implements io.Writer for wazero's fd_write. It never fails.
func (s *outputStream) Write(p []byte) (int, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.add(p)
			break
		}
		s.add(p[:i])
		s.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (s *outputStream) add(p []byte) {
	room := MaxLogBytes - len(s.line)
	if len(p) > room {
		p, s.cut = p[:room], true
	}
	s.line = append(s.line, p...)
}

// emit logs the current line, within the budget. The caller holds o.mu.
func (s *outputStream) emit() {
	line, cut := s.line, s.cut
	s.line, s.cut = s.line[:0], false
	o := s.o
	if o.budget <= 0 {
		if !o.dropped {
			o.dropped = true
			o.logger.LogAttrs(context.Background(), slog.LevelWarn, "guest output over budget; dropping the rest",
				slog.Int("budget_bytes", outputBudget))
		}
		return
	}
	o.budget -= len(line) + 1
	attrs := []slog.Attr{slog.String("stream", s.name), slog.String("text", strings.ToValidUTF8(string(line), "\uFFFD"))}
	if cut {
		attrs = append(attrs, slog.Bool("truncated", true))
	}
	o.logger.LogAttrs(context.Background(), s.level, "guest output", attrs...)
}

var _ io.Writer = (*outputStream)(nil)
