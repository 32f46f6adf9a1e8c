package keys

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A client that stops reading a run's event stream with its connection
// left open (a stuck proxy, a suspended laptop) no longer holds the stream
// — its output subscription and its status consumer — for ever: a write
// that cannot go out within streamWriteWait ends it.
func TestRuns_EventStreamOfAClientThatStopsReadingEnds(t *testing.T) {
	old := streamWriteWait
	streamWriteWait = 300 * time.Millisecond
	t.Cleanup(func() { streamWriteWait = old })
	ns := testenv.StartNATS(t)
	a := newTestAPIOn(t, ns)
	const id = "run_stuck"
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_stuck", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	following := func() int {
		sz, err := ns.Server.Subsz(&server.SubszOptions{Subscriptions: true, Test: bus.OutputSubject(id)})
		if err != nil {
			t.Fatal(err)
		}
		return len(sz.Subs)
	}

	u, _ := url.Parse(a.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/runs/%s/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", id, u.Host, testToken)
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("the stream's answer: %q %v", status, err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if following() == 0 {
			return fmt.Errorf("the stream does not follow the run's output yet")
		}
		return nil
	})
	// The run prints far more than the connection's buffers hold; the
	// client reads none of it.
	line := strings.Repeat("x", 4000)
	n := 0
	testenv.Eventually(t, 20*time.Second, func() error {
		for range 200 {
			n++
			publishLine(t, a, id, 1, n, line)
		}
		if following() > 0 {
			return fmt.Errorf("the stream still follows the run for a client that reads nothing")
		}
		return nil
	})
}
