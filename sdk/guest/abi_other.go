//go:build !wasip1

package guest

// Outside a wasip1 build there is no host to import functions from. These
// stand-ins keep the package building on every platform (so plugin code
// type-checks and unit-tests with the ordinary go tool); they are never
// reached in a real guest, and calling one on the host is a programmer
// error, so they panic with ErrNotInGuest.

func logImpl(Level, string) {
	panic(ErrNotInGuest)
}

func nowImpl() int64 {
	panic(ErrNotInGuest)
}

func randomImpl([]byte) {
	panic(ErrNotInGuest)
}

func hostCallImpl([]byte) ([]byte, error) {
	panic(ErrNotInGuest)
}
