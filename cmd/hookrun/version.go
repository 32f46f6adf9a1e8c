package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set by the build: make build passes
// -ldflags "-X main.version=$(git describe --always --dirty)". A plain
// go build or go install leaves it empty, and buildVersion reads what the
// Go toolchain stamped instead.
var version string

// newVersionCmd is `hookrun version`; the root's --version prints the same
// line.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version, its Go version and platform",
		Args:  usageArgs(noArgs("hookrun version says which build this binary is")),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return nil
		},
	}
}

// versionLine is what version and --version print:
// "hookrun v1.2.0 (go1.26.8, linux/amd64)".
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	return fmt.Sprintf("hookrun %s (%s, %s/%s)", buildVersion(version, info, ok), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildVersion is set when the build set it; else the main module's version
// (go install …@v1.2.0); else the commit built, which go build stamps in a
// git checkout ("-dirty" when the tree had changes: not that commit's
// code); else "dev", as for builds with -buildvcs=false (the images).
func buildVersion(set string, info *debug.BuildInfo, ok bool) string {
	if set != "" {
		return set
	}
	if !ok || info == nil {
		return "dev"
	}
	// "(devel)" is what the toolchain says when it knows no version.
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
