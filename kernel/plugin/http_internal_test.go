package plugin

import (
	"net/netip"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"93.184.216.34", true},
		{"2606:4700::1111", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"fe80::1", false},
		{"fc00::1", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"::ffff:127.0.0.1", false},
		{"64:ff9b::a00:1", false},
		{"224.0.0.1", false},
	}
	for _, tt := range tests {
		if got := publicAddr(netip.MustParseAddr(tt.addr).Unmap()); got != tt.want {
			t.Errorf("publicAddr(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	// Named explicitly, an internal address is allowed.
	if err := checkDialAddress("10.0.0.7:8080", []netip.Addr{netip.MustParseAddr("10.0.0.7")}); err != nil {
		t.Errorf("explicit address refused: %v", err)
	}
	if err := checkDialAddress("10.0.0.8:8080", []netip.Addr{netip.MustParseAddr("10.0.0.7")}); err == nil {
		t.Error("another internal address allowed")
	}
}

// FuzzParseHostRule checks that an allow-list entry never panics the
// parser, and that a parsed entry without a wildcard matches its own host.
func FuzzParseHostRule(f *testing.F) {
	for _, s := range []string{"api.example.com", "*.example.com", "host:8443", "http://10.0.0.7:8080", "[::1]:80", "https://a.b", "*.*.x", "", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseHostRule(s)
		if err != nil || r.wildcard {
			return
		}
		if !r.matches(r.scheme, r.host, r.port) {
			t.Fatalf("rule %+v from %q does not match its own host", r, s)
		}
	})
}
