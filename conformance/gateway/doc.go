// Package gateway holds the API gateway's conformance suite: it runs the
// real latch binary with the gateway role (inside `latch serve` and as a
// standalone `latch gateway`) against a real upstream, Latch's own OIDC
// provider and a second issuer with its own keys, and checks token
// validation, key rotation, issuer outages, deny policies, throttling on
// one node and across nodes sharing Redis, the circuit breaker, retries and
// hot reload. The load benchmark (BenchmarkGatewayLoad) compares the direct
// upstream with the proxy, the JWT-validated proxy and the full chain. It
// has no exported API; run it with `go test ./conformance/gateway/`.
package gateway
