package saml_test

import (
	"fmt"

	"github.com/latchid/latch/builtin/saml"
)

// DecodeSPConfig checks an SP's settings.saml without fetching anything:
// the checks an admin API can run when a client is written.
func ExampleDecodeSPConfig() {
	_, err := saml.DecodeSPConfig("https://app.example.com/saml/metadata", map[string]any{
		"acs_urls":       []any{"https://app.example.com/saml/acs"},
		"name_id_format": "emailAddress",
		"attributes":     map[string]any{"mail": "email", "memberOf": "groups"},
	})
	fmt.Println(err)
	_, err = saml.DecodeSPConfig("https://app.example.com/saml/metadata", map[string]any{
		"acs_urls":          []any{"https://app.example.com/saml/acs"},
		"encryption_method": "des",
	})
	fmt.Println(err)
	// Output:
	// <nil>
	// settings.saml.encryption_method "des" is not one of aes128-gcm, aes256-gcm, aes128-cbc, aes256-cbc
}
