package config

// MailConfig is the SMTP server the self-service pages (sign-up
// verification, password recovery) send mail through
// (docs/authentication.md, "Account protection and self-service").
type MailConfig struct {
	// SMTPAddr is the server's host:port. Empty: no mail is sent, and
	// sign-up and recovery by email are unavailable.
	SMTPAddr string `yaml:"smtp_addr"`
	// From is the sender address; required with SMTPAddr.
	From string `yaml:"from"`
	// Username authenticates (SMTP AUTH PLAIN) when set.
	Username string `yaml:"username"`
	// Password is the SMTP password. Masked when printed.
	Password Secret `yaml:"password"`
	// TLSMode is starttls (the default when empty: STARTTLS is
	// required), tls (implicit TLS, port 465) or none (development only).
	TLSMode string `yaml:"tls_mode"`
}

// AdaptiveConfig configures the adaptive script engine (builtin/adaptive).
type AdaptiveConfig struct {
	// HTTPAllow lists the hosts scripts' httpGet and httpPost may reach:
	// exact names ("risk.example.com") or suffix patterns
	// ("*.example.com"). Comma-separated in the environment. Empty:
	// every call is refused.
	HTTPAllow []string `yaml:"http_allow"`
}

// CaptchaConfig is the CAPTCHA provider the self-service pages can show
// (tenant setting self_service.captcha chooses the pages): a
// siteverify-style service (docs/authentication.md).
type CaptchaConfig struct {
	// VerifyURL is the provider's verification endpoint (https). Empty:
	// no CAPTCHA.
	VerifyURL string `yaml:"verify_url"`
	// Secret is the server-side key sent to VerifyURL. Masked when
	// printed.
	Secret Secret `yaml:"secret"`
	// SiteKey is the public key of the widget.
	SiteKey string `yaml:"site_key"`
	// ScriptURL is the provider's widget script (https).
	ScriptURL string `yaml:"script_url"`
	// WidgetClass is the class of the element the script turns into the
	// widget. Default "captcha".
	WidgetClass string `yaml:"widget_class"`
	// ResponseField is the form field the widget puts its token in.
	// Default "captcha_response".
	ResponseField string `yaml:"response_field"`
	// Insecure lets VerifyURL be plain http on a private or
	// loopback address (development and tests only). Default false.
	Insecure bool `yaml:"insecure"`
}
