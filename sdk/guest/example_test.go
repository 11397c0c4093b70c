package guest_test

import (
	"github.com/latchid/latch/sdk/guest"
)

// A guest registers its handlers from an init function: in a WASI reactor
// the host runs package initialisation once and never calls main.
func Example() {
	guest.Handle(func(call []byte) []byte {
		// Decode call (an abi Call envelope), do the work, encode the
		// Reply envelope. Here: an echo.
		return call
	})
	guest.Describe(func() []byte {
		return nil // the encoded abi Description
	})
}
