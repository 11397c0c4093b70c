package plugin

import (
	"errors"
	"testing"
)

func TestConfigs(t *testing.T) {
	parsed := 0
	c := Configs[string]{Parse: func(raw []byte) (string, error) {
		parsed++
		if string(raw) == "bad" {
			return "", ErrInvalidRequest
		}
		return "p:" + string(raw), nil
	}}
	for range 3 {
		if v, err := c.Get([]byte(`{"a":1}`)); err != nil || v != `p:{"a":1}` {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if v, _ := c.Get(nil); v != "p:{}" {
		t.Fatalf("Get(nil) = %q", v)
	}
	if _, err := c.Get([]byte("bad")); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Get(bad) err = %v", err)
	}
	if _, err := c.Get([]byte("bad")); err == nil || parsed != 4 {
		t.Fatalf("a refused configuration was kept (parsed %d times)", parsed)
	}
	for i := range MaxConfigs + 1 {
		_, _ = c.Get([]byte{byte('0' + i%10), byte(i)})
	}
	if len(c.parsed) > MaxConfigs {
		t.Fatalf("%d configurations kept, over %d", len(c.parsed), MaxConfigs)
	}
}
