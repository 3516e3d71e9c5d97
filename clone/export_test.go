package clone

// PauseAutovacuum exposes pauseAutovacuum to the integration tests of
// package clone_test, which start clusters through clone/local (which
// imports this package).
var PauseAutovacuum = pauseAutovacuum
