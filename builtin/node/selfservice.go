package node

import (
	"cmp"
	"fmt"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/selfservice"
)

// openSelfService builds the account protection and self-service pages
// (builtin/selfservice): the tenants' password policies, the password
// change a login requires, self sign-up and recovery. Logins apply it, and
// its pages are mounted.
func (n *Node) openSelfService(lg *login.Service) (*selfservice.Service, error) {
	m := n.cfg.Mail
	switch m.TLSMode {
	case "", "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("starting self-service: mail.tls_mode %q is not starttls, tls or none", m.TLSMode)
	}
	if m.SMTPAddr != "" && m.From == "" {
		return nil, fmt.Errorf("starting self-service: mail.from is required with mail.smtp_addr")
	}
	var captcha selfservice.Captcha
	cc := n.cfg.Captcha
	if cc.VerifyURL != "" {
		sv, err := selfservice.NewSiteVerify(cc.VerifyURL, cc.Secret.Value(), cc.Insecure)
		if err != nil {
			return nil, fmt.Errorf("starting self-service: %w", err)
		}
		captcha = sv
	}
	widget := selfservice.Widget{ScriptURL: cc.ScriptURL, Class: cmp.Or(cc.WidgetClass, "captcha"), SiteKey: cc.SiteKey, ResponseField: cmp.Or(cc.ResponseField, "captcha_response")}
	ss, err := selfservice.New(selfservice.Deps{
		Captcha: captcha, Widget: widget,
		Store: n.store, Hasher: n.hasher, Login: lg, Authenticators: n.extensions,
		PublicURL: n.cfg.PublicURL, Log: n.log, Audit: n.bus,
		Mail: selfservice.Mail{Addr: m.SMTPAddr, From: m.From, Username: m.Username, Password: m.Password.Value(), TLS: m.TLSMode},
	})
	if err != nil {
		return nil, err
	}
	lg.UsePasswords(ss)
	if captcha != nil {
		lg.UseCaptcha(ss.LoginCaptchaURL)
	}
	ss.Mount(n.server.App())
	return ss, nil
}
