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
		// An answer's own line end is dropped: one follows the value.
		if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
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

// shortDurUnits are shortDur's units below days, each used while d,
// rounded to it, stays under below.
var shortDurUnits = []struct {
	unit, below time.Duration
	suffix      string
}{
	{time.Second, time.Minute, "s"},
	{time.Minute, time.Hour, "m"},
	{time.Hour, 48 * time.Hour, "h"},
}

// shortDur is d in its largest unit, rounded to the nearest one: "45s",
// "3m", "5h", "2d". Rounded, not cut: what is read a moment after it was
// set (a 72h grace, a key valid for 60 days or 12 hours) would otherwise
// show a unit short ("in 2d", "in 59d", "in 11h"). A value that rounds up
// to the next unit shows in that one (59.7s is "1m", not "60s").
func shortDur(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	for _, u := range shortDurUnits {
		if r := d.Round(u.unit); r < u.below {
			return fmt.Sprintf("%d%s", r/u.unit, u.suffix)
		}
	}
	const day = 24 * time.Hour
	return fmt.Sprintf("%dd", d.Round(day)/day)
}

// plural is one when n is 1, else many, for counts in output: "would
// replay 1 delivery", "deleted 0 keys".
func plural[N ~int | ~int64 | ~uint64](n N, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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
