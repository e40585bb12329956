package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hornbeam-go/hornbeam/bus"
)

// newNKeyCmd prints the NATS user nkey that nodes sign in with on an external
// NATS server (--nats) when given no credentials file, so that its operator
// can authorize exactly the holders of the cookie.
func newNKeyCmd() *cobra.Command {
	var cookie string
	cmd := &cobra.Command{
		Use:   "nkey",
		Short: "Print the NATS user public key derived from the cookie, for an external NATS server's authorization",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := bus.LoadCookie(cookie)
			if err != nil {
				return err
			}
			pub, err := bus.CookieNKey(c)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			return nil
		},
	}
	cmd.Flags().StringVar(&cookie, "cookie", "", "cluster cookie (env HORNBEAM_COOKIE, else ~/.hornbeam.cookie)")
	return cmd
}
