package adaptive

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/dop251/goja"
)

// Cookie values written by setCookie with sign or encrypt:
//
//	signed:    <value>.<base64url HMAC-SHA256(key, name "=" value)>
//	encrypted: ~<base64url AES-256-GCM sealed value, name as associated data>
//
// Both keys come from Options.CookieKey. A cookie moved to another name
// does not verify or decrypt.
const encryptedPrefix = "~"

func (e *Engine) signCookie(name, value string) string {
	m := hmac.New(sha256.New, e.signKey)
	m.Write([]byte(name + "=" + value))
	return value + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (e *Engine) verifyCookie(name, signed string) (string, bool) {
	i := strings.LastIndexByte(signed, '.')
	if i < 0 {
		return "", false
	}
	value := signed[:i]
	got, err := base64.RawURLEncoding.DecodeString(signed[i+1:])
	if err != nil {
		return "", false
	}
	m := hmac.New(sha256.New, e.signKey)
	m.Write([]byte(name + "=" + value))
	return value, hmac.Equal(got, m.Sum(nil))
}

func (e *Engine) encryptCookie(name, value string) (string, error) {
	sealed, err := e.box.Seal([]byte(value), []byte("adaptive-cookie:"+name))
	if err != nil {
		return "", err
	}
	return encryptedPrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

func (e *Engine) decryptCookie(name, v string) (string, bool) {
	raw, ok := strings.CutPrefix(v, encryptedPrefix)
	if !ok {
		return "", false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", false
	}
	plain, err := e.box.Open(sealed, []byte("adaptive-cookie:"+name))
	if err != nil {
		return "", false
	}
	return string(plain), true
}

// validCookieName accepts an RFC 6265 token.
func validCookieName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

// validCookieValue accepts RFC 6265 cookie-octets.
func validCookieValue(s string) bool {
	if len(s) > 4096 {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

func boolProp(o *goja.Object, name string) bool {
	if o == nil {
		return false
	}
	v := o.Get(name)
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return false
	}
	if s, ok := v.Export().(string); ok {
		return s == "true"
	}
	return v.ToBoolean()
}

func strProp(o *goja.Object, name string) string {
	if o == nil {
		return ""
	}
	v := o.Get(name)
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return ""
	}
	return v.String()
}

// setCookie(response, name, value, {max-age, path, domain, httpOnly,
// secure, sameSite, encrypt, sign}) asks the caller to set a cookie.
func fnSetCookie(r *run, c goja.FunctionCall) goja.Value {
	name, value := c.Argument(1).String(), c.Argument(2).String()
	if !validCookieName(name) {
		throw(r, "setCookie: %q is not a valid cookie name", name)
	}
	if !validCookieValue(value) {
		throw(r, "setCookie: the value of %s holds characters a cookie cannot carry (encode it first)", name)
	}
	props, _ := isObject(c.Argument(3))
	ck := &Cookie{
		Name: name, Path: strProp(props, "path"), Domain: strProp(props, "domain"),
		HTTPOnly: boolProp(props, "httpOnly"), Secure: boolProp(props, "secure"), SameSite: strProp(props, "sameSite"),
	}
	for _, k := range []string{"max-age", "maxAge"} {
		if props != nil {
			if v := props.Get(k); v != nil && !goja.IsUndefined(v) {
				ck.MaxAge = int(v.ToInteger())
			}
		}
	}
	switch ss := strings.ToLower(ck.SameSite); ss {
	case "", "lax", "strict", "none":
	default:
		throw(r, "setCookie: sameSite must be Lax, Strict or None, not %q", ss)
	}
	encrypt, sign := boolProp(props, "encrypt"), boolProp(props, "sign")
	if (encrypt || sign) && r.e.box == nil {
		throw(r, "setCookie: signed and encrypted cookies need a cookie key in the engine's options")
	}
	switch {
	case encrypt:
		v, err := r.e.encryptCookie(name, value)
		if err != nil {
			throw(r, "setCookie: encrypting: %v", err)
		}
		value = v
	case sign:
		value = r.e.signCookie(name, value)
	}
	ck.Value = value
	r.effect(Effect{Kind: EffectSetCookie, Cookie: ck})
	return goja.Undefined()
}

// getCookieValue(request, name, {decrypt, validateSignature}) returns the
// cookie's value, or null when it is absent, does not decrypt or its
// signature does not verify.
func fnGetCookieValue(r *run, c goja.FunctionCall) goja.Value {
	name := c.Argument(1).String()
	v, ok := r.in.Request.Cookies[name]
	if !ok {
		return goja.Null()
	}
	props, _ := isObject(c.Argument(2))
	decrypt, verify := boolProp(props, "decrypt"), boolProp(props, "validateSignature")
	if (decrypt || verify) && r.e.box == nil {
		throw(r, "getCookieValue: signed and encrypted cookies need a cookie key in the engine's options")
	}
	switch {
	case decrypt:
		if v, ok = r.e.decryptCookie(name, v); !ok {
			return goja.Null()
		}
	case verify:
		if v, ok = r.e.verifyCookie(name, v); !ok {
			return goja.Null()
		}
	}
	return r.v.rt.ToValue(v)
}
