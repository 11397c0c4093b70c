package abi

import (
	"encoding/json"
	"testing"
)

// TestDecodedValuesAreIndependent checks what the shared copy of a decoded
// message promises: strings and byte slices are independent of the input,
// writing into a decoded byte slice changes no string, and appending to
// one does not write into the field after it.
func TestDecodedValuesAreIndependent(t *testing.T) {
	in := AuthenticateRequest{
		Tenant:  "acme",
		Params:  map[string][]string{"pin": {"1234"}, "user": {"alice", "bob"}},
		State:   []byte("state"),
		IP:      "203.0.113.7",
		Config:  json.RawMessage(`{"pin":"1234"}`),
		Cookies: map[string]string{"c": "v"},
	}
	b, err := in.AppendWire(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out AuthenticateRequest
	if err := out.UnmarshalWire(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x' // the input may be reused by the caller
	}
	for i := range out.State {
		out.State[i] = 'y'
	}
	out.State = append(out.State, "more"...)
	out.Config = append(out.Config, ' ')
	if out.Tenant != "acme" || out.IP != "203.0.113.7" || out.Cookies["c"] != "v" {
		t.Errorf("strings changed: tenant %q ip %q cookies %v", out.Tenant, out.IP, out.Cookies)
	}
	if got := out.Params["user"]; len(got) != 2 || got[0] != "alice" || got[1] != "bob" || out.Params["pin"][0] != "1234" {
		t.Errorf("params changed: %v", out.Params)
	}
	if string(out.Config) != `{"pin":"1234"} ` {
		t.Errorf("config = %q", out.Config)
	}
	if string(out.State) != "yyyyymore" {
		t.Errorf("state = %q", out.State)
	}
}

// TestDecodePresizes checks that repeated fields and maps are sized from
// their elements on the wire, and that the values of a map[string][]string
// share one array with no room to append into a neighbour.
func TestDecodePresizes(t *testing.T) {
	resp := AuthenticateResponse{
		Outcome:    OutcomeAuthenticated,
		AMR:        []string{"pwd", "otp", "hwk"},
		SetCookies: []Cookie{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d", Value: "v"}, {Name: "e"}},
	}
	b, err := resp.AppendWire(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out AuthenticateResponse
	if err := out.UnmarshalWire(b); err != nil {
		t.Fatal(err)
	}
	if len(out.AMR) != 3 || cap(out.AMR) != 3 {
		t.Errorf("AMR len %d cap %d, want 3 and 3", len(out.AMR), cap(out.AMR))
	}
	if len(out.SetCookies) != 5 || cap(out.SetCookies) != 5 || out.SetCookies[3].Value != "v" {
		t.Errorf("SetCookies = %v (cap %d), want 5 of capacity 5", out.SetCookies, cap(out.SetCookies))
	}

	req := AuthenticateRequest{Params: map[string][]string{"a": {"1", "2"}, "b": {"3"}, "c": {"4", "5", "6"}}}
	if b, err = req.AppendWire(nil); err != nil {
		t.Fatal(err)
	}
	var d decoder
	d.b = b
	var m AuthenticateRequest
	if err := m.decodeWire(&d, 0, len(b), 0); err != nil {
		t.Fatal(err)
	}
	if len(d.strs) != 6 || cap(d.strs) != 6 {
		t.Errorf("values array len %d cap %d, want 6 and 6", len(d.strs), cap(d.strs))
	}
	for k, v := range m.Params {
		if len(v) != cap(v) || len(v) != len(req.Params[k]) {
			t.Errorf("Params[%q] = %v (cap %d)", k, v, cap(v))
		}
	}
}

// TestDecodeAllocations checks the allocations of decoding a small
// authentication request: the shared copy of the input, the array of the
// Params values, and the Params map.
func TestDecodeAllocations(t *testing.T) {
	req := AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Step: 1, Params: map[string][]string{"pin": {"1234"}}, Config: json.RawMessage(`{"pin":"1234"}`)}
	b, err := req.AppendWire(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out AuthenticateRequest
	allocs := testing.AllocsPerRun(100, func() {
		if err := out.UnmarshalWire(b); err != nil {
			t.Fatal(err)
		}
	})
	// A map is one or two allocations (its header and, on the first
	// insert, its slots) depending on the Go runtime.
	if allocs > 4 {
		t.Errorf("decoding allocates %v times, want at most 4", allocs)
	}
}

func TestRun(t *testing.T) {
	elem := func(key, n byte) []byte { return append([]byte{key, n}, make([]byte, n)...) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want int
	}{
		{"one", elem(0x2a, 3), 1},
		{"three", cat(elem(0x2a, 0), elem(0x2a, 2), elem(0x2a, 1)), 3},
		{"another field ends the run", cat(elem(0x2a, 1), elem(0x22, 1), elem(0x2a, 1)), 1},
		{"truncated element", cat(elem(0x2a, 1), []byte{0x2a, 9, 0}), 1},
		{"key without length", cat(elem(0x2a, 1), []byte{0x2a}), 1},
		{"bad varint length", cat(elem(0x2a, 1), []byte{0x2a, 0xff, 0xff}), 1},
		{"two-byte key", cat([]byte{0x82, 0x01, 0}, []byte{0x82, 0x01, 1, 0}), 2},
	} {
		d := decoder{b: tc.in}
		kl := 1
		if tc.in[0] >= 0x80 {
			kl = 2
		}
		if got := d.run(0, kl, len(tc.in)); got != tc.want {
			t.Errorf("%s: run = %d, want %d", tc.name, got, tc.want)
		}
	}
}
