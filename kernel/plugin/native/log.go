package native

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// maxLogLine bounds the message of one forwarded log line.
const maxLogLine = 4 << 10

// slogWriter turns go-plugin's JSON log lines (its own and, through it,
// the plugin's stderr) into slog records. go-plugin speaks hclog; the
// server logs with slog, so this is the bridge, written by hand because it
// is a dozen lines.
type slogWriter struct {
	log *slog.Logger
}

// Write logs each line of p; a line that is not JSON is logged as it is.
func (w *slogWriter) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(p, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			w.log.LogAttrs(context.Background(), slog.LevelInfo, truncate(string(line)))
			continue
		}
		msg, _ := rec["@message"].(string)
		level, _ := rec["@level"].(string)
		// In key order, so that the same record always logs the same line.
		attrs := make([]slog.Attr, 0, len(rec))
		for _, k := range slices.Sorted(maps.Keys(rec)) {
			if strings.HasPrefix(k, "@") && k != "@module" {
				continue
			}
			attrs = append(attrs, slog.Any(k, rec[k]))
		}
		w.log.LogAttrs(context.Background(), slogLevel(level), truncate(msg), attrs...)
	}
	return len(p), nil
}

// slogLevel maps an hclog level name to slog's.
func slogLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func truncate(s string) string {
	if len(s) > maxLogLine {
		return s[:maxLogLine]
	}
	return s
}
