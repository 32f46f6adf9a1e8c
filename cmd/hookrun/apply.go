package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newApplyCmd) }

// headerResult is the keys service's answer to a PUT: created, configured
// or unchanged.
const headerResult = "Hookrun-Result"

func newApplyCmd() *cobra.Command {
	o := &clientOptions{}
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR [-f ...]",
		Short: "Create or update secrets, jobs and webhooks from YAML",
		Long: `Apply resources from multi-document YAML (or JSON) files: every .yaml, .yml
and .json file of a directory, or stdin with -f -. Resources are applied in
dependency order — Secrets, then Jobs, then Webhooks — and applying the same
files again changes nothing. Each resource prints one line:

  job/weekly-report created|configured|unchanged

A webhook also prints its endpoint URL, and, when its creation generated an
API key, the key (shown only this once). A generated secret value is shown
only once, too. What the API applies but warns about (a setting that may
not work as meant, such as a body limit larger than the job's payload
variable holds) goes to stderr as "Warning: webhook/NAME: ..." (job/NAME for a job's). A document
without a namespace goes to -n's; one whose namespace differs from a -n
given on the command line is refused.

Every document is checked before anything is sent: when one is not a
resource (not valid YAML, a repeated key, an unknown kind, no name, another
namespace than -n's), apply names every such document and applies none
(exit 4). The API's own refusals come one resource at a time, so apply goes
on after one and applies the rest. Errors go to stderr, one line each; the
exit code is the first error's.`,
		Example: `  hookrun apply -f examples/janus.yaml
  hookrun apply -f examples/
  cat hooks.yaml | hookrun apply -f -`,
		Args: usageArgs(noArgs("name the manifests with -f: hookrun apply -f FILE|DIR (or -f - for stdin)")),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 {
				return usageErr("name the manifests with -f FILE|DIR (or -f - for stdin)")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ingress, err := o.ingress()
			if err != nil {
				return err
			}
			docs, err := readManifests(files, cmd.InOrStdin())
			var pathErr *fs.PathError
			if errors.As(err, &pathErr) {
				// A file that cannot be read is this machine's error (1),
				// not input the API refused (4).
				return failErr(codeError, "%v", err)
			}
			bad := errorList(err)
			if cmd.Flags().Changed("namespace") {
				bad = append(bad, namespaceMismatches(docs, c.ns)...)
			}
			bad = append(bad, repeatedResources(docs, c.ns)...)
			if len(bad) > 0 {
				for _, e := range bad {
					fmt.Fprintf(cmd.ErrOrStderr(), "hookrun: %s\n", oneLine(e.Error()))
				}
				return &exitError{code: codeRefused} // already reported
			}
			if len(docs) == 0 {
				return failErr(codeRefused, "no resources in %v", files)
			}
			orderForApply(docs)
			return applyAll(cmd.Context(), c, ingress, docs, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addClientFlags(cmd, o)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file or directory to apply (repeatable; - for stdin)")
	return cmd
}

// putAnswer holds what apply prints of a PUT answer.
type putAnswer struct {
	Status struct {
		EndpointPath string `json:"endpointPath"`
	} `json:"status"`
	GeneratedKey *struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	} `json:"generatedKey"`
	GeneratedValue string `json:"generatedValue"`
	// Warnings name what was applied but may not work as meant.
	Warnings []string `json:"warnings"`
}

// namespaceMismatches refuses, as kubectl does, a document whose namespace
// is not the one -n named on the command line: applying it to the
// document's namespace ignores the flag, and to the flag's overrides the
// document, and either may be the one the user did not mean.
func namespaceMismatches(docs []manifestDoc, ns string) []error {
	var bad []error
	for _, d := range docs {
		if d.Namespace != "" && d.Namespace != ns {
			bad = append(bad, fmt.Errorf("%s: %s: metadata.namespace %q does not match --namespace %q (pass -n %s, or leave -n out)", d.Source, docLabel(d), d.Namespace, ns, d.Namespace))
		}
	}
	return bad
}

// repeatedResources refuses a resource given twice (the same file twice,
// or two documents of one kind, namespace and name): the second would
// overwrite the first, and applying the files again would never be
// "unchanged". ns is the namespace of documents that name none.
func repeatedResources(docs []manifestDoc, ns string) []error {
	var bad []error
	first := map[string]string{}
	for _, d := range docs {
		dns := d.Namespace
		if dns == "" {
			dns = ns
		}
		k := d.Kind + " " + dns + "/" + d.Name
		if src, ok := first[k]; ok {
			bad = append(bad, fmt.Errorf("%s: %s is given again (first in %s): give each resource once", d.Source, docLabel(d), src))
			continue
		}
		first[k] = d.Source
	}
	return bad
}

// applyAll PUTs every document. It goes on after a refused document (so
// one run reports every mistake) but stops when the API is unavailable.
//
// Documents reach it only when all of them are resources (see the command's
// RunE): what the CLI can check itself it checks for every document before
// the first PUT, so that a mistake there applies nothing; what only the API
// can check it learns one PUT at a time, and there is no taking a PUT back.
func applyAll(ctx context.Context, c *apiClient, ingress string, docs []manifestDoc, out, errOut io.Writer) error {
	var first error
	for _, d := range docs {
		err := applyOne(ctx, c, ingress, d, out, errOut)
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		fmt.Fprintf(errOut, "hookrun: %s: %s\n", docLabel(d), oneLine(errMessage(err)))
		if exitCode(err) == codeUnavailable {
			break
		}
	}
	if first != nil {
		return &exitError{code: exitCode(first)} // already reported
	}
	return nil
}

func docLabel(d manifestDoc) string {
	return lowerKind(d.Kind) + "/" + d.Name
}

func lowerKind(kind string) string {
	switch kind {
	case "Secret":
		return "secret"
	case "Job":
		return "job"
	case "Webhook":
		return "webhook"
	}
	return kind
}

func errMessage(err error) string {
	if ee, ok := err.(*exitError); ok {
		return ee.msg
	}
	return err.Error()
}

func applyOne(ctx context.Context, c *apiClient, ingress string, d manifestDoc, out, errOut io.Writer) error {
	ns := d.Namespace
	if ns == "" {
		ns = c.ns
	}
	q := url.Values{"namespace": {ns}}
	resp, err := c.do(ctx, http.MethodPut, "/v1/"+collectionOf(d.Kind)+"/"+url.PathEscape(d.Name), q, d.JSON)
	if err != nil {
		return err
	}
	result := resp.Header.Get(headerResult)
	if result == "" {
		result = map[int]string{http.StatusCreated: "created"}[resp.Status]
		if result == "" {
			result = "configured"
		}
	}
	line := docLabel(d) + " " + result
	if ns != defaultNamespace {
		line += " (namespace " + ns + ")"
	}
	fmt.Fprintln(out, line)
	var a putAnswer
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		return nil // applied (do checked the answer is JSON); nothing more to show
	}
	if a.Status.EndpointPath != "" {
		fmt.Fprintf(out, "  endpoint: %s%s\n", redactedURL(ingress), a.Status.EndpointPath) // as endpointURL
	}
	if k := a.GeneratedKey; k != nil && k.Key != "" {
		fmt.Fprintf(out, "  generated API key (shown only now): %s\n", k.Key)
		fmt.Fprintf(out, "  key id: %s\n", k.ID)
	}
	if a.GeneratedValue != "" {
		fmt.Fprintf(out, "  generated secret (shown only now): %s\n", a.GeneratedValue)
	}
	// As delete prints its warnings: on stderr, so that stdout stays one
	// line a resource (and what to copy from it) for scripts.
	for _, w := range a.Warnings {
		fmt.Fprintf(errOut, "Warning: %s: %s\n", docLabel(d), w)
	}
	return nil
}
