package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// newUserSuspendCmds returns "users suspend" and "users unsuspend", which
// call POST and DELETE /users/{id}/suspend of the admin API.
func newUserSuspendCmds(a *adminClient) []*cobra.Command {
	suspend := &cobra.Command{
		Use:   "suspend ID",
		Short: "Suspend a user: logins are refused, sessions end and tokens are revoked until the suspension ends or is lifted",
		Args:  cobra.ExactArgs(1),
	}
	reason := suspend.Flags().String("reason", "", "why (shown to administrators and in the audit log, never to the user)")
	until := suspend.Flags().String("until", "", "when the suspension ends by itself (RFC 3339, e.g. 2026-12-31T00:00:00Z); absent: until lifted")
	forDur := suspend.Flags().Duration("for", 0, "how long the suspension lasts (e.g. 72h); an alternative to --until")
	suspend.MarkFlagsMutuallyExclusive("until", "for")
	suspend.RunE = func(cmd *cobra.Command, args []string) error {
		in := map[string]any{"reason": *reason}
		switch {
		case *until != "":
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			in["until"] = t
		case *forDur > 0:
			in["until"] = time.Now().Add(*forDur).UTC().Truncate(time.Second)
		case *forDur < 0:
			return fmt.Errorf("--for must be positive")
		}
		var out any
		if err := a.do(cmd.Context(), http.MethodPost, "/users/"+url.PathEscape(args[0])+"/suspend", nil, in, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	unsuspend := &cobra.Command{
		Use:   "unsuspend ID",
		Short: "Lift a user's suspension",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out any
			if err := a.do(cmd.Context(), http.MethodDelete, "/users/"+url.PathEscape(args[0])+"/suspend", nil, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	return []*cobra.Command{suspend, unsuspend}
}
