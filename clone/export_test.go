package clone

// PauseAutovacuum exposes pauseAutovacuum to the integration tests of
// package clone_test, which start clusters through clone/local (which
// imports this package).
var PauseAutovacuum = pauseAutovacuum

// Relay and NewArrayRelabeler expose the wire-level table copy to
// TestRelay, which needs a real server on both ends.
var (
	Relay             = relay
	NewArrayRelabeler = newArrayRelabeler
)
