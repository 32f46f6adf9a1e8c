package keys

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/message"
)

// Live lines a slow reader lost on their way (its buffer full) are not
// skipped for good: no more lines of the attempt go live, and the record
// that ends it sends the rest from the first one lost, so every line
// comes once and in order.
func TestRunStream_LiveLinesLostOnTheWayComeWithTheEnd(t *testing.T) {
	rec := httptest.NewRecorder()
	st := &runStream{w: echo.NewResponse(rec, echo.New()), liveFrom: 1}
	lines := make(chan outputLine, 8)
	st.status(&message.Run{Kind: message.KindRun, ID: "r", DeliveryID: "d", Status: message.StatusRunning, Attempt: 1}, lines)
	for _, n := range []int{1, 2, 5, 6} { // 3 and 4 lost
		st.line(outputLine{text: []byte(strings.Repeat("x", n) + "\n"), n: n, attempt: 1, delivery: "d"})
	}
	st.status(&message.Run{Kind: message.KindRun, ID: "r", DeliveryID: "d", Status: message.StatusSucceeded, Attempt: 1,
		Output: "x\nxx\nxxx\nxxxx\nxxxxx\nxxxxxx\n", OutputLines: 6}, lines)
	ids := regexp.MustCompile(`(?m)^id: (\S+)$`).FindAllStringSubmatch(rec.Body.String(), -1)
	var got []string
	for _, m := range ids {
		got = append(got, m[1])
	}
	if want := "1.1.d 1.2.d 1.3.d 1.4.d 1.5.d 1.6.d 1.end.d"; strings.Join(got, " ") != want {
		t.Fatalf("event ids %v, want %s\n%s", got, want, rec.Body.String())
	}
}
