package main

import (
	"github.com/spf13/cobra"
)

const rootHelp = `hookrun turns webhook calls into job runs.

  hookrun dev                      run everything in one process (embedded NATS)
  hookrun apply -f FILE|DIR        create or update jobs, secrets, webhooks
  hookrun get jobs|webhooks|secrets|keys|runs [NAME] [-o json|yaml]
  hookrun describe webhook NAME    spec, endpoint URL, last error, recent runs
  hookrun delete KIND NAME         remove a job, secret or webhook
  hookrun rotate-endpoint WEBHOOK  new endpoint id; the old URL answers 404
  hookrun rotate-secret SECRET     new random value, shown once; the old one
                                   stays valid for spec.previousValidFor
  hookrun keys create|list|extend|delete
  hookrun send WEBHOOK --data @file [--wait]
  hookrun runs list|watch [RUN]|cancel RUN
  hookrun replay DELIVERY
  hookrun bench                    load-test the stack beside bare baselines
  hookrun version                  the CLI's version, Go version and platform

The API is found in HOOKRUN_API_URL (default http://127.0.0.1:8081), its
token in HOOKRUN_ADMIN_TOKEN; the ingress, for endpoint URLs and send, in
HOOKRUN_INGRESS_URL (default http://127.0.0.1:8080).

Exit codes: 0 ok, 1 error (also a 500 with the API's or ingress' own error
code, such as job_not_runnable: sending again fails the same way until the
configuration is fixed), 2 usage (also an empty argument), 3 not found,
4 refused: invalid input, by the API (4xx) or before it (a manifest that is
not valid YAML, or holds no resource), 5 API or ingress unavailable, retry
later (no answer, 429, 502, 503, 504, or a 5xx without the service's own
error, such as a proxy's page; also an answer that is not the keys API's or
the ingress', such as the ingress' 404 to --api-url, or a redirect, which
the CLI does not follow), 6 a run ended in another status than succeeded
(runs watch, send --wait), 7 send or replay --wait: the delivery was
accepted but its run could not be followed to its end (the API gone, or
--timeout passed: do not send it again; follow it with hookrun runs watch
RUN), 130 stopped by Ctrl-C while waiting.`

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "hookrun",
		Short:         "Hookrun: inbound webhooks to job runs",
		Long:          rootHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	// --version prints the line `hookrun version` does, not cobra's
	// "hookrun version …"; declared here so that cobra adds no -v.
	root.Flags().Bool("version", false, "print the version and exit")
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newDevCmd(), newProbeCmd(), newVersionCmd())
	// Usage errors (unknown command or flag) exit 2, as the help promises.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: 2, msg: err.Error()} })
	addClientCommands(root)
	return root
}

// addClientCommands is extended by the API client commands.
var clientCommands []func() *cobra.Command

func addClientCommands(root *cobra.Command) {
	for _, f := range clientCommands {
		root.AddCommand(f())
	}
}
