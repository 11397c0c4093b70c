package selfservice

import "strings"

// messages holds the pages' and mails' texts by language; English is the
// fallback.
var messages = map[string]map[string]string{
	"en": {
		"signup.title":            "Create an account",
		"signup.submit":           "Sign up",
		"signup.username":         "Choose a username: letters, digits and symbols, without spaces or /.",
		"signup.email":            "Enter a valid email address.",
		"signup.purpose":          "This agreement is required:",
		"signup.taken":            "That username is not available.",
		"signup.sent":             "We sent you an email. Open the link in it to activate your account.",
		"verify.title":            "Verify your email",
		"verify.done":             "Your email address is verified and your account is active. You can sign in now.",
		"token.invalid":           "This link is not valid or has expired.",
		"recover.title":           "Reset your password",
		"recover.intro":           "Enter your username or email address. If we know the account, we send a link to reset its password.",
		"recover.submit":          "Send link",
		"recover.sent":            "If the account exists, we sent a link to its email address. The link works once and for a limited time.",
		"reset.title":             "Choose a new password",
		"reset.submit":            "Set password",
		"reset.done":              "Your password is changed and your sessions are signed out. You can sign in now.",
		"password.mismatch":       "The two passwords differ.",
		"field.username":          "Username",
		"field.email":             "Email address",
		"field.identifier":        "Username or email address",
		"field.new_password":      "New password",
		"field.confirm_password":  "Repeat the new password",
		"mail.verify.subject":     "Verify your email address",
		"mail.verify.intro":       "Open this link to verify your email address and activate your account:",
		"mail.recover.subject":    "Reset your password",
		"mail.recover.intro":      "Someone asked to reset the password of your account. If it was you, open this link; otherwise ignore this email:",
		"questions.title":         "Security questions",
		"questions.intro":         "Answer at least %d of these questions. The answers let you reset your password if you lose it; case, spaces and punctuation do not matter.",
		"questions.submit":        "Save answers",
		"questions.short":         "An answer must have at least two letters or digits.",
		"questions.few":           "Answer at least %d questions.",
		"questions.saved":         "Your answers are saved.",
		"recover.by_questions":    "Answer security questions instead",
		"recover.questions_intro": "Enter your username to answer your security questions.",
		"recover.answer":          "Answer these questions to set a new password.",
		"recover.wrong":           "The answers are not correct.",
		"recover.too_many":        "Too many wrong answers. Ask for a link by email instead.",
		"login.continue":          "Continue",
		"captcha.failed":          "Please complete the security check.",
		"captcha.title":           "Security check",
		"captcha.intro":           "There were several failed sign-ins from your network. Complete this check to continue.",
	},
	"de": { //nolint:gosec // G101: page texts, not credentials.
		"signup.title":            "Konto anlegen",
		"signup.submit":           "Registrieren",
		"signup.username":         "Wählen Sie einen Benutzernamen: Buchstaben, Ziffern und Zeichen, ohne Leerzeichen oder /.",
		"signup.email":            "Geben Sie eine gültige E-Mail-Adresse ein.",
		"signup.purpose":          "Diese Zustimmung ist erforderlich:",
		"signup.taken":            "Dieser Benutzername ist nicht verfügbar.",
		"signup.sent":             "Wir haben Ihnen eine E-Mail geschickt. Öffnen Sie den Link darin, um Ihr Konto zu aktivieren.",
		"verify.title":            "E-Mail-Adresse bestätigen",
		"verify.done":             "Ihre E-Mail-Adresse ist bestätigt und Ihr Konto aktiv. Sie können sich jetzt anmelden.",
		"token.invalid":           "Dieser Link ist ungültig oder abgelaufen.",
		"recover.title":           "Passwort zurücksetzen",
		"recover.intro":           "Geben Sie Ihren Benutzernamen oder Ihre E-Mail-Adresse ein. Ist uns das Konto bekannt, senden wir einen Link zum Zurücksetzen.",
		"recover.submit":          "Link senden",
		"recover.sent":            "Falls das Konto existiert, haben wir einen Link an seine E-Mail-Adresse geschickt. Er gilt einmal und nur für begrenzte Zeit.",
		"reset.title":             "Neues Passwort wählen",
		"reset.submit":            "Passwort setzen",
		"reset.done":              "Ihr Passwort ist geändert, Ihre Sitzungen sind abgemeldet. Sie können sich jetzt anmelden.",
		"password.mismatch":       "Die beiden Passwörter stimmen nicht überein.",
		"field.username":          "Benutzername",
		"field.email":             "E-Mail-Adresse",
		"field.identifier":        "Benutzername oder E-Mail-Adresse",
		"field.new_password":      "Neues Passwort",
		"field.confirm_password":  "Neues Passwort wiederholen",
		"mail.verify.subject":     "Bestätigen Sie Ihre E-Mail-Adresse",
		"mail.verify.intro":       "Öffnen Sie diesen Link, um Ihre E-Mail-Adresse zu bestätigen und Ihr Konto zu aktivieren:",
		"mail.recover.subject":    "Passwort zurücksetzen",
		"mail.recover.intro":      "Jemand hat das Zurücksetzen des Passworts Ihres Kontos angefordert. Waren Sie es, öffnen Sie diesen Link; sonst ignorieren Sie diese E-Mail:",
		"questions.title":         "Sicherheitsfragen",
		"questions.intro":         "Beantworten Sie mindestens %d dieser Fragen. Mit den Antworten können Sie ein vergessenes Passwort zurücksetzen; Groß- und Kleinschreibung, Leerzeichen und Satzzeichen zählen nicht.",
		"questions.submit":        "Antworten speichern",
		"questions.short":         "Eine Antwort braucht mindestens zwei Buchstaben oder Ziffern.",
		"questions.few":           "Beantworten Sie mindestens %d Fragen.",
		"questions.saved":         "Ihre Antworten sind gespeichert.",
		"recover.by_questions":    "Stattdessen Sicherheitsfragen beantworten",
		"recover.questions_intro": "Geben Sie Ihren Benutzernamen ein, um Ihre Sicherheitsfragen zu beantworten.",
		"recover.answer":          "Beantworten Sie diese Fragen, um ein neues Passwort zu setzen.",
		"recover.wrong":           "Die Antworten sind nicht richtig.",
		"recover.too_many":        "Zu viele falsche Antworten. Fordern Sie stattdessen einen Link per E-Mail an.",
		"login.continue":          "Weiter",
		"captcha.failed":          "Bitte lösen Sie die Sicherheitsprüfung.",
		"captcha.title":           "Sicherheitsprüfung",
		"captcha.intro":           "Aus Ihrem Netz gab es mehrere fehlgeschlagene Anmeldungen. Lösen Sie diese Prüfung, um fortzufahren.",
	},
}

func tr(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	return messages["en"][key]
}

// language picks en or de from an Accept-Language header.
func language(accept string) string {
	for _, part := range strings.Split(accept, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "de"):
			return "de"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "en"
}
