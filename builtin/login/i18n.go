package login

import (
	"strings"

	"golang.org/x/text/language"
)

// messages holds the pages' texts by language and key. English is the
// fallback for a key a language lacks. Add a language by adding a map
// here and its tag to supported.
var messages = map[string]map[string]string{
	"en": { //nolint:gosec // G101: page texts, not credentials.
		"login.title":          "Sign in",
		"login.submit":         "Continue",
		"login.options":        "Other ways to sign in",
		"login.failed":         "The username or password is not correct.",
		"login.locked":         "This account is locked. Try again later or contact your administrator.",
		"login.disabled":       "This account is disabled. Contact your administrator.",
		"login.expired":        "Your sign-in took too long. Please start again.",
		"login.error":          "Signing in is not possible right now. Please try again later.",
		"login.refused":        "Signing in to this application is not allowed.",
		"login.throttled":      "Too many sign-in attempts from your network. Please wait a few minutes and try again.",
		"login.incomplete":     "This sign-in cannot finish: no step confirmed who you are. Contact the application's administrator.",
		"login.idle":           "This account is locked because it was not used for a long time. Contact your administrator.",
		"login.suspended":      "This account is suspended. Contact your administrator.",
		"pwchange.title":       "Set a new password",
		"pwchange.forced":      "Your administrator asks you to set a new password before you continue.",
		"pwchange.expired":     "Your password has expired. Set a new password to continue.",
		"password.mismatch":    "The two passwords differ.",
		"password.refused":     "This password cannot be used.",
		"field.new_pw":         "New password",
		"field.confirm_pw":     "Repeat the new password",
		"field.username":       "Username",
		"field.password":       "Password",
		"field.code":           "Code",
		"consent.title":        "Allow access?",
		"consent.intro":        "%s asks to:",
		"consent.remember":     "Remember my decision",
		"consent.allow":        "Allow",
		"consent.deny":         "Deny",
		"logout.title":         "Sign out",
		"logout.confirm":       "Do you want to sign out?",
		"logout.submit":        "Sign out",
		"logout.done":          "You are signed out.",
		"logout.back":          "Continue",
		"error.title":          "Something went wrong",
		"error.request":        "The request is not valid.",
		"error.csrf":           "Your form expired. Please go back and try again.",
		"scope.openid":         "Sign you in",
		"scope.profile":        "See your name and profile",
		"scope.email":          "See your email address",
		"scope.phone":          "See your phone number",
		"scope.address":        "See your address",
		"scope.offline_access": "Stay connected when you are away",

		// The WebAuthn step page (webauthn.go).
		"field.nickname":        "Name for this passkey (optional)",
		"webauthn.intro.get":    "Sign in with your passkey or security key.",
		"webauthn.intro.create": "Create a passkey for this account. Your device will ask you to confirm with your fingerprint, face, PIN or security key.",
		"webauthn.start.get":    "Use a passkey",
		"webauthn.start.create": "Create a passkey",
		"webauthn.waiting":      "Follow the instructions of your browser or security key.",
		"webauthn.failed":       "The passkey could not be used. Please try again.",
		"webauthn.unsupported":  "This browser does not support passkeys. Choose another way to sign in.",
		"webauthn.noscript":     "Passkeys need JavaScript. Turn JavaScript on, or choose another way to sign in.",
	},
	"de": { //nolint:gosec // G101: page texts, not credentials.
		"login.title":          "Anmelden",
		"login.submit":         "Weiter",
		"login.options":        "Andere Anmeldemöglichkeiten",
		"login.failed":         "Benutzername oder Passwort ist falsch.",
		"login.locked":         "Dieses Konto ist gesperrt. Versuchen Sie es später erneut oder wenden Sie sich an Ihre Administration.",
		"login.disabled":       "Dieses Konto ist deaktiviert. Wenden Sie sich an Ihre Administration.",
		"login.expired":        "Die Anmeldung hat zu lange gedauert. Bitte beginnen Sie erneut.",
		"login.error":          "Die Anmeldung ist gerade nicht möglich. Bitte versuchen Sie es später erneut.",
		"login.refused":        "Die Anmeldung bei dieser Anwendung ist nicht erlaubt.",
		"login.throttled":      "Zu viele Anmeldeversuche aus Ihrem Netz. Bitte warten Sie einige Minuten und versuchen Sie es erneut.",
		"login.incomplete":     "Diese Anmeldung kann nicht abgeschlossen werden: kein Schritt hat Ihre Identität bestätigt. Wenden Sie sich an die Administration der Anwendung.",
		"login.idle":           "Dieses Konto ist gesperrt, weil es lange nicht benutzt wurde. Wenden Sie sich an Ihre Administration.",
		"login.suspended":      "Dieses Konto ist gesperrt. Wenden Sie sich an Ihre Administration.",
		"pwchange.title":       "Neues Passwort setzen",
		"pwchange.forced":      "Ihre Administration bittet Sie, vor dem Fortfahren ein neues Passwort zu setzen.",
		"pwchange.expired":     "Ihr Passwort ist abgelaufen. Setzen Sie ein neues Passwort, um fortzufahren.",
		"password.mismatch":    "Die beiden Passwörter stimmen nicht überein.",
		"password.refused":     "Dieses Passwort kann nicht verwendet werden.",
		"field.new_pw":         "Neues Passwort",
		"field.confirm_pw":     "Neues Passwort wiederholen",
		"field.username":       "Benutzername",
		"field.password":       "Passwort",
		"field.code":           "Code",
		"consent.title":        "Zugriff erlauben?",
		"consent.intro":        "%s möchte:",
		"consent.remember":     "Entscheidung merken",
		"consent.allow":        "Erlauben",
		"consent.deny":         "Ablehnen",
		"logout.title":         "Abmelden",
		"logout.confirm":       "Möchten Sie sich abmelden?",
		"logout.submit":        "Abmelden",
		"logout.done":          "Sie sind abgemeldet.",
		"logout.back":          "Weiter",
		"error.title":          "Etwas ist schiefgelaufen",
		"error.request":        "Die Anfrage ist ungültig.",
		"error.csrf":           "Ihr Formular ist abgelaufen. Bitte gehen Sie zurück und versuchen Sie es erneut.",
		"scope.openid":         "Sie anmelden",
		"scope.profile":        "Ihren Namen und Ihr Profil sehen",
		"scope.email":          "Ihre E-Mail-Adresse sehen",
		"scope.phone":          "Ihre Telefonnummer sehen",
		"scope.address":        "Ihre Adresse sehen",
		"scope.offline_access": "Verbunden bleiben, wenn Sie nicht da sind",

		// The WebAuthn step page (webauthn.go).
		"field.nickname":        "Name für diesen Passkey (optional)",
		"webauthn.intro.get":    "Melden Sie sich mit Ihrem Passkey oder Sicherheitsschlüssel an.",
		"webauthn.intro.create": "Erstellen Sie einen Passkey für dieses Konto. Ihr Gerät bittet Sie um Bestätigung per Fingerabdruck, Gesicht, PIN oder Sicherheitsschlüssel.",
		"webauthn.start.get":    "Passkey verwenden",
		"webauthn.start.create": "Passkey erstellen",
		"webauthn.waiting":      "Folgen Sie den Anweisungen Ihres Browsers oder Sicherheitsschlüssels.",
		"webauthn.failed":       "Der Passkey konnte nicht verwendet werden. Bitte versuchen Sie es erneut.",
		"webauthn.unsupported":  "Dieser Browser unterstützt keine Passkeys. Wählen Sie eine andere Anmeldemöglichkeit.",
		"webauthn.noscript":     "Passkeys benötigen JavaScript. Schalten Sie JavaScript ein oder wählen Sie eine andere Anmeldemöglichkeit.",
	},
}

// supported lists the languages of messages; the first is the default.
var supported = []language.Tag{language.English, language.German}

var matcher = language.NewMatcher(supported)

// pickLanguage chooses the page language from OpenID Connect's ui_locales
// (space-separated, in order of preference) and then the Accept-Language
// header.
func pickLanguage(uiLocales, acceptLanguage string) string {
	var prefs []language.Tag
	for _, l := range strings.Fields(uiLocales) {
		if t, err := language.Parse(l); err == nil {
			prefs = append(prefs, t)
		}
	}
	if al, _, err := language.ParseAcceptLanguage(acceptLanguage); err == nil {
		prefs = append(prefs, al...)
	}
	_, i, _ := matcher.Match(prefs...)
	base, _ := supported[i].Base()
	return base.String()
}

// text returns the message key in lang, in English when lang lacks it, or
// the key itself when no language has it.
func text(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	if m, ok := messages["en"][key]; ok {
		return m
	}
	return key
}

// HasText reports whether key is a known message.
func hasText(key string) bool {
	_, ok := messages["en"][key]
	return ok
}
