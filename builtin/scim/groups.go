package scim

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore"
)

// maxGroupMembers bounds the members one group write may name.
const maxGroupMembers = 1000

// groupVersion is a group's entity tag. Groups have no stored version, so
// the tag is a hash of what the resource shows: the record's update time,
// name, external id and member ids.
func groupVersion(g store.Group, members []store.User) string {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(g.UpdatedAt.UnixNano()))
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(g.Name))
	if x, ok := g.Attributes["externalId"].(string); ok {
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(x))
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	for _, id := range ids {
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(id))
	}
	return etag(strconv.FormatUint(h.Sum64(), 36))
}

func (s *Service) groupResource(g store.Group, members []store.User, base string) map[string]any {
	r := map[string]any{"schemas": []any{SchemaGroup}, "id": g.ID, "displayName": g.Name}
	if x, ok := g.Attributes["externalId"].(string); ok && x != "" {
		r["externalId"] = x
	}
	if len(members) > 0 {
		ml := make([]any, len(members))
		for i, u := range members {
			ml[i] = map[string]any{"value": u.ID, "display": u.Username, "$ref": base + "/Users/" + u.ID, "type": "User"}
		}
		r["members"] = ml
	}
	meta := map[string]any{
		"resourceType": "Group",
		"location":     base + "/Groups/" + g.ID,
		"version":      groupVersion(g, members),
	}
	// A user store domain outside the database may keep no timestamps.
	if !g.CreatedAt.IsZero() {
		meta["created"] = g.CreatedAt.UTC().Format(time.RFC3339Nano)
		meta["lastModified"] = g.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	r["meta"] = meta
	return r
}

func (s *Service) groupMembers(rc *reqCtx, groupID string) ([]store.User, *Error) {
	p := store.Page{Limit: store.MaxPageLimit}
	var out []store.User
	for {
		us, next, err := s.d.Store.ListGroupMembers(rc.ctx, rc.tenant.ID, groupID, p)
		if err != nil {
			return nil, storeErr("group", err)
		}
		out = append(out, us...)
		if next == "" {
			return out, nil
		}
		p.After = next
	}
}

func (s *Service) loadGroup(rc *reqCtx, id string) (store.Group, []store.User, map[string]any, *Error) {
	if m, ok := s.dirOwns(rc, id); ok {
		// Only writes load a group this way; GET reads getDirGroup.
		return store.Group{}, nil, nil, newErr(http.StatusBadRequest, ErrTypeMutability,
			"groups of user store domain %s are managed in that store, not through SCIM", m.Domain)
	}
	if id == "" || len(id) > 64 {
		return store.Group{}, nil, nil, notFound("group")
	}
	g, err := s.d.Store.GetGroup(rc.ctx, rc.tenant.ID, id)
	if err != nil {
		return store.Group{}, nil, nil, storeErr("group", err)
	}
	members, serr := s.groupMembers(rc, g.ID)
	if serr != nil {
		return store.Group{}, nil, nil, serr
	}
	return g, members, s.groupResource(g, members, rc.base), nil
}

// applyGroup writes the full resource r onto g and returns the member ids
// it names, each checked to be a user of the tenant.
func (s *Service) applyGroup(rc *reqCtx, r map[string]any, g *store.Group) ([]string, *Error) {
	name, _ := r["displayName"].(string)
	switch {
	case name == "":
		return nil, badRequest(ErrTypeInvalidValue, "displayName: is required")
	case len(name) > maxUserNameLen:
		return nil, badRequest(ErrTypeInvalidValue, "displayName: must be at most %d bytes", maxUserNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return nil, badRequest(ErrTypeInvalidValue, "displayName: must not contain control characters")
	}
	g.Name = name
	attrs := map[string]any{}
	for k, v := range g.Attributes {
		attrs[k] = v
	}
	delete(attrs, "externalId")
	if x, ok := r["externalId"].(string); ok {
		attrs["externalId"] = x
	}
	g.Attributes = attrs
	list, _ := r["members"].([]any)
	if len(list) > maxGroupMembers {
		return nil, badRequest(ErrTypeTooMany, "members: at most %d per request", maxGroupMembers)
	}
	var ids []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		id, _ := m["value"].(string)
		if id == "" {
			return nil, badRequest(ErrTypeInvalidValue, "members: every member needs a value (a user id)")
		}
		if t, ok := m["type"].(string); ok && !strings.EqualFold(t, "User") {
			return nil, badRequest(ErrTypeInvalidValue, "members: only users can be members (nested groups are not supported)")
		}
		if slices.Contains(ids, id) {
			continue
		}
		if _, ok := s.dirOwns(rc, id); ok {
			// A directory user joins through its shadow record, created
			// now when the user never signed in.
			if err := s.d.Directory.EnsureShadow(rc.ctx, rc.tenant.Name, id); err != nil {
				if errors.Is(err, userstore.ErrNotFound) {
					return nil, badRequest(ErrTypeInvalidValue, "members: %q is not a user of this tenant", clip(id))
				}
				return nil, dirErr("user", err)
			}
			ids = append(ids, id)
			continue
		}
		if len(id) > 64 {
			return nil, badRequest(ErrTypeInvalidValue, "members: %q is not a user of this tenant", clip(id))
		}
		if _, err := s.d.Store.GetUser(rc.ctx, rc.tenant.ID, id); err != nil {
			if se := storeErr("user", err); se.Status == http.StatusNotFound {
				return nil, badRequest(ErrTypeInvalidValue, "members: %q is not a user of this tenant", clip(id))
			}
			return nil, storeErr("user", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// syncMembers makes the group's members exactly want.
func (s *Service) syncMembers(rc *reqCtx, groupID string, have []store.User, want []string) *Error {
	haveIDs := make([]string, len(have))
	for i, u := range have {
		haveIDs[i] = u.ID
	}
	for _, id := range want {
		if slices.Contains(haveIDs, id) {
			continue
		}
		if err := s.d.Store.AddGroupMember(rc.ctx, rc.tenant.ID, groupID, id); err != nil {
			return storeErr("group member", err)
		}
		s.audit(rc, event.GroupMemberAdd, event.Ref("group", groupID), store.OutcomeSuccess, map[string]any{"user": id})
	}
	for _, id := range haveIDs {
		if slices.Contains(want, id) {
			continue
		}
		if err := s.d.Store.RemoveGroupMember(rc.ctx, rc.tenant.ID, groupID, id); err != nil {
			return storeErr("group member", err)
		}
		s.audit(rc, event.GroupMemberRemove, event.Ref("group", groupID), store.OutcomeSuccess, map[string]any{"user": id})
	}
	return nil
}

func (s *Service) createGroup(rc *reqCtx, body map[string]any) (map[string]any, *Error) {
	r, err := normalizeResource(s.group, body)
	if err != nil {
		return nil, err
	}
	g := store.Group{TenantID: rc.tenant.ID}
	ids, err := s.applyGroup(rc, r, &g)
	if err != nil {
		return nil, err
	}
	g, serr := s.d.Store.CreateGroup(rc.ctx, g)
	if serr != nil {
		return nil, storeErr("group", serr)
	}
	s.audit(rc, event.GroupCreate, event.Ref("group", g.ID), store.OutcomeSuccess, nil)
	if err := s.syncMembers(rc, g.ID, nil, ids); err != nil {
		return nil, err
	}
	_, _, out, err := s.loadGroup(rc, g.ID)
	return out, err
}

func (s *Service) replaceGroup(rc *reqCtx, id, ifMatch string, body map[string]any) (map[string]any, *Error) {
	g, members, cur, err := s.loadGroup(rc, id)
	if err != nil {
		return nil, err
	}
	if !matchesIfMatch(ifMatch, versionOf(cur)) {
		return nil, preconditionFailed("group")
	}
	r, err := normalizeResource(s.group, body)
	if err != nil {
		return nil, err
	}
	return s.saveGroup(rc, g, members, r)
}

func (s *Service) patchGroup(rc *reqCtx, id, ifMatch string, body map[string]any) (map[string]any, *Error) {
	ops, err := parsePatch(body)
	if err != nil {
		return nil, err
	}
	g, members, cur, err := s.loadGroup(rc, id)
	if err != nil {
		return nil, err
	}
	if !matchesIfMatch(ifMatch, versionOf(cur)) {
		return nil, preconditionFailed("group")
	}
	delete(cur, "meta")
	r, err := applyPatch(s.group, cur, ops)
	if err != nil {
		return nil, err
	}
	return s.saveGroup(rc, g, members, r)
}

func (s *Service) saveGroup(rc *reqCtx, g store.Group, members []store.User, r map[string]any) (map[string]any, *Error) {
	ids, err := s.applyGroup(rc, r, &g)
	if err != nil {
		return nil, err
	}
	g, serr := s.d.Store.UpdateGroup(rc.ctx, g)
	if serr != nil {
		return nil, storeErr("group", serr)
	}
	s.audit(rc, event.GroupUpdate, event.Ref("group", g.ID), store.OutcomeSuccess, nil)
	if err := s.syncMembers(rc, g.ID, members, ids); err != nil {
		return nil, err
	}
	_, _, out, err := s.loadGroup(rc, g.ID)
	return out, err
}

func (s *Service) deleteGroup(rc *reqCtx, id, ifMatch string) *Error {
	g, _, cur, err := s.loadGroup(rc, id)
	if err != nil {
		return err
	}
	if !matchesIfMatch(ifMatch, versionOf(cur)) {
		return preconditionFailed("group")
	}
	// The members go with the group: the event names them, for the
	// provisioners whose rules depend on membership.
	former, ferr := provision.FormerMembers(rc.ctx, s.d.Store, rc.tenant.ID, g.ID)
	if ferr != nil {
		return storeErr("group", ferr)
	}
	if err := s.d.Store.DeleteGroup(rc.ctx, rc.tenant.ID, g.ID); err != nil {
		return storeErr("group", err)
	}
	s.audit(rc, event.GroupDelete, event.Ref("group", g.ID), store.OutcomeSuccess, former)
	return nil
}

func versionOf(r map[string]any) string {
	meta, _ := r["meta"].(map[string]any)
	v, _ := meta["version"].(string)
	return v
}

func (s *Service) createGroupHTTP(c *fiber.Ctx, rc *reqCtx) error {
	body, err := decodeBody(c)
	if err != nil {
		return err
	}
	r, err := s.createGroup(rc, body)
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusCreated, s.group, r)
}

func (s *Service) getGroupHTTP(c *fiber.Ctx, rc *reqCtx) error {
	if _, ok := s.dirOwns(rc, c.Params("id")); ok {
		proj, err := parseProjection(s.group, c.Query("attributes"), c.Query("excludedAttributes"))
		if err != nil {
			return err
		}
		r, err := s.getDirGroup(rc, c.Params("id"), proj)
		if err != nil {
			return err
		}
		return s.writeResource(c, http.StatusOK, s.group, r)
	}
	_, _, r, err := s.loadGroup(rc, c.Params("id"))
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, s.group, r)
}

func (s *Service) replaceGroupHTTP(c *fiber.Ctx, rc *reqCtx) error {
	body, err := decodeBody(c)
	if err != nil {
		return err
	}
	r, err := s.replaceGroup(rc, c.Params("id"), c.Get(fiber.HeaderIfMatch), body)
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, s.group, r)
}

func (s *Service) patchGroupHTTP(c *fiber.Ctx, rc *reqCtx) error {
	body, err := decodeBody(c)
	if err != nil {
		return err
	}
	r, err := s.patchGroup(rc, c.Params("id"), c.Get(fiber.HeaderIfMatch), body)
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, s.group, r)
}

func (s *Service) deleteGroupHTTP(c *fiber.Ctx, rc *reqCtx) error {
	if err := s.deleteGroup(rc, c.Params("id"), c.Get(fiber.HeaderIfMatch)); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}
