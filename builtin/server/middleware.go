package server

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// localRequestID is the fiber Locals key of the request id.
const localRequestID = "latch.request_id"

// RequestID returns the id of the request c serves.
func RequestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// requestID takes a well-formed incoming X-Request-Id (so ids join up across
// a proxy chain) or makes a new one, and echoes it in the response.
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get(HeaderRequestID)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Locals(localRequestID, id)
	c.Set(HeaderRequestID, id)
	return c.Next()
}

// validRequestID accepts 1..64 characters of [A-Za-z0-9._-]: enough for
// every common id format, and nothing that could forge a log line.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_', ch == '.':
		default:
			return false
		}
	}
	return true
}

// recoverPanic turns a panic in a handler into a 500 for that request only.
func (s *Server) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic serving request", "request_id", RequestID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fiber.NewError(fiber.StatusInternalServerError, "internal error")
		}
	}()
	return c.Next()
}

// observe writes the access log line and the request metrics. The route
// label is the matched route pattern, never the raw path, so label
// cardinality stays bounded.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		// Write the error response now so the status below is the one sent.
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("writing error response", "err", herr)
		}
	}
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	// A request no route matched ends on the global middleware at "/".
	route := c.Route().Path
	if route == "/" && c.Path() != "/" {
		route = "unmatched"
	}
	s.metrics.requests.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(c.Method(), route).Observe(elapsed.Seconds())
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(c.UserContext(), level, "http request",
		slog.String("request_id", RequestID(c)),
		slog.String("method", c.Method()),
		slog.String("path", c.Path()),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.Int("bytes", len(c.Response().Body())),
		slog.String("ip", c.IP()),
	)
	return nil
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "latch", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "latch", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency, by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
