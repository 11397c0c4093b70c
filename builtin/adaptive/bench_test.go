package adaptive

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkEvaluate measures the cost of steering one login request: the
// typical script (role and IP check after step 1) on a pooled runtime,
// against the default flow with no script. "median-ns" is the median of
// the per-evaluation times.
func BenchmarkEvaluate(b *testing.B) {
	e := newEngine(b, nil)
	s := mustCompile(b, e, typicalScript)
	in := Input{Steps: twoSteps(), Request: Request{IP: "10.1.2.3"}, History: []Entry{step(1, true, "u1")}}
	for _, bc := range []struct {
		name   string
		script *Script
	}{{"script-pooled", s}, {"no-script", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			times := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				d, err := e.Evaluate(ctx, bc.script, in)
				times = append(times, time.Since(start))
				if err != nil || d.Kind != DecisionExecuteStep {
					b.Fatalf("%v %s", err, js(d))
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns")
		})
	}
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.Compile("bench", typicalScript); err != nil {
				b.Fatal(err)
			}
		}
	})
}
