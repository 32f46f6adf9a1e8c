package keys

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/message"
)

// Live lines a slow reader lost on their way (its buffer full) are sent
// from the executor's output so far, in order, before the line after
// them; the stream goes on live. Without that output (the executor did not
// answer, or answered for another attempt) the stream goes on after them,
// as it did.
func TestRunStream_LiveLinesLostOnTheWayAreFilledFromTheOutputSoFar(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapshot func(attempt int) (string, int, bool)
		want     string
	}{
		{"filled", func(attempt int) (string, int, bool) { return "x\nxx\nxxx\nxxxx\nxxxxx\n", 5, attempt == 1 }, "1.1.d 1.2.d 1.3.d 1.4.d 1.5.d 1.6.d 1.end.d"},
		{"no answer", func(int) (string, int, bool) { return "", 0, false }, "1.1.d 1.2.d 1.5.d 1.6.d 1.end.d"},
		{"another attempt's", func(attempt int) (string, int, bool) { return "x\nxx\nxxx\nxxxx\nxxxxx\n", 5, attempt == 2 }, "1.1.d 1.2.d 1.5.d 1.6.d 1.end.d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			st := &runStream{w: echo.NewResponse(rec, echo.New()), liveFrom: 1, snapshotNow: tc.snapshot}
			lines := make(chan outputLine, 8)
			st.status(&message.Run{Kind: message.KindRun, ID: "r", DeliveryID: "d", Status: message.StatusRunning, Attempt: 1}, lines)
			for _, n := range []int{1, 2, 5, 6} { // 3 and 4 lost
				st.line(outputLine{text: []byte(strings.Repeat("x", n) + "\n"), n: n, attempt: 1, delivery: "d"})
			}
			st.status(&message.Run{Kind: message.KindRun, ID: "r", DeliveryID: "d", Status: message.StatusSucceeded, Attempt: 1,
				Output: "x\nxx\nxxx\nxxxx\nxxxxx\nxxxxxx\n", OutputLines: 6}, lines)
			var got []string
			for _, m := range regexp.MustCompile(`(?m)^id: (\S+)$`).FindAllStringSubmatch(rec.Body.String(), -1) {
				got = append(got, m[1])
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("event ids %v, want %s\n%s", got, tc.want, rec.Body.String())
			}
		})
	}
}
