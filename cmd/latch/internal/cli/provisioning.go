package cli

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

// newAdminProvisioningCmd mirrors the admin API's /provisioning routes:
// the provisioners' durable queues and their dead letters.
func newAdminProvisioningCmd(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "provisioning", Short: "Inspect provisioning queues; retry or discard dead letters"}
	show := func(cmd *cobra.Command, path string, q url.Values) error {
		var out any
		if err := a.do(cmd.Context(), http.MethodGet, path, q, nil, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	list := &cobra.Command{
		Use: "list", Short: "List provisioners with the tenant's pending and dead-letter counts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return show(cmd, "/provisioning", nil) },
	}
	pending := &cobra.Command{Use: "pending PROVISIONER", Short: "List a provisioner's queued changes, in delivery order", Args: cobra.ExactArgs(1)}
	pq := listFlags(pending)
	pending.RunE = func(cmd *cobra.Command, args []string) error {
		return show(cmd, "/provisioning/"+url.PathEscape(args[0])+"/pending", pq(nil))
	}
	dead := &cobra.Command{Use: "dead-letters PROVISIONER", Short: "List a provisioner's changes that failed for good", Args: cobra.ExactArgs(1)}
	dq := listFlags(dead)
	dead.RunE = func(cmd *cobra.Command, args []string) error {
		return show(cmd, "/provisioning/"+url.PathEscape(args[0])+"/dead-letters", dq(nil))
	}
	var all bool
	retry := &cobra.Command{
		Use: "retry PROVISIONER [DEAD_LETTER_ID]", Short: "Put one dead letter (or, with --all, every one) back into the queue",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			base := "/provisioning/" + url.PathEscape(args[0]) + "/dead-letters"
			switch {
			case all && len(args) == 1:
				var out struct {
					Retried int `json:"retried"`
				}
				if err := a.do(cmd.Context(), http.MethodPost, base+"/retry", nil, nil, &out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "requeued %d dead letters of %s\n", out.Retried, args[0])
				return nil
			case !all && len(args) == 2:
				if err := a.do(cmd.Context(), http.MethodPost, base+"/"+url.PathEscape(args[1])+"/retry", nil, nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "requeued dead letter %s of %s\n", args[1], args[0])
				return nil
			}
			return fmt.Errorf("name one dead letter, or pass --all without one")
		},
	}
	retry.Flags().BoolVar(&all, "all", false, "retry every dead letter of the provisioner")
	discard := &cobra.Command{
		Use: "discard PROVISIONER DEAD_LETTER_ID", Short: "Delete a dead letter for good", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(cmd.Context(), http.MethodDelete, "/provisioning/"+url.PathEscape(args[0])+"/dead-letters/"+url.PathEscape(args[1]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "discarded dead letter %s of %s\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(list, pending, dead, retry, discard)
	return cmd
}
