package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// hookrun version and hookrun --version say which build this is, with the
// Go version and platform; both did not exist (exit 2).
func TestCLI_VersionAndVersionFlagPrintTheBuild(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3-test"
	want := "hookrun v1.2.3-test (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if r := runCLI(args...); r.Code != codeOK || r.Stdout != want || r.Stderr != "" {
			t.Errorf("hookrun %s: want exit 0 and %q, got %s", strings.Join(args, " "), want, r)
		}
	}
	if r := runCLI("version", "extra"); r.Code != codeUsage {
		t.Errorf("hookrun version extra: want exit %d, got %s", codeUsage, r)
	}
}

// Without -X main.version, the version is what the toolchain stamped: the
// module's version (go install …@v1.2.0), else the commit, marked dirty
// when the tree had changes, else "dev".
func TestBuildVersion_FallsBackToTheBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name string
		set  string
		info *debug.BuildInfo
		want string
	}{
		{"set by -X", "v2.0.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}}, "v2.0.0"},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}, Settings: vcs("abc123", "false")}, "v1.0.0"},
		{"commit", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("abc123", "false")}, "abc123"},
		{"dirty commit", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("abc123", "true")}, "abc123-dirty"},
		{"no vcs (-buildvcs=false)", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"no build info", "", nil, "dev"},
	} {
		if got := buildVersion(tc.set, tc.info, tc.info != nil); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
