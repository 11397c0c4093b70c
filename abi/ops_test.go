package abi_test

import (
	"testing"

	"github.com/latchid/latch/abi"
)

var opNames = []string{
	abi.OpConfigure, abi.OpHealth, abi.OpClose, abi.OpAuthenticate, abi.OpToken,
	abi.OpFindUsers, abi.OpGetUser, abi.OpCreateUser, abi.OpUpdateUser, abi.OpDeleteUser,
	abi.OpAuthenticateUser, abi.OpListGroups, abi.OpMapClaims, abi.OpAllow, abi.OpProvision,
}

func TestOpCodes(t *testing.T) {
	seen := map[abi.OpCode]string{}
	for _, name := range opNames {
		code, ok := abi.LookupOp(name)
		if !ok {
			t.Errorf("op %q has no code", name)
			continue
		}
		if other, dup := seen[code]; dup {
			t.Errorf("ops %q and %q share code %d", name, other, code)
		}
		seen[code] = name
		if code.Name() != name || code.String() != name {
			t.Errorf("code %d names %q / %q, want %q", code, code.Name(), code.String(), name)
		}
	}
	if _, ok := abi.LookupOp("nope"); ok {
		t.Error(`LookupOp("nope") found a code`)
	}
	if got := abi.OpCode(999).String(); got != "op(999)" {
		t.Errorf("unknown code prints %q", got)
	}
	kinds := map[abi.OpCode]string{
		abi.OpCodeConfigure: "", abi.OpCodeHealth: "", abi.OpCodeClose: "",
		abi.OpCodeAuthenticate: abi.KindAuthenticator, abi.OpCodeToken: abi.KindGrant,
		abi.OpCodeFindUsers: abi.KindUserStore, abi.OpCodeListGroups: abi.KindUserStore,
		abi.OpCodeMapClaims: abi.KindClaims, abi.OpCodeAllow: abi.KindThrottler, abi.OpCodeProvision: abi.KindProvisioner,
		abi.OpCode(55): "",
	}
	for code, want := range kinds {
		if got := code.Kind(); got != want {
			t.Errorf("%s.Kind() = %q, want %q", code, got, want)
		}
	}
}

func TestHostOps(t *testing.T) {
	ops := []abi.HostOp{
		abi.HostOpConfigGet, abi.HostOpKVGet, abi.HostOpKVSet, abi.HostOpKVDelete, abi.HostOpKVList,
		abi.HostOpSecretGet, abi.HostOpGetUser, abi.HostOpFindUsers, abi.HostOpAudit, abi.HostOpHTTP,
	}
	names := map[string]bool{}
	for _, op := range ops {
		if c := op.Capability(); !abi.KnownCapability(c) {
			t.Errorf("%s needs unknown capability %q", op, c)
		}
		if names[op.String()] {
			t.Errorf("two host ops named %q", op)
		}
		names[op.String()] = true
	}
	if abi.HostOp(7).Capability() != "" || abi.HostOp(7).String() != "hostop(7)" {
		t.Error("unknown host op has a capability or a name")
	}
}

func TestCapabilities(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		ok         bool
	}{
		{abi.ImportLog, abi.CapabilityLog, true},
		{abi.ImportNowUnixNanos, abi.CapabilityClock, true},
		{abi.ImportRandom, abi.CapabilityRandom, true},
		{abi.ImportHostCall, "", true},
		{"fd_write", "", false},
	} {
		got, ok := abi.CapabilityOfImport(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CapabilityOfImport(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	for _, c := range []string{"log", "config", "kv", "clock", "random", "secrets", "userlookup", "audit", "http"} {
		if !abi.KnownCapability(c) {
			t.Errorf("capability %q unknown", c)
		}
	}
	if abi.KnownCapability("fs") {
		t.Error(`capability "fs" known`)
	}
}

func TestPackPtrLen(t *testing.T) {
	for _, tt := range []struct {
		ptr, length uint32
		want        uint64
	}{
		{0x10000, 200, 0x00010000_000000c8},
		{0x0011a0f0, 0x00012345, 0x0011a0f0_00012345},
		{0, 0, 0},
		{0xffffffff, 0xffffffff, 0xffffffff_ffffffff},
	} {
		if got := abi.PackPtrLen(tt.ptr, tt.length); got != tt.want {
			t.Errorf("PackPtrLen(%#x, %d) = %#x, want %#x", tt.ptr, tt.length, got, tt.want)
		}
		if p, l := abi.UnpackPtrLen(tt.want); p != tt.ptr || l != tt.length {
			t.Errorf("UnpackPtrLen(%#x) = %#x, %d", tt.want, p, l)
		}
	}
}
