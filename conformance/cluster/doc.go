// Package cluster proves that Latch runs as a cluster: several `latch
// serve` nodes (conformance/internal/live) on one PostgreSQL database with
// one master key, behind a round-robin reverse proxy the test runs. It
// drives authorization-code logins, refreshes, client_credentials grants
// and admin writes across the nodes, kills one node with SIGKILL under
// load, and checks that no acknowledged write is lost, that flows begun on
// the dead node finish on the others, that the node restarted on the same
// address rejoins, and that a configuration change made on one node is in
// force on the others within a second. It also checks signing-key
// rotation across nodes, nodes serving across an expand migration, the
// change-notification bus (kernel/notify) on the real PostgreSQL, and
// that the Helm chart's latch.yaml loads. The benchmark measures
// client_credentials tokens/s for one, two and three nodes, and one node
// on SQLite against one on PostgreSQL.
//
// The tests need PostgreSQL: they read LATCH_TEST_POSTGRES_DSN, create a
// database of their own per run and drop it afterwards, and skip when the
// variable is unset. Throttling across nodes is the API gateway's suite.
package cluster
