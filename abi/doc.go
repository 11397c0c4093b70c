// Package abi is the extension contract of Latch: versioned, language-neutral
// wire types and documented constants shared by the kernel, the WASM host, the
// go-plugin transport and the SDK. It imports nothing but the standard library.
package abi
