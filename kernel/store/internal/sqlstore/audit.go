package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/latchid/latch/kernel/store"
)

const auditCols = `id, tenant_id, event_time, request_id, actor, action, target, outcome, detail`

// auditBatch is how many events one INSERT statement carries.
const auditBatch = 100

func scanAudit(r Row) (store.AuditEvent, error) {
	var e store.AuditEvent
	err := r.Scan(&e.ID, &e.TenantID, timeDst(&e.Time), &e.RequestID, &e.Actor, &e.Action, &e.Target, &e.Outcome,
		jsonDst(&e.Detail))
	return e, err
}

// AppendAudit stores the events in one transaction. An empty ID gets a new
// id and a zero Time the current time.
func (s *Store) AppendAudit(ctx context.Context, events ...store.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	args := make([]any, 0, len(events)*9)
	for _, e := range events {
		if err := checkAudit(e); err != nil {
			return s.fail("appending audit events", err)
		}
		detail, err := jsonArg(e.Detail)
		if err != nil {
			return s.fail("appending audit events", err)
		}
		args = append(args, orNewID(e.ID), e.TenantID, orNow(e.Time), e.RequestID, e.Actor, e.Action, e.Target,
			e.Outcome, detail)
	}
	err := s.write(ctx, func(q Querier) error {
		for start := 0; start < len(events); start += auditBatch {
			n := min(auditBatch, len(events)-start)
			if _, err := q.Exec(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES `+values(n, 9),
				args[start*9:(start+n)*9]...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.fail("appending audit events", err)
	}
	return nil
}

// values returns rows groups of cols placeholders: ($1, $2), ($3, $4).
func values(rows, cols int) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(r*cols + c + 1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// QueryAudit returns the events that match q, newest first. Since is
// inclusive and Until exclusive. The cursor names the last event returned
// as "<unix microseconds>:<id>".
func (s *Store) QueryAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, string, error) {
	p := q.Normalize()
	var w where
	for _, f := range []struct{ col, v string }{
		{"tenant_id", q.TenantID}, {"actor", q.Actor}, {"action", q.Action}, {"target", q.Target}, {"outcome", q.Outcome},
	} {
		if f.v != "" {
			w.and(f.col + " = " + w.arg(f.v))
		}
	}
	if !q.Since.IsZero() {
		w.and("event_time >= " + w.arg(norm(q.Since)))
	}
	if !q.Until.IsZero() {
		w.and("event_time < " + w.arg(norm(q.Until)))
	}
	if p.After != "" {
		at, id, err := parseAuditCursor(p.After)
		if err != nil {
			return nil, "", s.fail("querying audit events", err)
		}
		t := w.arg(at)
		w.and("(event_time < " + t + " OR (event_time = " + t + " AND id < " + w.arg(id) + "))")
	}
	es, err := collect(ctx, s.read(), scanAudit, `SELECT `+auditCols+` FROM audit_events`+w.String()+
		` ORDER BY event_time DESC, id DESC LIMIT `+w.arg(p.Limit+1), w.args...)
	if err != nil {
		return nil, "", s.fail("querying audit events", err)
	}
	es, next := page(es, p.Limit, func(e store.AuditEvent) string {
		return strconv.FormatInt(e.Time.UnixMicro(), 10) + ":" + e.ID
	})
	return es, next, nil
}

func parseAuditCursor(c string) (time.Time, string, error) {
	us, id, ok := strings.Cut(c, ":")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", fmt.Errorf("audit cursor %q: %w", c, store.ErrInvalid)
	}
	return time.UnixMicro(n).UTC(), id, nil
}
