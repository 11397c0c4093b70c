package provision

import (
	"context"
	"fmt"

	"github.com/latchid/latch/kernel/store"
)

// Detail keys of a group.delete audit event that tell provisioners whom
// the deletion may move out of (or into) their rules' scope: the group's
// members are gone from the store once it is deleted, so the writer
// records them beforehand with FormerMembers.
const (
	// DetailMembers lists the ids of the group's members when it was
	// deleted, at most MaxFormerMembers of them.
	DetailMembers = "members"
	// DetailMembersTruncated is true when the group had more members than
	// DetailMembers lists; provisioners then re-check every user they
	// pushed.
	DetailMembersTruncated = "members_truncated"
)

// MaxFormerMembers bounds the member ids a group.delete event carries.
const MaxFormerMembers = 1000

// MemberLister lists a group's members; store.Store implements it.
type MemberLister interface {
	ListGroupMembers(ctx context.Context, tenantID, groupID string, p store.Page) ([]store.User, string, error)
}

// FormerMembers returns the audit detail of a group's deletion, read
// before the group is deleted: DetailMembers, and DetailMembersTruncated
// when there are more than MaxFormerMembers. A group without members
// gives an empty detail.
func FormerMembers(ctx context.Context, st MemberLister, tenantID, groupID string) (map[string]any, error) {
	var ids []string
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		us, next, err := st.ListGroupMembers(ctx, tenantID, groupID, p)
		if err != nil {
			return nil, fmt.Errorf("listing the members of group %q: %w", groupID, err)
		}
		for _, u := range us {
			if len(ids) == MaxFormerMembers {
				return map[string]any{DetailMembers: ids, DetailMembersTruncated: true}, nil
			}
			ids = append(ids, u.ID)
		}
		if next == "" {
			break
		}
		p.After = next
	}
	if len(ids) == 0 {
		return map[string]any{}, nil
	}
	return map[string]any{DetailMembers: ids}, nil
}

// MemberIDs reads DetailMembers from an event's detail, as written (a
// []string) or read back from the audit log (a []any of strings).
func MemberIDs(detail map[string]any) (ids []string, truncated bool) {
	switch v := detail[DetailMembers].(type) {
	case []string:
		ids = v
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && s != "" {
				ids = append(ids, s)
			}
		}
	}
	truncated, _ = detail[DetailMembersTruncated].(bool)
	return ids, truncated
}
