package ldap

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

// maxGroupMembersBound is the highest groups.max_members accepted.
const maxGroupMembersBound = 100_000

// maxRangeRounds bounds the ranged reads of one group's member attribute;
// each round returns at least one value, so MaxMembers rounds always
// suffice, and a directory answering empty ranges cannot loop the store.
const maxRangeRounds = maxGroupMembersBound + 1

// ListGroupMembers returns the group with the id and its members, at most
// groups.max_members of them, read by groups.membership:
//
//   - member: the group entry's member attribute, read with ranged
//     retrieval ("member;range=1500-*", as Active Directory returns the
//     values of a large attribute in slices), each member DN then read as a
//     user entry; DNs outside users.base_dn, or entries the user filter
//     does not select (nested groups), are not users and are skipped.
//   - member_of: a paged search of the users whose memberOf names the
//     group.
func (s *Store) ListGroupMembers(ctx context.Context, _ string, groupID string) (userstore.GroupMembers, error) {
	g := s.st.groups
	if s.off || g.BaseDN == "" {
		return userstore.GroupMembers{}, fmt.Errorf("listing the members of group %q: %w", groupID, userstore.ErrNotFound)
	}
	f, ok := idFilter(g.ID, g.IDFormat, groupID)
	if !ok {
		return userstore.GroupMembers{}, fmt.Errorf("listing the members of group %q: %w", groupID, userstore.ErrNotFound)
	}
	entries, err := s.search(ctx, g.BaseDN, goldap.ScopeWholeSubtree, and([]string{s.st.groupFilter, f}), s.st.groupAttrList, 2)
	if err != nil {
		return userstore.GroupMembers{}, fmt.Errorf("listing the members of group %q: %w", groupID, ldapFault(err, "searching the group"))
	}
	switch len(entries) {
	case 0:
		return userstore.GroupMembers{}, fmt.Errorf("listing the members of group %q: %w", groupID, userstore.ErrNotFound)
	case 1:
	default:
		return userstore.GroupMembers{}, fault.Internal.WithMessage("the group id matches several directory entries")
	}
	grp, err := s.st.entryToGroup(entries[0])
	if err != nil {
		return userstore.GroupMembers{}, fault.Internal.WithCause(err)
	}
	out := userstore.GroupMembers{Group: grp, Members: []abi.User{}, Limit: g.MaxMembers}
	if g.Membership == MembershipMemberOf {
		filter := and([]string{s.st.userFilter, "(" + g.MemberOfAttribute + "=" + goldap.EscapeFilter(entries[0].DN) + ")"})
		us, more, err := s.pagedSearch(ctx, s.st.users.BaseDN, s.st.userScope, filter, s.st.userAttrList, 0, g.MaxMembers)
		if err != nil {
			return userstore.GroupMembers{}, fmt.Errorf("listing the members of group %q: %w", groupID, ldapFault(err, "searching the members"))
		}
		out.Members, out.More = s.toUsers(ctx, us), more
		return out, nil
	}
	dns, cut, err := s.memberDNS(ctx, entries[0].DN)
	if err != nil {
		return userstore.GroupMembers{}, fmt.Errorf("listing the members of group %q: %w", groupID, err)
	}
	users, err := s.readMembers(ctx, dns)
	if err != nil {
		return userstore.GroupMembers{}, fmt.Errorf("listing the members of group %q: %w", groupID, err)
	}
	out.Members, out.More = users, cut
	if len(users) > g.MaxMembers {
		out.Members, out.More = users[:g.MaxMembers], true
	}
	return out, nil
}

// readMembers reads the user entries that member DNs name, in the order
// of dns, on up to pool.size connections at once. DNs outside
// users.base_dn, and entries the user filter does not select (nested
// groups), are not users and are left out.
func (s *Store) readMembers(ctx context.Context, dns []string) ([]abi.User, error) {
	base, err := goldap.ParseDN(s.st.users.BaseDN)
	if err != nil {
		return nil, fault.Internal.WithCause(err)
	}
	found := make([][]*goldap.Entry, len(dns))
	errs := make([]error, len(dns))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.st.poolSize, len(dns)) {
		wg.Go(func() {
			for i := range next {
				found[i], errs[i] = s.searchBase(ctx, dns[i], s.st.userFilter, s.st.userAttrList)
			}
		})
	}
feed:
	for i, dn := range dns {
		parsed, err := goldap.ParseDN(dn)
		if err != nil || !base.AncestorOfFold(parsed) && !base.EqualFold(parsed) {
			continue
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []abi.User
	for i := range dns {
		if errs[i] != nil {
			return nil, ldapFault(errs[i], "reading a member")
		}
		out = append(out, s.toUsers(ctx, found[i])...)
	}
	return out, nil
}

// optionalUID ends a nameAndOptionalUID value (uniqueMember, RFC 4517
// section 3.3.21) that carries a bit string after the DN.
var optionalUID = regexp.MustCompile(`#'[01]*'B$`)

// memberDNS reads the member attribute of the group entry at dn, every
// value up to groups.max_members and one more, and whether it stopped
// there with more values left. A server that returns the attribute in
// ranges ("member;range=0-1499") is asked for the next range until it
// answers the last ("…-*").
func (s *Store) memberDNS(ctx context.Context, dn string) ([]string, bool, error) {
	g := s.st.groups
	want := g.MaxMembers + 1
	var out []string
	req := g.MemberAttribute
	for range maxRangeRounds {
		es, err := s.searchBase(ctx, dn, "(objectClass=*)", []string{req})
		if err != nil {
			return nil, false, ldapFault(err, "reading the group's members")
		}
		if len(es) != 1 {
			return nil, false, userstore.ErrNotFound
		}
		next := ""
		for _, a := range es[0].Attributes {
			name, opts, _ := strings.Cut(a.Name, ";")
			if !strings.EqualFold(name, g.MemberAttribute) {
				continue
			}
			for _, v := range a.Values {
				out = append(out, optionalUID.ReplaceAllString(v, ""))
			}
			hi, ranged := rangeEnd(opts)
			if ranged && hi != "*" {
				n, err := strconv.Atoi(hi)
				if err != nil || n < 0 {
					return nil, false, fault.Internal.WithMessagef("the directory answered the malformed range %q", clipText(a.Name))
				}
				next = g.MemberAttribute + ";range=" + strconv.Itoa(n+1) + "-*"
			}
		}
		if len(out) > want {
			return out[:want], true, nil
		}
		if next == "" || next == req {
			return out, false, nil
		}
		if len(out) == want {
			return out, true, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		req = next
	}
	return out, true, nil
}

// rangeEnd reads the end of a "range=<low>-<high>" attribute option.
func rangeEnd(opts string) (string, bool) {
	for o := range strings.SplitSeq(opts, ";") {
		v, ok := strings.CutPrefix(strings.ToLower(o), "range=")
		if !ok {
			continue
		}
		_, hi, ok := strings.Cut(v, "-")
		return hi, ok
	}
	return "", false
}

// toUsers maps user entries, skipping (and logging) malformed ones.
func (s *Store) toUsers(ctx context.Context, entries []*goldap.Entry) []abi.User {
	out := make([]abi.User, 0, len(entries))
	for _, e := range entries {
		u, err := s.st.entryToUser(e)
		if err != nil {
			s.log.WarnContext(ctx, "skipping directory group member", slog.String("dn", e.DN), slog.Any("err", err))
			continue
		}
		out = append(out, u)
	}
	return out
}

func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

var _ userstore.GroupMemberLister = (*Store)(nil)
