package webhookstatus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// countingHandler counts the log records whose message starts with
// prefix, and passes every record on.
type countingHandler struct {
	slog.Handler
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

// Past MaxNotes webhooks waiting, a lastError takes the place of a
// lastDeliveryAt, never the other way round, and the drops are logged once,
// not once each.
func TestNotes_ALastErrorIsNeverDroppedForALastDeliveryAt(t *testing.T) {
	var lines atomic.Int64
	log := slog.New(countingHandler{slog.NewTextHandler(io.Discard, nil), "webhook status updates are behind", &lines})
	q := NewNotes()
	now := time.Now()
	for i := range MaxNotes {
		q.Add(Note{Namespace: "default", Name: fmt.Sprintf("w%d", i), UID: "u", Delivered: now}, log)
	}
	q.Add(Note{Namespace: "default", Name: "late", UID: "u", Delivered: now}, log) // no room: dropped
	q.Add(Note{Namespace: "default", Name: "failing", UID: "u", Error: "boom"}, log)
	for i := range 100 {
		q.Add(Note{Namespace: "default", Name: fmt.Sprintf("x%d", i), UID: "u", Delivered: now}, log)
	}
	got := map[string]Note{}
	for _, n := range q.take() {
		got[n.Name] = n
	}
	if len(got) != MaxNotes {
		t.Errorf("%d notes waiting, want %d", len(got), MaxNotes)
	}
	if got["failing"].Error != "boom" {
		t.Errorf("failing's lastError %q, want it kept", got["failing"].Error)
	}
	if _, ok := got["late"]; ok {
		t.Error("a lastDeliveryAt past the bound was kept")
	}
	if n := lines.Load(); n != 1 {
		t.Errorf("%d log lines about drops, want 1", n)
	}
}

// A note per delivery is on the dispatcher's hot path: merging one into
// its webhook's waiting note allocates nothing.
func TestNotes_AddAllocatesNothing(t *testing.T) {
	q := NewNotes()
	log := slog.New(slog.DiscardHandler)
	n := Note{Namespace: "default", Name: "gh", UID: "u1", Delivered: time.Now()}
	q.Add(n, log)
	if a := testing.AllocsPerRun(1000, func() { q.Add(n, log) }); a != 0 {
		t.Errorf("Add allocates %v times a note", a)
	}
}

// A lastError is cut to MaxErrorBytes between characters, whoever writes
// it.
func TestCutError_BoundsTheMessageBetweenCharacters(t *testing.T) {
	short := "job deploy: cannot start command: fork/exec /no/such/program: no such file or directory"
	if got := cutError(short); got != short {
		t.Errorf("a short message was changed: %q", got)
	}
	long := strings.Repeat("é", MaxErrorBytes) // 2 bytes each
	got := cutError(long)
	if len(got) > MaxErrorBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("cut to %d bytes (valid UTF-8: %v), want at most %d, valid, marked", len(got), utf8.ValidString(got), MaxErrorBytes)
	}
}
