package safehttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/internal/safehttp"
)

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"93.184.215.14", true},
		{"2606:4700::6810:85e5", true},
		{"::ffff:93.184.215.14", true},
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
		{"0.1.2.3", false},
		{"192.0.0.8", false},
		{"198.18.0.1", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"::", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false},
		{"64:ff9b:1::1", false},
		{"2001:db8::1", false},
	} {
		if got := safehttp.PublicAddr(netip.MustParseAddr(tc.addr)); got != tc.public {
			t.Errorf("PublicAddr(%s) = %v, want %v", tc.addr, got, tc.public)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{"https://idp.example/keys", false, true},
		{"http://idp.example/keys", false, false},
		{"http://127.0.0.1:8080/keys", true, true},
		{"ftp://idp.example/keys", true, false},
		{"https://user:pw@idp.example/", false, false},
		{"https://idp.example/#frag", false, false},
		{"/relative", true, false},
		{"https://", false, false},
		{"::", false, false},
	} {
		if err := safehttp.CheckURL(tc.url, tc.allowHTTP); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", tc.url, tc.allowHTTP, err, tc.ok)
		}
	}
}

func TestClient(t *testing.T) {
	var accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write(make([]byte, 100))
		case "/missing":
			http.NotFound(w, r)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, _ := url.Parse(srv.URL)
	byName := "http://localhost:" + u.Port()

	for _, target := range []string{srv.URL, byName} {
		if _, err := safehttp.Get(ctx, safehttp.NewClient(false, time.Second, 0), target+"/ok", ""); !errors.Is(err, safehttp.ErrForbiddenAddress) {
			t.Errorf("%s fetched through the guard: %v", target, err)
		}
	}
	private := safehttp.NewClient(true, time.Second, 64)
	if b, err := safehttp.Get(ctx, private, srv.URL+"/ok", "application/json"); err != nil || string(b) != "ok" || accept != "application/json" {
		t.Fatalf("loopback with allowPrivate: %q %v (accept %q)", b, err, accept)
	}
	if _, err := safehttp.Get(ctx, private, srv.URL+"/big", ""); !errors.Is(err, safehttp.ErrTooLarge) {
		t.Errorf("an oversized body was read: %v", err)
	}
	if b, err := safehttp.Get(ctx, safehttp.NewClient(true, time.Second, 100), srv.URL+"/big", ""); err != nil || len(b) != 100 {
		t.Errorf("a body of exactly the cap: %d bytes, %v", len(b), err)
	}
	if _, err := safehttp.Get(ctx, private, srv.URL+"/missing", ""); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("a 404 was accepted: %v", err)
	}
	if _, err := safehttp.Get(ctx, private, srv.URL+"/redirect", ""); err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
		t.Errorf("a redirect was followed: %v", err)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	start := time.Now()
	if _, err := safehttp.Get(ctx, safehttp.NewClient(true, 200*time.Millisecond, 0), slow.URL, ""); err == nil {
		t.Error("a slow answer was awaited past the timeout")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the timeout took %v", d)
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://idp.example/x", "http://127.0.0.1/", "https://u@h/", "%zz", "https://h/#f"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowHTTP bool) {
		if safehttp.CheckURL(raw, allowHTTP) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q", raw)
		}
		if u.Scheme != "https" && (!allowHTTP || u.Scheme != "http") {
			t.Fatalf("accepted scheme of %q", raw)
		}
	})
}
