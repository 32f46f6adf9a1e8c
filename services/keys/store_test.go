package keys

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A resource that fits in a PUT fits once stored: its JSON keeps <, > and
// & as they are (json.Marshal wrote each as a 6-byte \u003c, and a 3 MB
// argument of "<" came back 503 "retry later" for ever). One that does
// not fit NATS is a 413 saying so, not a 503 a client retries.
func TestAPI_LargeResourcesAreStoredOrRefusedAsTooLarge(t *testing.T) {
	a := newTestAPI(t)
	big := strings.Repeat("<&>", 1_000_000)
	job := jobDoc("big", map[string]any{
		"http": map[string]any{"url": "https://example.com/hook"},
		"args": []any{map[string]any{"name": "a", "default": big}},
	})
	body, err := encodeValue(job) // sent as 3 MB, < as <
	if err != nil {
		t.Fatal(err)
	}
	a.must(http.StatusCreated, "PUT", "/v1/jobs/big", string(body))
	got := a.must(http.StatusOK, "GET", "/v1/jobs/big", nil)
	var stored struct {
		Spec struct {
			Args []struct{ Default string }
		}
	}
	if err := json.Unmarshal(got.Body, &stored); err != nil || len(stored.Spec.Args) != 1 || stored.Spec.Args[0].Default != big {
		t.Fatalf("the stored argument default is not the one sent (%v)", err)
	}

	small := newTestAPIOn(t, testenv.StartNATSWith(t, embednats.Options{MaxPayload: 64 << 10}))
	job = jobDoc("too-big", map[string]any{
		"http": map[string]any{"url": "https://example.com/hook"},
		"args": []any{map[string]any{"name": "a", "default": strings.Repeat("x", 100_000)}},
	})
	ans := small.do("PUT", "/v1/jobs/too-big", job)
	checkError(t, ans, http.StatusRequestEntityTooLarge, "payload_too_large", "largest NATS message")
	if ans.Header.Get("Retry-After") != "" {
		t.Fatal("a resource too large for NATS is no reason to retry")
	}
}

// Deletes of one resource at once: one deletes it, the others find it
// gone (404). Before, each read it and purged it, and most answered
// {"deleted":1} for the one webhook.
func TestAPI_ConcurrentDeletesDeleteOnce(t *testing.T) {
	a := newTestAPI(t)
	a.must(http.StatusCreated, "PUT", "/v1/jobs/race", jobDoc("race", map[string]any{"command": []string{"true"}}))
	for round := range 3 {
		a.must(http.StatusCreated, "PUT", "/v1/webhooks/racew", webhookDoc("racew", map[string]any{"job": "race"}))
		const n = 8
		codes := make(chan int, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				<-start
				codes <- a.do("DELETE", "/v1/webhooks/racew", nil).Code
			})
		}
		close(start)
		wg.Wait()
		close(codes)
		deleted := 0
		for c := range codes {
			switch c {
			case http.StatusOK:
				deleted++
			case http.StatusNotFound:
			default:
				t.Errorf("round %d: a delete answered %d", round, c)
			}
		}
		if deleted != 1 {
			t.Errorf("round %d: %d of %d deletes of one webhook answered deleted", round, deleted, n)
		}
	}
}

// A write against a revision that is no longer the key's last is a
// conflict (409, retry) whichever code JetStream gives it: a replicated
// bucket refuses one racing another write in flight to the key with 10164,
// not 10071, and that came back 503 unavailable.
func TestStore_AWriteAgainstAStaleRevisionIsAConflict(t *testing.T) {
	apiErr := func(code jetstream.ErrorCode) error {
		return &jetstream.APIError{Code: 400, ErrorCode: code, Description: "wrong last sequence"}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"wrong last sequence", apiErr(jetstream.JSErrCodeStreamWrongLastSequence), true},
		{"wrong last sequence, clustered", apiErr(jetstream.JSErrCodeStreamWrongLastSequenceConstant), true},
		{"wrapped", fmt.Errorf("update: %w", apiErr(jetstream.JSErrCodeStreamWrongLastSequenceConstant)), true},
		{"another API error", apiErr(jetstream.JSErrCodeStreamNotFound), false},
		{"no API error", jetstream.ErrKeyNotFound, false},
	} {
		if got := isWrongSeq(tc.err); got != tc.want {
			t.Errorf("%s: isWrongSeq %v, want %v", tc.name, got, tc.want)
		}
	}
}
