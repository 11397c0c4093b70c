package scim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Schema URNs (RFC 7643 sections 8.7 and 8.7.2, RFC 7644 section 3).
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaSPConfig   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	MsgListResponse  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	MsgSearchRequest = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	MsgPatchOp       = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	MsgBulkRequest   = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	MsgBulkResponse  = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	MsgError         = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// Attribute types (RFC 7643 section 2.3).
const (
	TypeString    = "string"
	TypeBoolean   = "boolean"
	TypeDecimal   = "decimal"
	TypeInteger   = "integer"
	TypeDateTime  = "dateTime"
	TypeReference = "reference"
	TypeComplex   = "complex"
	TypeBinary    = "binary"
)

// Attribute is an attribute definition (RFC 7643 section 7), served by
// /Schemas and used to validate input, to compare values with the right
// case sensitivity and to decide what is returned.
type Attribute struct {
	Name            string      `json:"name"`
	Type            string      `json:"type"`
	SubAttributes   []Attribute `json:"subAttributes,omitempty"`
	MultiValued     bool        `json:"multiValued"`
	Description     string      `json:"description,omitempty"`
	Required        bool        `json:"required"`
	CanonicalValues []string    `json:"canonicalValues,omitempty"`
	CaseExact       bool        `json:"caseExact"`
	// Mutability is readOnly, readWrite, immutable or writeOnly.
	Mutability string `json:"mutability"`
	// Returned is always, never, default or request.
	Returned       string   `json:"returned"`
	Uniqueness     string   `json:"uniqueness"`
	ReferenceTypes []string `json:"referenceTypes,omitempty"`
}

// Schema is a schema definition (RFC 7643 section 7).
type Schema struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Attributes  []Attribute `json:"attributes"`
}

// attr returns the definition of the named attribute, case-insensitively.
func attrOf(list []Attribute, name string) *Attribute {
	for i := range list {
		if strings.EqualFold(list[i].Name, name) {
			return &list[i]
		}
	}
	return nil
}

func sa(name, typ string, opts ...func(*Attribute)) Attribute {
	a := Attribute{Name: name, Type: typ, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func multi(a *Attribute)     { a.MultiValued = true }
func required(a *Attribute)  { a.Required = true }
func caseExact(a *Attribute) { a.CaseExact = true }
func readOnly(a *Attribute)  { a.Mutability = "readOnly" }
func always(a *Attribute)    { a.Returned = "always" }
func unique(a *Attribute)    { a.Uniqueness = "server" }
func writeOnly(a *Attribute) {
	a.Mutability = "writeOnly"
	a.Returned = "never"
}
func subs(s ...Attribute) func(*Attribute) {
	return func(a *Attribute) { a.SubAttributes = s }
}
func canon(v ...string) func(*Attribute) {
	return func(a *Attribute) { a.CanonicalValues = v }
}
func refs(v ...string) func(*Attribute) {
	return func(a *Attribute) { a.ReferenceTypes = v }
}
func desc(d string) func(*Attribute) { return func(a *Attribute) { a.Description = d } }

// multiSubs are the sub-attributes of a multi-valued attribute such as
// emails (RFC 7643 section 2.4).
func multiSubs(valueType string, types ...string) func(*Attribute) {
	return subs(
		sa("value", valueType),
		sa("display", TypeString),
		sa("type", TypeString, canon(types...)),
		sa("primary", TypeBoolean),
	)
}

// userSchema is the core User schema (RFC 7643 section 4.1).
var userSchema = Schema{
	ID: SchemaUser, Name: "User", Description: "User Account",
	Attributes: []Attribute{
		sa("userName", TypeString, required, unique, desc("Unique identifier for the User, used to sign in.")),
		sa("name", TypeComplex, subs(
			sa("formatted", TypeString), sa("familyName", TypeString), sa("givenName", TypeString),
			sa("middleName", TypeString), sa("honorificPrefix", TypeString), sa("honorificSuffix", TypeString),
		)),
		sa("displayName", TypeString),
		sa("nickName", TypeString),
		sa("profileUrl", TypeReference, refs("external")),
		sa("title", TypeString),
		sa("userType", TypeString),
		sa("preferredLanguage", TypeString),
		sa("locale", TypeString),
		sa("timezone", TypeString),
		sa("active", TypeBoolean),
		sa("password", TypeString, writeOnly),
		sa("emails", TypeComplex, multi, multiSubs(TypeString, "work", "home", "other")),
		sa("phoneNumbers", TypeComplex, multi, multiSubs(TypeString, "work", "home", "mobile", "fax", "pager", "other")),
		sa("ims", TypeComplex, multi, multiSubs(TypeString, "aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
		sa("photos", TypeComplex, multi, multiSubs(TypeReference, "photo", "thumbnail")),
		sa("addresses", TypeComplex, multi, subs(
			sa("formatted", TypeString), sa("streetAddress", TypeString), sa("locality", TypeString),
			sa("region", TypeString), sa("postalCode", TypeString), sa("country", TypeString),
			sa("type", TypeString, canon("work", "home", "other")), sa("primary", TypeBoolean),
		)),
		sa("groups", TypeComplex, multi, readOnly, subs(
			sa("value", TypeString, readOnly), sa("$ref", TypeReference, readOnly, refs("Group")),
			sa("display", TypeString, readOnly), sa("type", TypeString, readOnly, canon("direct", "indirect")),
		)),
		sa("entitlements", TypeComplex, multi, multiSubs(TypeString)),
		sa("roles", TypeComplex, multi, multiSubs(TypeString)),
		sa("x509Certificates", TypeComplex, multi, multiSubs(TypeBinary)),
	},
}

// enterpriseSchema is the enterprise User extension (RFC 7643 section 4.3).
var enterpriseSchema = Schema{
	ID: SchemaEnterprise, Name: "EnterpriseUser", Description: "Enterprise User",
	Attributes: []Attribute{
		sa("employeeNumber", TypeString),
		sa("costCenter", TypeString),
		sa("organization", TypeString),
		sa("division", TypeString),
		sa("department", TypeString),
		sa("manager", TypeComplex, subs(
			sa("value", TypeString), sa("$ref", TypeReference, refs("User")),
			sa("displayName", TypeString, readOnly),
		)),
	},
}

// groupSchema is the core Group schema (RFC 7643 section 4.2).
var groupSchema = Schema{
	ID: SchemaGroup, Name: "Group", Description: "Group",
	Attributes: []Attribute{
		sa("displayName", TypeString, required, unique),
		sa("members", TypeComplex, multi, subs(
			sa("value", TypeString, func(a *Attribute) { a.Mutability = "immutable" }),
			sa("$ref", TypeReference, func(a *Attribute) { a.Mutability = "immutable" }, refs("User", "Group")),
			sa("display", TypeString, readOnly),
			sa("type", TypeString, func(a *Attribute) { a.Mutability = "immutable" }, canon("User", "Group")),
		)),
	},
}

// commonAttrs are the attributes every resource has (RFC 7643 section 3.1).
var commonAttrs = []Attribute{
	sa("id", TypeString, readOnly, always, caseExact, unique),
	sa("externalId", TypeString, caseExact),
	sa("meta", TypeComplex, readOnly, subs(
		sa("resourceType", TypeString, readOnly, caseExact), sa("created", TypeDateTime, readOnly),
		sa("lastModified", TypeDateTime, readOnly), sa("location", TypeReference, readOnly, caseExact),
		sa("version", TypeString, readOnly, caseExact),
	)),
}

// resourceType describes one resource endpoint (RFC 7643 section 6).
type resourceType struct {
	Name       string
	Endpoint   string
	Core       *Schema
	Extensions []*Schema
}

// schemaFor returns the schema (core or extension) with the URN, or nil.
func (rt *resourceType) schemaFor(urn string) *Schema {
	if urn == "" || strings.EqualFold(urn, rt.Core.ID) {
		return rt.Core
	}
	for _, s := range rt.Extensions {
		if strings.EqualFold(urn, s.ID) {
			return s
		}
	}
	return nil
}

// lookup resolves an attribute path to its definition. A path without a
// URN is looked up in the common attributes and the core schema.
func (rt *resourceType) lookup(p AttrPath) (schema *Schema, a *Attribute, sub *Attribute, err error) {
	s := rt.schemaFor(p.URI)
	if s == nil {
		return nil, nil, nil, fmt.Errorf("unknown schema %q", p.URI)
	}
	if s == rt.Core {
		a = attrOf(commonAttrs, p.Name)
	}
	if a == nil {
		a = attrOf(s.Attributes, p.Name)
	}
	if a == nil {
		return nil, nil, nil, fmt.Errorf("unknown attribute %q", p.String())
	}
	if p.Sub != "" {
		sub = attrOf(a.SubAttributes, p.Sub)
		if sub == nil {
			return nil, nil, nil, fmt.Errorf("unknown attribute %q", p.String())
		}
	}
	return s, a, sub, nil
}

// ParseExtension decodes a custom schema extension definition (the JSON
// form /Schemas serves: id, name, description, attributes). Its id must be
// a URN that is not one of the standard schemas, and attribute types must
// be among the types of RFC 7643 section 2.3. Missing mutability, returned
// and uniqueness default to readWrite, default and none.
func ParseExtension(raw []byte) (*Schema, error) {
	var s Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decoding schema extension: %w", err)
	}
	if !validURN(s.ID) {
		return nil, fmt.Errorf("schema extension id %q: must be a URN", s.ID)
	}
	switch strings.ToLower(s.ID) {
	case strings.ToLower(SchemaUser), strings.ToLower(SchemaGroup), strings.ToLower(SchemaEnterprise):
		return nil, fmt.Errorf("schema extension id %q: is a standard schema", s.ID)
	}
	if len(s.Attributes) == 0 || len(s.Attributes) > 100 {
		return nil, fmt.Errorf("schema extension %q: must define 1 to 100 attributes", s.ID)
	}
	if err := fixAttributes(s.Attributes, 0); err != nil {
		return nil, fmt.Errorf("schema extension %q: %w", s.ID, err)
	}
	if s.Name == "" {
		s.Name = s.ID[strings.LastIndexByte(s.ID, ':')+1:]
	}
	return &s, nil
}

func fixAttributes(list []Attribute, depth int) error {
	seen := map[string]bool{}
	for i := range list {
		a := &list[i]
		if !validAttrName(a.Name) {
			return fmt.Errorf("attribute name %q: must be a letter followed by letters, digits, - or _", a.Name)
		}
		if seen[strings.ToLower(a.Name)] {
			return fmt.Errorf("attribute %q: defined twice", a.Name)
		}
		seen[strings.ToLower(a.Name)] = true
		switch a.Type {
		case TypeString, TypeBoolean, TypeDecimal, TypeInteger, TypeDateTime, TypeReference, TypeBinary:
			if len(a.SubAttributes) > 0 {
				return fmt.Errorf("attribute %q: only complex attributes have sub-attributes", a.Name)
			}
		case TypeComplex:
			if depth > 0 {
				return fmt.Errorf("attribute %q: a sub-attribute cannot be complex", a.Name)
			}
			if len(a.SubAttributes) == 0 {
				return fmt.Errorf("attribute %q: a complex attribute needs sub-attributes", a.Name)
			}
			if err := fixAttributes(a.SubAttributes, depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("attribute %q: unknown type %q", a.Name, a.Type)
		}
		if a.Mutability == "" {
			a.Mutability = "readWrite"
		}
		if a.Returned == "" {
			a.Returned = "default"
		}
		if a.Uniqueness == "" {
			a.Uniqueness = "none"
		}
	}
	return nil
}
