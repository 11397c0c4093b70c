package native

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestSlogWriter(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the output, in order
	}{
		{name: "json line", in: `{"@level":"warn","@message":"pool low","@module":"plugin.x","free":1}` + "\n",
			want: []string{"level=WARN", `msg="pool low"`, "@module=plugin.x", "free=1"}},
		{name: "error level", in: `{"@level":"error","@message":"boom"}`, want: []string{"level=ERROR", "msg=boom"}},
		{name: "plain line", in: "not json at all\n", want: []string{"level=INFO", `msg="not json at all"`}},
		{name: "two lines", in: "a\n\n{\"@level\":\"debug\",\"@message\":\"b\"}\n", want: []string{"msg=a", "level=DEBUG", "msg=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := &slogWriter{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			n, err := w.Write([]byte(tt.in))
			if err != nil || n != len(tt.in) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			out := buf.String()
			for _, w := range tt.want {
				i := strings.Index(out, w)
				if i < 0 {
					t.Fatalf("output %q lacks %q", out, w)
				}
				out = out[i+len(w):]
			}
		})
	}
}

func TestSlogWriterTruncates(t *testing.T) {
	var buf bytes.Buffer
	w := &slogWriter{log: slog.New(slog.NewTextHandler(&buf, nil))}
	_, _ = w.Write([]byte(strings.Repeat("x", 3*maxLogLine)))
	if got := strings.Count(buf.String(), "x"); got != maxLogLine {
		t.Fatalf("logged %d bytes of the line, want %d", got, maxLogLine)
	}
}

// FuzzSlogWriter feeds the bridge what a plugin may write to its standard
// error: it must never fail or panic.
func FuzzSlogWriter(f *testing.F) {
	f.Add([]byte(`{"@level":"info","@message":"hi"}`))
	f.Add([]byte("plain\n{\"@level\":7}\n"))
	f.Add([]byte(`{"@message":{"nested":[1,2]}}`))
	w := &slogWriter{log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := w.Write(b); err != nil || n != len(b) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	})
}
