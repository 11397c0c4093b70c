package admin

import "testing"

func TestCheckDeny(t *testing.T) {
	tests := []struct {
		kind, value, want string
		ok                bool
	}{
		{"ip", "203.0.113.7", "203.0.113.7", true},
		{"ip", "::ffff:203.0.113.7", "203.0.113.7", true},
		{"ip", "203.0.113.0/24", "", false},
		{"cidr", "203.0.113.9/24", "203.0.113.0/24", true},
		{"cidr", "300.0.0.0/8", "", false},
		{"client", "app-1", "app-1", true},
		{"user", "", "", false},
		{"api", " orders", "", false},
		{"color", "red", "", false},
		{"", "x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.value, func(t *testing.T) {
			got, err := checkDeny(denyInput{Kind: tt.kind, Value: tt.value})
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("checkDeny = %q, %v; want %q ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}
