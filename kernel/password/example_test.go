package password_test

import (
	"fmt"

	"github.com/latchid/latch/kernel/password"
)

func ExampleHasher_Verify() {
	old := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	stored, err := old.Hash("hunter2")
	if err != nil {
		panic(err)
	}

	// Later the operator raises the parameters.
	h := password.NewHasher(password.Params{Memory: 128, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	ok, needsRehash, err := h.Verify("hunter2", stored)
	fmt.Println(ok, needsRehash, err)
	if ok && needsRehash {
		stored, _ = h.Hash("hunter2") // and save it with the user
	}
	ok, needsRehash, err = h.Verify("hunter2", stored)
	fmt.Println(ok, needsRehash, err)
	// Output:
	// true true <nil>
	// true false <nil>
}
