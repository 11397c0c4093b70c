package adaptive

// authenticatorAliases maps the authenticator names found in scripts
// written for WSO2 Identity Server to Latch's authenticator ids. It is the
// one place the mapping lives: authenticationOptions, the "local" keys of
// authenticatorParams and History entries are all read through
// AuthenticatorID.
var authenticatorAliases = map[string]string{
	"BasicAuthenticator":           "password",
	"IdentifierExecutor":           "identifier_first",
	"totp":                         "totp",
	"FIDOAuthenticator":            "webauthn",
	"email-otp-authenticator":      "email_otp",
	"EmailOTP":                     "email_otp",
	"sms-otp-authenticator":        "sms_otp",
	"SMSOTP":                       "sms_otp",
	"MagicLinkAuthenticator":       "magic_link",
	"backup-code-authenticator":    "backup_code",
	"x509CertificateAuthenticator": "x509",
	"SessionExecutor":              "session",
}

// AuthenticatorID returns the Latch id for an authenticator name a script
// uses: a WSO2 name is translated, anything else is returned unchanged.
func AuthenticatorID(name string) string {
	if id, ok := authenticatorAliases[name]; ok {
		return id
	}
	return name
}

// AuthenticatorAliases returns a copy of the alias table (WSO2 name to Latch
// id), for documentation and admin tooling.
func AuthenticatorAliases() map[string]string {
	m := make(map[string]string, len(authenticatorAliases))
	for k, v := range authenticatorAliases {
		m[k] = v
	}
	return m
}
