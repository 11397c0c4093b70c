// Package cluster proves that Latch runs as a cluster: several `latch
// serve` nodes (conformance/internal/live) on one PostgreSQL database with
// one master key, behind a round-robin reverse proxy the test runs. It
// drives authorization-code logins, refreshes, client_credentials grants
// and admin writes across the nodes, kills one node with SIGKILL under
// load, and checks that no acknowledged write is lost, that flows begun on
// the dead node finish on the others, that the node restarted on the same
// address rejoins, and that a configuration change made on one node is in
// force on the others within a second. With Redis, every node also runs
// the API gateway, and throttled calls spread over the gateways through
// the kill must stay within one cluster-wide limit, not one per node. It
// also checks that a signing-key rotation on one node is what the others
// sign with within a second, nodes serving across an expand migration, an
// older build restarting after a newer expand-only migration (and
// refusing after a contract one) on SQLite and PostgreSQL, the
// change-notification bus (kernel/notify) on the real PostgreSQL, and
// that the Helm chart's latch.yaml loads. The benchmark measures
// client_credentials tokens/s for one, two and three nodes, and one node
// on SQLite against one on PostgreSQL.
//
// The tests need PostgreSQL: they read LATCH_TEST_POSTGRES_DSN, create a
// database of their own per run and drop it afterwards, and skip when the
// variable is unset. The throttled gateway traffic needs Redis too: it
// reads LATCH_TEST_REDIS_ADDR, uses a key prefix of its own per run, and
// is skipped when the variable is unset.
package cluster
