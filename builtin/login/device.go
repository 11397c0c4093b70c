package login

import (
	"github.com/gofiber/fiber/v2"
)

// deviceMessages are the texts of the device pages (OAuth 2.0 Device
// Authorization Grant, RFC 8628 section 3.3), by language as messages.
var deviceMessages = map[string]map[string]string{
	"en": {
		"device.title":    "Connect a device",
		"device.intro":    "Enter the code shown on your device.",
		"device.label":    "Code",
		"device.submit":   "Continue",
		"device.invalid":  "This code is not valid or has expired. Check the code on your device.",
		"device.approved": "Your device is connected. You can return to it now.",
		"device.denied":   "Access was refused. You can close this page.",
		"device.limited":  "Too many wrong codes were entered. Wait a few minutes, then try again.",
	},
	"de": {
		"device.title":    "Gerät verbinden",
		"device.intro":    "Geben Sie den Code ein, den Ihr Gerät anzeigt.",
		"device.label":    "Code",
		"device.submit":   "Weiter",
		"device.invalid":  "Dieser Code ist ungültig oder abgelaufen. Prüfen Sie den Code auf Ihrem Gerät.",
		"device.approved": "Ihr Gerät ist verbunden. Sie können jetzt zu ihm zurückkehren.",
		"device.denied":   "Der Zugriff wurde abgelehnt. Sie können diese Seite schließen.",
		"device.limited":  "Es wurden zu viele falsche Codes eingegeben. Warten Sie einige Minuten und versuchen Sie es dann erneut.",
	},
}

// deviceText returns a device page text in lang, else in English.
func deviceText(lang, key string) string {
	if v, ok := deviceMessages[lang][key]; ok {
		return v
	}
	return deviceMessages["en"][key]
}

// Device describes the page where a user enters a device's user code.
type Device struct {
	Page
	// Action is the path the form posts to (below the public URL's path).
	Action string
	// UserCode pre-fills the code (from verification_uri_complete).
	UserCode string
	// Invalid says the code entered was not accepted.
	Invalid bool
	// Limited says too many wrong codes were entered (RFC 8628 section
	// 5.1): the page answers 429 and says to wait.
	Limited bool
}

type devicePage struct {
	page
	Action, CSRF, Label, Submit, UserCode string
}

// RenderDevice shows the user-code page. Its form posts "user_code" and
// "csrf" to Action.
func (s *Service) RenderDevice(c *fiber.Ctx, d Device) error {
	csrf, err := s.CSRFToken(c)
	if err != nil {
		return err
	}
	pg := s.pageFor(c, d.Page, "")
	pg.Title = deviceText(pg.Lang, "device.title")
	pg.Message = deviceText(pg.Lang, "device.intro")
	status := fiber.StatusOK
	if d.Invalid {
		pg.Error = deviceText(pg.Lang, "device.invalid")
		status = fiber.StatusBadRequest
	}
	if d.Limited {
		pg.Error = deviceText(pg.Lang, "device.limited")
		status = fiber.StatusTooManyRequests
	}
	return s.render(c, status, "device", devicePage{
		page: pg, Action: s.basePath + d.Action, CSRF: csrf, UserCode: d.UserCode,
		Label: deviceText(pg.Lang, "device.label"), Submit: deviceText(pg.Lang, "device.submit"),
	})
}

// RenderDeviceDone tells the user the device was connected (approved) or
// refused.
func (s *Service) RenderDeviceDone(c *fiber.Ctx, p Page, approved bool) error {
	pg := s.pageFor(c, p, "")
	pg.Title = deviceText(pg.Lang, "device.title")
	pg.Message = deviceText(pg.Lang, "device.denied")
	if approved {
		pg.Message = deviceText(pg.Lang, "device.approved")
	}
	return s.render(c, fiber.StatusOK, "info", infoPage{page: pg})
}
