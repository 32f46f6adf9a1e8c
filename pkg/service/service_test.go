package service

import (
	"strings"
	"testing"
	"time"
)

func TestCommonFromEnv_Retention(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    time.Duration
		wantErr string
	}{
		{"", 0, ""},
		{"72h", 72 * time.Hour, ""},
		{"24h", 24 * time.Hour, ""},
		{"23h59m", 0, "at least 24h0m0s"},
		{"1h", 0, "at least"},
		{"0", 0, "at least"},
		{"7d", 0, "must be a duration"},
		{"-1h", 0, "at least"},
	} {
		t.Setenv("HOOKRUN_RETENTION", tc.env)
		c, err := CommonFromEnv("")
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "HOOKRUN_RETENTION") {
				t.Errorf("HOOKRUN_RETENTION=%q: err %v, want one naming the variable and %q", tc.env, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("HOOKRUN_RETENTION=%q: %v", tc.env, err)
		case c.Retention != tc.want:
			t.Errorf("HOOKRUN_RETENTION=%q: Retention %s, want %s", tc.env, c.Retention, tc.want)
		}
	}
}
