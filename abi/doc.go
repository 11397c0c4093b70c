// Package abi is the extension contract of Latch: versioned, language-neutral
// wire types and documented constants shared by the kernel, the WASM host, the
// go-plugin transport and the SDK. It imports nothing but the standard library.
//
// Every struct type is a Message with a generated binary codec (AppendWire,
// UnmarshalWire; see wire_gen.go and the `wire` struct tags). The envelopes
// that cross the host–guest boundary are Call, Reply, HostCall and HostReply;
// a module describes itself with a Description. SPEC.md states the whole
// contract in prose: versions, the WASM calling convention (the Export… and
// Import… names, PackPtrLen), operations and their codes, errors,
// capabilities, and the encoding byte by byte; RATIONALE.md says why.
package abi
