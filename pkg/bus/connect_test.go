package bus_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// stateLog records the OnState calls of a connection.
type stateLog struct {
	mu    sync.Mutex
	calls []bool
}

func (l *stateLog) on(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, up)
}

// last is the state reported last, and whether any was.
func (l *stateLog) last() (bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		return false, false
	}
	return l.calls[len(l.calls)-1], true
}

// A service started while NATS is down must say so at once: its
// hookrun_nats_connected has to exist (at 0) for HookrunNATSDisconnected to
// fire, and the client's handlers only run once a connect succeeds.
func TestConnect_ReportsTheStateWhenNATSIsDownAtStart(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t)
	n.Stop()
	var l stateLog
	nc, err := bus.Connect(bus.ConnectOptions{URL: n.URL, Name: "test", OnState: l.on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if up, reported := l.last(); !reported || up {
		t.Fatalf("after Connect with NATS down: reported %v (any: %v), want false", up, reported)
	}

	n.Start()
	testenv.Eventually(t, 10*time.Second, func() error {
		if up, _ := l.last(); !up {
			return errors.New("NATS is back but the last state reported is not connected")
		}
		return nil
	})
}
