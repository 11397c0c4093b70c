package native

import (
	"context"
	"fmt"
	"strconv"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/latchid/latch/abi"
)

// The handshake and the wire names. sdk/plugin/native spells the same
// values (it may not import the kernel); the conformance kit checks that
// the two agree by running one against the other.
const (
	// MagicCookieKey and MagicCookieValue are the environment variable the
	// host sets for the plugin process, and its value. A binary started
	// without it is not being run as a plugin and says so.
	MagicCookieKey   = "LATCH_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "8d2c3f0b6a1e4e9f9c7d5b3a1f0e2d4c-latch-abi"
	// PluginName is the name the module is dispensed under.
	PluginName = "latch"
	// CallMetadataKey is the gRPC metadata key carrying a call's number
	// on Handle, and on each HostCall the plugin makes while serving it.
	CallMetadataKey = "latch-call"

	methodDescribe = "/latch.plugin.v1.Plugin/Describe"
	methodOpen     = "/latch.plugin.v1.Plugin/Open"
	methodHandle   = "/latch.plugin.v1.Plugin/Handle"
	hostService    = "latch.plugin.v1.Host"
)

// ProtocolVersion is the go-plugin protocol version: the ABI version as a
// number, so that a binary built for another ABI fails the handshake.
func ProtocolVersion() uint {
	v, err := strconv.ParseUint(abi.Version, 10, 32)
	if err != nil {
		panic("native: abi.Version " + abi.Version + " is not a number") // a programmer error in abi
	}
	return uint(v)
}

// Handshake is the go-plugin handshake of the contract's version.
func Handshake() goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion(),
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// grpcPlugin is the host's side of the go-plugin plugin: GRPCClient opens
// the host-call back channel and returns the remote module.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	host *hostServer
}

// GRPCServer is the plugin's side, which the host never serves.
func (grpcPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("native: the host does not serve the plugin side")
}

// GRPCClient serves the Host service on a new broker stream, tells the
// plugin its id, and returns the remote module.
func (p grpcPlugin) GRPCClient(ctx context.Context, broker *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	id := broker.NextId()
	go broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		s.RegisterService(&hostServiceDesc, p.host)
		return s
	})
	r := &remote{conn: conn}
	if err := conn.Invoke(ctx, methodOpen, wrapperspb.UInt32(id), &emptypb.Empty{}); err != nil {
		return nil, fmt.Errorf("opening the host-call channel: %w", err)
	}
	return r, nil
}

// remote is the Plugin service of one process.
type remote struct {
	conn *grpc.ClientConn
}

// describe returns the module's encoded Description.
func (r *remote) describe(ctx context.Context) ([]byte, error) {
	out := new(wrapperspb.BytesValue)
	if err := r.conn.Invoke(ctx, methodDescribe, &emptypb.Empty{}, out); err != nil {
		return nil, err
	}
	return out.GetValue(), nil
}

// handle sends one Call envelope, numbered id, and returns the Reply.
func (r *remote) handle(ctx context.Context, id uint64, call []byte) ([]byte, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, CallMetadataKey, strconv.FormatUint(id, 10))
	out := new(wrapperspb.BytesValue)
	if err := r.conn.Invoke(ctx, methodHandle, wrapperspb.Bytes(call), out); err != nil {
		return nil, err
	}
	return out.GetValue(), nil
}

// hostCaller is the Host service's implementation, for the descriptor's
// HandlerType.
type hostCaller interface {
	hostCall(ctx context.Context, req *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
}

// hostServiceDesc describes latch.plugin.v1.Host by hand (see the package
// doc: the message is abi bytes in a BytesValue).
var hostServiceDesc = grpc.ServiceDesc{
	ServiceName: hostService,
	HandlerType: (*hostCaller)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "HostCall",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(hostCaller).hostCall(ctx, in)
		},
	}},
	Metadata: "latch/plugin/v1",
}

// callID reads the call number from ctx's incoming metadata.
func callID(ctx context.Context) (uint64, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return 0, false
	}
	v := md.Get(CallMetadataKey)
	if len(v) != 1 {
		return 0, false
	}
	id, err := strconv.ParseUint(v[0], 10, 64)
	return id, err == nil
}
