package native

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/wasmhost"
)

func TestIsConfigure(t *testing.T) {
	configure, err := abi.AppendCall(nil, abi.OpCodeConfigure, &abi.ConfigureRequest{Config: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	health, err := abi.AppendCall(nil, abi.OpCodeHealth, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call []byte
		want bool
	}{
		{"configure", configure, true},
		{"health", health, false},
		{"empty", nil, false},
		{"configure op, bad payload", []byte{0x08, 0x01, 0x12, 0x05}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isConfigure(tt.call); got != tt.want {
				t.Fatalf("isConfigure = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNotSent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"dial refused", status.Error(codes.Unavailable, `connection error: desc = "transport: error while dialing: connect: connection refused"`), true},
		{"died mid-call", status.Error(codes.Unavailable, "error reading from server: EOF"), false},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), false},
		{"not grpc", errors.New("connection error"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notSent(tt.err); got != tt.want {
				t.Fatalf("notSent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProtocolVersionIsTheABIVersion(t *testing.T) {
	if got := Handshake().ProtocolVersion; got != 1 || abi.Version != "1" {
		t.Fatalf("protocol version %d for ABI %q", got, abi.Version)
	}
}

// ctxKey marks the context a host call must be answered in.
type ctxKey struct{}

func TestHostServerAnswersInTheCallsContext(t *testing.T) {
	var got context.Context
	h := &hostServer{module: "m", caller: wasmhost.HostCallerFunc(func(ctx context.Context, module string, req []byte) ([]byte, error) {
		got = ctx
		return []byte{}, nil
	})}
	callCtx := context.WithValue(context.Background(), ctxKey{}, "call 7")
	h.begin(7, callCtx)
	defer h.end(7)

	tests := []struct {
		name      string
		id        string // "" for no metadata
		wantError string // the HostReply's error code; "" when forwarded
	}{
		{name: "the call in flight", id: "7"},
		{name: "no call named", id: "", wantError: abi.CodeInvalidRequest},
		{name: "a call not in flight", id: "8", wantError: abi.CodeInvalidRequest},
		{name: "a bad number", id: "seven", wantError: abi.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			ctx := context.Background()
			if tt.id != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(CallMetadataKey, tt.id))
			}
			out, err := h.hostCall(ctx, wrapperspb.Bytes([]byte{0x08, 0x01}))
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantError == "" {
				if got == nil || got.Value(ctxKey{}) != "call 7" {
					t.Fatalf("forwarded in %v, want the call's context", got)
				}
				return
			}
			var rep abi.HostReply
			if err := rep.UnmarshalWire(out.GetValue()); err != nil || rep.Error == nil || rep.Error.Code != tt.wantError {
				t.Fatalf("reply %+v (%v), want error %q", rep, err, tt.wantError)
			}
			if got != nil {
				t.Fatal("forwarded a host call that names no call in flight")
			}
		})
	}
}
