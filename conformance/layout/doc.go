// Package layout holds the test that keeps the repository's shape: the one
// rule of direction from docs/architecture.md (cmd -> builtin -> kernel -> abi;
// plugins and sdk -> abi only), the kernel's ban on protocol and vendor
// libraries, database drivers confined to the store adapters, and the fixed
// set of top-level folders. It has no exported API; run it with
// `go test ./conformance/layout/` or `make conformance`.
package layout
