package main

import (
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newProbeCmd is a healthcheck for images without curl: exit 0 on 2xx.
func newProbeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "probe URL",
		Short:  "GET URL and exit 0 on a 2xx answer (container healthchecks)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &http.Client{Timeout: 3 * time.Second}
			resp, err := c.Get(args[0])
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return &exitError{code: 1, msg: resp.Status}
			}
			return nil
		},
	}
}
