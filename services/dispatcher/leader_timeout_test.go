package dispatcher

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A leader read that gets no answer — a users.conf without the
// permission, where nats.go only times the request out, or a leader
// election — gives up after its own second, not the batch's whole time:
// the batch's dedup claims, after it, would fail for want of time and
// pause the dispatcher.
func TestLeaderRecords_AReadWithoutAnswerGivesUpSoon(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(`authorization {
  users = [{user: d, password: d, permissions: {publish: {deny: ["$JS.API.STREAM.MSG.GET.>"]}, subscribe: ">"}}]
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	n := testenv.StartNATSWith(t, embednats.Options{ConfigFile: conf})
	nc, err := nats.Connect(n.URL, nats.UserInfo("d", "d"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a batch's time, and more
	defer cancel()
	l := newLeaderRecords(nc)
	start := time.Now()
	v, _, err := l.webhook(ctx, &item{d: message.Delivery{Namespace: "default", Webhook: "gone"}})
	if took := time.Since(start); took > 3*leaderReadTimeout {
		t.Errorf("the read without an answer took %v", took)
	}
	if v != leaderUnknown || err == nil {
		t.Errorf("a read without an answer gave %v, %v; want unknown with the error", v, err)
	}
}
