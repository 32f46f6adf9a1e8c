package runstatus

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A run of the page that the scan did not keep whole (let go before a run
// kept instead stopped matching, its new event read in the same scan) is
// read again by the sequence it was ranked at: whole, as it was then.
func TestPageOf_ReadsARunNotHeldWholeBySequence(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	base := time.Now().UTC().Add(-time.Hour)
	var match []ranked
	for i, id := range []string{"run_a", "run_b", "run_c"} {
		q := base.Add(time.Duration(i) * time.Second)
		r := message.Run{Schema: message.SchemaRun, Kind: message.KindRun, ID: id, Namespace: "default", Status: message.StatusRunning, QueuedAt: &q, Output: strings.Repeat(id, 100)}
		b, _ := json.Marshal(&r)
		ack, err := js.Publish(ctx, bus.StatusSubject("default", id), b)
		if err != nil {
			t.Fatal(err)
		}
		match = append(match, rank(&r, ack.Sequence, Filter{Limit: 2}))
	}
	s, err := js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		t.Fatal(err)
	}
	whole := newWholeRuns(2)
	stale := message.Run{ID: "run_b", Status: message.StatusSucceeded, QueuedAt: &base}
	whole.runs["run_b"] = found{stale, match[1].seq + 100} // another event of run_b: not the one ranked
	p, err := pageOf(ctx, s, match, whole, Filter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Runs) != 2 || p.Runs[0].ID != "run_c" || p.Runs[1].ID != "run_b" || p.Runs[1].Status != message.StatusRunning ||
		p.Runs[0].Output != strings.Repeat("run_c", 100) || p.Next == nil || p.Next.ID != "run_b" {
		t.Fatalf("page %+v, next %+v; want run_c and run_b as ranked, read again whole, then more", p.Runs, p.Next)
	}
}
