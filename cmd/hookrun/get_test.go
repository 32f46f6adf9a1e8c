package main

import (
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
)

// A run queued for a retry keeps its failed attempt's startedAt: it shows
// no duration (before, one that grew through the backoff); a running run
// shows how long it has run, an ended one how long it ran.
func TestRunDuration_QueuedForARetryHasNone(t *testing.T) {
	hourAgo := time.Now().Add(-time.Hour)
	end := hourAgo.Add(1500 * time.Millisecond)
	for _, tc := range []struct {
		r    message.Run
		want func(string) bool
	}{
		{message.Run{Status: message.StatusQueued, Attempt: 1, StartedAt: &hourAgo}, func(s string) bool { return s == "" }},
		{message.Run{Status: message.StatusQueued}, func(s string) bool { return s == "" }},
		{message.Run{Status: message.StatusFailed, StartedAt: &hourAgo, FinishedAt: &end}, func(s string) bool { return s == "1.5s" }},
		{message.Run{Status: message.StatusRunning, StartedAt: &hourAgo}, func(s string) bool { d, err := time.ParseDuration(s); return err == nil && d >= time.Hour }},
	} {
		if got := runDuration(tc.r); !tc.want(got) {
			t.Errorf("%s run: duration %q", tc.r.Status, got)
		}
	}
}
