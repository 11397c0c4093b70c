package native

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/wasmhost"
)

// Defaults of Options.
const (
	DefaultCallTimeout  = 10 * time.Second
	DefaultStartTimeout = 10 * time.Second
	DefaultProcesses    = 1
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	// MaxProcesses bounds Options.Processes.
	MaxProcesses = 64
)

// watchInterval is how often a supervisor looks whether its process
// exited: go-plugin reports an exit through Client.Exited only.
const watchInterval = 50 * time.Millisecond

// stableAfter is how long a restarted process must live for the backoff to
// start again from MinBackoff.
const stableAfter = 30 * time.Second

// maxFraming is what a BytesValue adds to the bytes it carries, at most.
const maxFraming = 16

// maxReplayedConfigs bounds the configure calls kept to send again to a
// restarted process.
const maxReplayedConfigs = 256

// ErrNotRunning is wrapped (inside a fault.Unavailable) by the error of a
// call made while none of the plugin's processes is running.
var ErrNotRunning = errors.New("the plugin process is not running")

// Options configure a native plugin. The zero value of each field takes its
// default.
type Options struct {
	// Command is the path of the plugin binary; Args are its arguments.
	// The process gets no environment from the server.
	Command string
	Args    []string
	// Checksum, when set, is the SHA-256 the binary must have; it is
	// checked before every start (the signed bundle manifest's digest).
	Checksum []byte
	// Grants lists the capabilities the operator granted
	// (config.PluginConfig.Grants); the description is checked against it.
	Grants []string
	// HostCaller answers the plugin's host calls (a *plugin.HostCalls);
	// nil answers each with unsupported.
	HostCaller wasmhost.HostCaller
	// Logger receives the supervisor's diagnostics and the plugin's log
	// lines (its stderr); nil discards them.
	Logger *slog.Logger
	// Processes is how many processes of the binary run (DefaultProcesses,
	// at most MaxProcesses). Each serves one call at a time, so it is also
	// the bound on calls in flight; more calls wait for a free process up
	// to their deadline. A crash takes only its own process's call down.
	Processes int
	// CallTimeout bounds each call (DefaultCallTimeout). A process that
	// does not answer in time is killed and restarted, as a WASM instance
	// past its deadline is discarded.
	CallTimeout time.Duration
	// StartTimeout bounds a start, handshake included (DefaultStartTimeout).
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart, which
	// doubles after each failed or short-lived start.
	MinBackoff, MaxBackoff time.Duration
}

func (o Options) withDefaults() Options {
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.Processes <= 0 {
		o.Processes = DefaultProcesses
	}
	o.Processes = min(o.Processes, MaxProcesses)
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.HostCaller == nil {
		o.HostCaller = plugin.UnsupportedHostCalls
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Plugin is a supervised pool of native plugin processes: a
// plugin.Transport.
type Plugin struct {
	id   string
	opts Options
	log  *slog.Logger
	desc []byte // the encoded Description read at load

	mu      sync.Mutex
	slots   []*slot
	wake    chan struct{} // closed and replaced when a process frees up or changes state
	configs [][]byte      // successful configure calls, replayed on restart

	nextID   atomic.Uint64
	restarts atomic.Uint64
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
}

// slot is one supervised process; mu guards cur and busy.
type slot struct {
	n    int
	cur  *process // nil while down
	busy bool
}

// process is one running plugin binary.
type process struct {
	client *goplugin.Client
	remote *remote
	host   *hostServer
	start  time.Time
	// retired is set when the process must take no more calls: it timed
	// out or its connection failed. It is killed and restarted.
	retired atomic.Bool
}

// alive reports whether p (nil: no process) may take calls.
func (p *process) alive() bool {
	return p != nil && !p.retired.Load() && !p.client.Exited()
}

// retire takes the process out of service and kills it in the background
// (go-plugin's Kill waits for the process to go).
func (p *process) retire() {
	if !p.retired.Swap(true) {
		go p.client.Kill()
	}
}

// Load starts opts.Processes processes of the binary opts.Command under id,
// reads the description and checks it with plugin.CheckDescription against
// opts.Grants (every process must describe itself the same), and
// supervises them from then on. On failure nothing keeps running. Pass the
// Plugin and the description to plugin.Modules; Close the Plugin after the
// instances.
func Load(ctx context.Context, id string, opts Options) (*Plugin, abi.Description, error) {
	opts = opts.withDefaults()
	if opts.Command == "" {
		return nil, abi.Description{}, fmt.Errorf("loading native plugin %q: no command", id)
	}
	p := &Plugin{
		id:   id,
		opts: opts,
		log:  opts.Logger.With(slog.String("plugin", id)),
		wake: make(chan struct{}),
		stop: make(chan struct{}),
	}
	var desc abi.Description
	for i := range opts.Processes {
		proc, raw, err := p.start(ctx)
		if err == nil && i == 0 {
			if err = desc.UnmarshalWire(raw); err != nil {
				err = fmt.Errorf("%w: decoding it: %w", plugin.ErrInvalidDescription, err)
			} else if err = plugin.CheckDescription(desc, opts.Grants); err != nil {
				err = fmt.Errorf("checking its description: %w", err)
			}
			p.desc = raw
		} else if err == nil && !bytes.Equal(raw, p.desc) {
			err = errors.New("its processes describe themselves differently")
		}
		if err != nil {
			if proc != nil {
				proc.client.Kill()
			}
			p.killAll()
			return nil, abi.Description{}, fmt.Errorf("loading native plugin %q: %w", id, err)
		}
		p.slots = append(p.slots, &slot{n: i, cur: proc})
	}
	for _, s := range p.slots {
		p.wg.Add(1)
		go p.supervise(s) //nolint:gosec // G118: the supervisor outlives Load's context, until Close
	}
	return p, desc, nil
}

// killAll stops every process, for a failed Load.
func (p *Plugin) killAll() {
	for _, s := range p.slots {
		if s.cur != nil {
			s.cur.client.Kill()
		}
	}
}

// start runs the binary, opens the back channel and reads its description.
func (p *Plugin) start(ctx context.Context) (*process, []byte, error) {
	// Each process has its own Host service, on its own connection, which
	// knows only the calls sent to that process: a process cannot act in
	// the context of a call another one serves.
	host := &hostServer{module: p.id, caller: p.opts.HostCaller}
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  Handshake(),
		Plugins:          goplugin.PluginSet{PluginName: grpcPlugin{host: host}},
		Cmd:              exec.Command(p.opts.Command, p.opts.Args...), //nolint:gosec // G204: the operator names the binary
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     p.opts.StartTimeout,
		Logger:           newHCLogger(p.log),
		SkipHostEnv:      true,
		// The contract's message limit, with room for the BytesValue
		// around it: a larger reply fails at once as resource_exhausted.
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(abi.MaxMessageSize+maxFraming),
			grpc.MaxCallSendMsgSize(abi.MaxMessageSize+maxFraming),
		)},
	}
	if len(p.opts.Checksum) > 0 {
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: p.opts.Checksum, Hash: sha256.New()}
	}
	client := goplugin.NewClient(cfg)
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, nil, fmt.Errorf("starting %s: %w", p.opts.Command, err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		client.Kill()
		return nil, nil, fmt.Errorf("connecting to %s: %w", p.opts.Command, err)
	}
	r, ok := raw.(*remote)
	if !ok {
		client.Kill()
		return nil, nil, fmt.Errorf("connecting to %s: unexpected client %T", p.opts.Command, raw)
	}
	dctx, cancel := context.WithTimeout(ctx, p.opts.CallTimeout)
	defer cancel()
	desc, err := r.describe(dctx)
	if err != nil {
		client.Kill()
		return nil, nil, fmt.Errorf("reading the description of %s: %w", p.opts.Command, err)
	}
	return &process{client: client, remote: r, host: host, start: time.Now()}, desc, nil
}

// Call sends one Call envelope to a free process and returns its Reply
// (plugin.Transport). It fails with fault.Unavailable while no process is
// running, fault.Timeout past its deadline (the process is then killed
// and restarted), and fault.Unavailable or fault.Internal when the process
// dies or fails the call. A call that could not reach a process that had
// just died (its connection refused) is sent to another one.
func (p *Plugin) Call(ctx context.Context, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.CallTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		s, proc, err := p.acquire(ctx)
		if err != nil {
			return nil, err
		}
		id := p.nextID.Add(1)
		proc.host.begin(id, ctx)
		out, err := proc.remote.handle(ctx, id, payload)
		proc.host.end(id)
		if err != nil {
			code := status.Code(err)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) || code == codes.DeadlineExceeded || code == codes.Unavailable {
				// Past its deadline the process may be stuck in the call
				// (it serves one at a time); unavailable, it is gone or
				// going. Either way it serves no other call: the
				// supervisor restarts it. A call its caller cancelled
				// does not retire it: a client that gives up must not be
				// able to restart the plugin.
				proc.retire()
			}
			p.release(s, proc)
			if notSent(err) && ctx.Err() == nil && attempt < len(p.slots) {
				continue
			}
			return nil, p.callFault(ctx, err)
		}
		p.release(s, proc)
		if isConfigure(payload) && isOK(out) {
			p.remember(payload)
		}
		return out, nil
	}
}

// notSent reports whether a failed call never reached the process: gRPC
// could not connect to it (it had died), so the call did not run and may
// be sent to another process. A call that reached a process that then
// died is not sent again: it may be what killed it.
func notSent(err error) bool {
	return status.Code(err) == codes.Unavailable && strings.HasPrefix(status.Convert(err).Message(), "connection error")
}

// acquire takes a free running process, waiting for one up to ctx's
// deadline; with no process running it fails at once.
func (p *Plugin) acquire(ctx context.Context) (*slot, *process, error) {
	for {
		p.mu.Lock()
		running := false
		for _, s := range p.slots {
			if !s.cur.alive() {
				continue
			}
			running = true
			if !s.busy {
				s.busy = true
				proc := s.cur
				p.mu.Unlock()
				return s, proc, nil
			}
		}
		wake := p.wake
		p.mu.Unlock()
		if !running {
			return nil, nil, fault.Unavailable.WithCause(fmt.Errorf("plugin/%s: %w", p.id, ErrNotRunning))
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, nil, p.ctxFault(ctx.Err(), "waiting for a free plugin process")
		}
	}
}

// release frees s, which served a call on proc, and wakes the waiting
// calls. When proc died and s already holds its replacement, the
// replacement's state is not this call's to change.
func (p *Plugin) release(s *slot, proc *process) {
	p.mu.Lock()
	if s.cur == proc || s.cur == nil {
		s.busy = false
	}
	p.signal()
	p.mu.Unlock()
}

// signal wakes every waiting call; p.mu is held.
func (p *Plugin) signal() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// ctxFault maps a context error to its fault.
func (p *Plugin) ctxFault(err error, doing string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fault.Timeout.WithCause(fmt.Errorf("plugin/%s: %s: %w", p.id, doing, err))
	}
	return fault.Canceled.WithCause(fmt.Errorf("plugin/%s: %s: %w", p.id, doing, err))
}

// callFault maps a failed gRPC call to its fault.
func (p *Plugin) callFault(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return p.ctxFault(ctx.Err(), "calling the plugin process")
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return fault.Timeout.WithCause(fmt.Errorf("plugin/%s: calling the plugin process: %w", p.id, err))
	case codes.Unavailable, codes.Canceled:
		return fault.Unavailable.WithCause(fmt.Errorf("plugin/%s: calling the plugin process: %w", p.id, err))
	}
	return fault.Internal.WithCause(fmt.Errorf("plugin/%s: calling the plugin process: %w", p.id, err))
}

// isConfigure reports whether call is a configure Call: its first field
// is Op (key 0x08) with value 1.
func isConfigure(call []byte) bool {
	var c abi.Call
	return len(call) >= 2 && call[0] == 0x08 && call[1] == byte(abi.OpCodeConfigure) && c.UnmarshalWire(call) == nil
}

// isOK reports whether a Reply carries no error.
func isOK(reply []byte) bool {
	var r abi.Reply
	return r.UnmarshalWire(reply) == nil && r.Error == nil
}

// remember keeps a configure call to replay on restart.
func (p *Plugin) remember(call []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.configs {
		if bytes.Equal(c, call) {
			return
		}
	}
	if len(p.configs) < maxReplayedConfigs {
		p.configs = append(p.configs, bytes.Clone(call))
	}
}

// Running returns how many of the plugin's processes are up.
func (p *Plugin) Running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.slots {
		if s.cur.alive() {
			n++
		}
	}
	return n
}

// Restarts returns how many times a process was restarted.
func (p *Plugin) Restarts() uint64 { return p.restarts.Load() }

// Pids returns the process ids of the running processes.
func (p *Plugin) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, s := range p.slots {
		if s.cur == nil {
			continue
		}
		if rc := s.cur.client.ReattachConfig(); rc != nil && rc.Pid > 0 {
			pids = append(pids, rc.Pid)
		}
	}
	return pids
}

// Close stops supervising and stops the processes. It is safe to call more
// than once.
func (p *Plugin) Close(context.Context) error {
	if p.closed.Swap(true) {
		return nil
	}
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	procs := make([]*process, 0, len(p.slots))
	for _, s := range p.slots {
		if s.cur != nil {
			procs = append(procs, s.cur)
			s.cur = nil
		}
	}
	p.signal()
	p.mu.Unlock()
	for _, proc := range procs {
		proc.client.Kill()
	}
	return nil
}

// supervise waits for s's process to exit and restarts it with backoff
// until Close.
func (p *Plugin) supervise(s *slot) {
	defer p.wg.Done()
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	backoff := p.opts.MinBackoff
	log := p.log.With(slog.Int("process", s.n))
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		proc := s.cur
		p.mu.Unlock()
		if proc.alive() {
			continue
		}
		if proc != nil {
			p.mu.Lock()
			s.cur = nil
			p.signal()
			p.mu.Unlock()
			proc.client.Kill() // releases its connections and folders
			if time.Since(proc.start) >= stableAfter {
				backoff = p.opts.MinBackoff
			}
			log.LogAttrs(context.Background(), slog.LevelWarn, "native plugin process exited; restarting it",
				slog.Duration("restart_in", backoff))
		}
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, p.opts.MaxBackoff)
		if err := p.restart(s); err != nil {
			log.LogAttrs(context.Background(), slog.LevelError, "restarting native plugin process", slog.Any("error", err))
		}
	}
}

// restart starts a new process for s, checks that it describes itself as
// at load, sends it the remembered configure calls and puts it in service.
func (p *Plugin) restart(s *slot) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.StartTimeout)
	defer cancel()
	proc, raw, err := p.start(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(raw, p.desc) {
		proc.client.Kill()
		return fmt.Errorf("plugin/%s: the restarted binary describes itself differently than at load: refused", p.id)
	}
	p.mu.Lock()
	configs := slices.Clone(p.configs)
	p.mu.Unlock()
	for _, c := range configs {
		cctx, ccancel := context.WithTimeout(ctx, p.opts.CallTimeout)
		id := p.nextID.Add(1)
		proc.host.begin(id, cctx)
		out, err := proc.remote.handle(cctx, id, c)
		proc.host.end(id)
		ccancel()
		if err == nil && !isOK(out) {
			err = errors.New("the configuration was refused")
		}
		if err != nil {
			proc.client.Kill()
			return fmt.Errorf("plugin/%s: configuring the restarted process: %w", p.id, err)
		}
	}
	p.mu.Lock()
	closed := p.closed.Load()
	if !closed {
		s.cur, s.busy = proc, false
		p.signal()
	}
	p.mu.Unlock()
	if closed {
		proc.client.Kill()
		return nil
	}
	p.restarts.Add(1)
	p.log.LogAttrs(ctx, slog.LevelInfo, "native plugin process restarted", slog.Int("process", s.n))
	return nil
}

// hostServer serves the Host service of a plugin: it finds the context of
// the call a host call belongs to and hands the call to the HostCaller.
type hostServer struct {
	module string
	caller wasmhost.HostCaller

	calls sync.Map // uint64 -> context.Context
}

func (h *hostServer) begin(id uint64, ctx context.Context) { h.calls.Store(id, ctx) } //nolint:revive // id first: the key
func (h *hostServer) end(id uint64)                        { h.calls.Delete(id) }

// hostCall answers one HostCall envelope. A host call that names no call
// in flight is refused with invalid_request in the HostReply.
func (h *hostServer) hostCall(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	id, ok := callID(ctx)
	var callCtx context.Context
	if ok {
		if v, found := h.calls.Load(id); found {
			callCtx, _ = v.(context.Context)
		}
	}
	if callCtx == nil {
		rep := abi.HostReply{Error: &abi.Error{Code: abi.CodeInvalidRequest, Message: "a host call must be made while serving a call"}}
		out, err := rep.AppendWire(nil)
		if err != nil {
			return nil, status.Error(codes.Internal, "encoding the host reply")
		}
		return wrapperspb.Bytes(out), nil
	}
	out, err := h.caller.HostCall(callCtx, h.module, in.GetValue())
	if err != nil {
		return nil, status.Error(codes.Internal, "the host call failed")
	}
	return wrapperspb.Bytes(out), nil
}

// newHCLogger returns a go-plugin logger that writes into log.
func newHCLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Level:      hclog.Info,
		Output:     &slogWriter{log: log},
		JSONFormat: true,
	})
}

// Interface guards.
var (
	_ plugin.Transport = (*Plugin)(nil)
	_ hostCaller       = (*hostServer)(nil)
)
