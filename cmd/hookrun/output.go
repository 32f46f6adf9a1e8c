package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	outTable = "table"
	outJSON  = "json"
	outYAML  = "yaml"
)

func addOutputFlag(cmd *cobra.Command, out *string, what string) {
	cmd.Flags().StringVarP(out, "output", "o", outTable, what+": table, json or yaml")
}

func checkOutput(o string) error {
	switch o {
	case outTable, outJSON, outYAML:
		return nil
	}
	return usageErr("-o %q: must be table, json or yaml", o)
}

// printRaw prints a JSON value as indented JSON or as YAML.
func printRaw(w io.Writer, format string, raw []byte) error {
	switch format {
	case outYAML:
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	default:
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
}

// textTable writes aligned columns.
type textTable struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *textTable {
	t := &textTable{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *textTable) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		cells[i] = strings.ReplaceAll(strings.ReplaceAll(cells[i], "\t", " "), "\n", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *textTable) flush() { _ = t.tw.Flush() }

// agoText says how long ago t was: "45s", "3m", "5h", "2d".
func agoText(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return shortDur(now.Sub(*t)) + " ago"
}

// untilText says when t comes: "in 59d", or "expired".
func untilText(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	if !t.After(now) {
		return "expired"
	}
	return "in " + shortDur(t.Sub(now))
}

func shortDur(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// truncateText shortens s to n runes with an ellipsis.
func truncateText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// scopeText joins names, or says "*" (all) for an empty scope.
func scopeText(xs []string) string {
	if len(xs) == 0 {
		return "*"
	}
	return strings.Join(xs, ",")
}
