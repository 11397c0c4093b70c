// Package native serves a Latch extension module as a native, out-of-process
// plugin (a go-plugin binary speaking gRPC) instead of a WASM guest. The
// module's code does not change: the extensions registered with
// sdk/plugin.Define and the kind packages' Register functions, and the host
// functions of sdk/guest and sdk/host, work the same way. Only main does
// something:
//
//	//go:build !wasip1
//
//	package main
//
//	import "github.com/latchid/latch/sdk/plugin/native"
//
//	func main() { native.Serve() }
//
// with an empty main in a file built for wasip1 beside it, so that
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ipallow.wasm .
//	go build -o ipallow .
//
// build the WASM guest and the native binary from one folder. The server
// runs the binary itself (the plugin's "command" in latch.yaml); run by
// hand it prints that it is a plugin and exits.
//
// Calls are served one at a time, as in a WASM instance: the dispatcher
// and the kind packages reuse their buffers between calls. Host calls
// (sdk/host) travel back to the server over the connection and are answered
// in the context of the call being served, gated by the capabilities the
// operator granted. guest.Log writes to the process's standard error,
// which the server logs; guest.Now and guest.Random are the process's own
// clock and randomness.
package native

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
)

// The handshake and wire names; kernel/plugin/native spells the same
// values, and the conformance kit runs one against the other.
const (
	magicCookieKey   = "LATCH_PLUGIN_MAGIC_COOKIE"
	magicCookieValue = "8d2c3f0b6a1e4e9f9c7d5b3a1f0e2d4c-latch-abi"
	pluginName       = "latch"
	callMetadataKey  = "latch-call"
	methodHostCall   = "/latch.plugin.v1.Host/HostCall"
)

// ErrNoHost is returned by a host call made when the server opened no
// host-call channel, or outside a call.
var ErrNoHost = errors.New("native: no host-call channel to the server")

// Serve serves the module defined with sdk/plugin.Define until the server
// stops the process. It never returns normally: run by hand, without the
// server's handshake, it prints a message and exits with status 1.
func Serve() {
	s := newServer()
	restore := guest.SetTestHost(s)
	defer restore()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: handshake(),
		Plugins:         goplugin.PluginSet{pluginName: &grpcPlugin{s: s}},
		GRPCServer:      goplugin.DefaultGRPCServer,
		Logger:          s.log,
	})
}

// handshake is the go-plugin handshake: the magic cookie, and the ABI
// version as the protocol version.
func handshake() goplugin.HandshakeConfig {
	v, err := strconv.ParseUint(abi.Version, 10, 32)
	if err != nil {
		panic("native: abi.Version " + abi.Version + " is not a number")
	}
	return goplugin.HandshakeConfig{ProtocolVersion: uint(v), MagicCookieKey: magicCookieKey, MagicCookieValue: magicCookieValue}
}

// server is the plugin side: it runs calls through the dispatcher one at
// a time and is the guest's host for Log, Now, Random and HostCall.
type server struct {
	log hclog.Logger

	mu     sync.Mutex // serialises calls
	host   *grpc.ClientConn
	cur    string          // the number of the call being served
	curCtx context.Context //nolint:containedctx // the context of the call being served, for its host calls
	broker *goplugin.GRPCBroker
}

func newServer() *server {
	return &server{log: hclog.New(&hclog.LoggerOptions{
		Name:       "",
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})}
}

// open dials the server's Host service on broker stream id.
func (s *server) open(id uint32) error {
	conn, err := s.broker.Dial(id)
	if err != nil {
		return fmt.Errorf("dialling the host-call channel: %w", err)
	}
	s.mu.Lock()
	old := s.host
	s.host = conn
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

// handle runs one Call and returns a copy of its Reply.
func (s *server) handle(ctx context.Context, call []byte) []byte {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(callMetadataKey); len(v) == 1 {
			id = v[0]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur, s.curCtx = id, ctx
	defer func() { s.cur, s.curCtx = "", nil }()
	out := guest.TestCall(call)
	return append([]byte(nil), out...)
}

// Log writes msg to standard error as a JSON line the server reads.
func (s *server) Log(level guest.Level, msg string) {
	switch {
	case level >= guest.LevelError:
		s.log.Error(msg)
	case level >= guest.LevelWarn:
		s.log.Warn(msg)
	case level >= guest.LevelInfo:
		s.log.Info(msg)
	default:
		s.log.Debug(msg)
	}
}

// Now is the process's clock.
func (s *server) Now() time.Time { return time.Now() }

// Random fills b from the process's secure random source.
func (s *server) Random(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("native: reading random bytes: %v", err)) // crypto/rand never fails on supported platforms
	}
}

// HostCall sends a HostCall envelope to the server, in the name of the
// call being served (it runs inside handle, which holds s.mu).
func (s *server) HostCall(req []byte) ([]byte, error) {
	if s.host == nil || s.curCtx == nil {
		return nil, ErrNoHost
	}
	ctx := metadata.AppendToOutgoingContext(s.curCtx, callMetadataKey, s.cur)
	out := new(wrapperspb.BytesValue)
	if err := s.host.Invoke(ctx, methodHostCall, wrapperspb.Bytes(req), out); err != nil {
		return nil, fmt.Errorf("native: host call: %w", err)
	}
	return out.GetValue(), nil
}

// grpcPlugin is the plugin side of the go-plugin plugin.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	s *server
}

// GRPCServer registers the Plugin service.
func (p *grpcPlugin) GRPCServer(broker *goplugin.GRPCBroker, g *grpc.Server) error {
	p.s.broker = broker
	g.RegisterService(&pluginServiceDesc, p.s)
	return nil
}

// GRPCClient is the host's side, which a plugin never runs.
func (*grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("native: a plugin does not dial the host's side")
}

// pluginService is the HandlerType of the hand-written descriptor.
type pluginService interface {
	handle(ctx context.Context, call []byte) []byte
	open(id uint32) error
}

// pluginServiceDesc describes latch.plugin.v1.Plugin by hand: its messages
// are abi bytes in BytesValue (see kernel/plugin/native).
var pluginServiceDesc = grpc.ServiceDesc{
	ServiceName: "latch.plugin.v1.Plugin",
	HandlerType: (*pluginService)(nil),
	Methods: []grpc.MethodDesc{
		{
			MethodName: "Describe",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				if err := dec(new(emptypb.Empty)); err != nil {
					return nil, err
				}
				return wrapperspb.Bytes(guest.TestDescribe()), nil
			},
		},
		{
			MethodName: "Open",
			Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.UInt32Value)
				if err := dec(in); err != nil {
					return nil, err
				}
				if err := srv.(pluginService).open(in.GetValue()); err != nil {
					return nil, err
				}
				return &emptypb.Empty{}, nil
			},
		},
		{
			MethodName: "Handle",
			Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.BytesValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				return wrapperspb.Bytes(srv.(pluginService).handle(ctx, in.GetValue())), nil
			},
		},
	},
	Metadata: "latch/plugin/v1",
}
