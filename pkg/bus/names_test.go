package bus

import "testing"

func TestParseRunSubject(t *testing.T) {
	if ns, job, ok := ParseRunSubject(RunSubject("team-a", "build")); !ok || ns != "team-a" || job != "build" {
		t.Fatalf("ParseRunSubject(RunSubject(team-a, build)) = %q %q %v", ns, job, ok)
	}
	for _, s := range []string{"hookrun.runs.a", "hookrun.runs.a.b.c", "hookrun.runs..b", "hookrun.status.a.b", "hookrun.runs.a."} {
		if _, _, ok := ParseRunSubject(s); ok {
			t.Errorf("ParseRunSubject(%q) ok, want not a run subject", s)
		}
	}
}
