package secret_test

import (
	"crypto/rand"
	"fmt"

	"github.com/latchid/latch/kernel/secret"
)

func ExampleBox() {
	masterKey := make([]byte, secret.MasterKeySize)
	_, _ = rand.Read(masterKey) // in Latch: secret.LoadOrCreateMasterKey

	box, err := secret.NewBox(masterKey)
	if err != nil {
		panic(err)
	}
	// Bind the value to where it is stored, so it cannot be moved to
	// another row.
	ad := []byte("tenant-1/totp-seed/user-42")
	sealed, err := box.Seal([]byte("JBSWY3DPEHPK3PXP"), ad)
	if err != nil {
		panic(err)
	}
	plain, err := box.Open(sealed, ad)
	fmt.Println(string(plain), err)

	_, err = box.Open(sealed, []byte("tenant-2/totp-seed/user-42"))
	fmt.Println(err)
	// Output:
	// JBSWY3DPEHPK3PXP <nil>
	// opening sealed value: decrypting sealed value failed
}

func ExampleVerifyClientSecret() {
	clientSecret, err := secret.GenerateClientSecret() // shown to the operator once
	if err != nil {
		panic(err)
	}
	stored := secret.HashClientSecret(clientSecret) // kept in store.Client.SecretHash

	fmt.Println(secret.VerifyClientSecret(clientSecret, stored))
	fmt.Println(secret.VerifyClientSecret("guess", stored))
	// Output:
	// true
	// false
}
