package saml

import (
	"encoding/base64"
	"encoding/xml"
	"time"

	csaml "github.com/crewjam/saml"
	"github.com/gofiber/fiber/v2"
)

// metadataCacheDuration tells SPs how long to keep the metadata; shorter
// than a key rotation's overlap, so SPs see a new certificate in time.
const metadataCacheDuration = 12 * time.Hour

// metadata serves the IdP's metadata (SAML metadata section 2.4.3): its
// signing certificate, NameID formats and the SSO and SLO endpoints over
// both bindings.
func (s *Service) metadata(c *fiber.Ctx, t tenant) error {
	k, err := s.key(c.UserContext(), t)
	if err != nil {
		return s.internal(c, t, err)
	}
	no := false
	certData := base64.StdEncoding.EncodeToString(k.cert.Raw)
	ed := csaml.EntityDescriptor{
		EntityID:      t.entityID,
		CacheDuration: metadataCacheDuration,
		IDPSSODescriptors: []csaml.IDPSSODescriptor{{
			SSODescriptor: csaml.SSODescriptor{
				RoleDescriptor: csaml.RoleDescriptor{
					ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
					KeyDescriptors: []csaml.KeyDescriptor{{
						Use: "signing",
						KeyInfo: csaml.KeyInfo{X509Data: csaml.X509Data{
							X509Certificates: []csaml.X509Certificate{{Data: certData}},
						}},
					}},
				},
				SingleLogoutServices: []csaml.Endpoint{
					{Binding: csaml.HTTPRedirectBinding, Location: t.sloURL},
					{Binding: csaml.HTTPPostBinding, Location: t.sloURL},
				},
				NameIDFormats: []csaml.NameIDFormat{NameIDPersistent, NameIDTransient, NameIDEmail, NameIDUnspecified},
			},
			WantAuthnRequestsSigned: &no,
			SingleSignOnServices: []csaml.Endpoint{
				{Binding: csaml.HTTPRedirectBinding, Location: t.ssoURL},
				{Binding: csaml.HTTPPostBinding, Location: t.ssoURL},
			},
		}},
	}
	b, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return s.internal(c, t, err)
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderContentType, "application/samlmetadata+xml")
	return c.Send(append([]byte(xml.Header), b...))
}
