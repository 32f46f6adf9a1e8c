package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/message"
)

func init() { clientCommands = append(clientCommands, newRunsCmd) }

func newRunsCmd() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Follow, list and cancel runs",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErr("choose a subcommand: watch, list or cancel (see %s --help)", cmd.CommandPath())
		},
	}
	addClientFlags(cmd, o)

	var timeout, every, startTimeout time.Duration
	var rf runFilter
	watch := &cobra.Command{
		Use:   "watch [RUN]",
		Short: "Follow a run's status changes and output until it ends, or the newest runs",
		Long: `With RUN, follow that run (server-sent events from the API): print each
status change and the job's output lines, and end when the run ends — exit
0 when it succeeded, 6 when it ended otherwise. A run that does not exist
yet (a delivery still on its way) is waited for --start-timeout, then exit 3.

Without RUN, poll the newest runs (filtered by --webhook, --job, --status):
print them as they are first (--limit, 20 by default, as kubectl get --watch lists
before it follows), then a line whenever one appears or changes status,
until Ctrl-C or --timeout.`,
		Example: `  hookrun runs watch run_k3x...
  hookrun runs watch --webhook report-github-push`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			if len(args) == 0 {
				if every < 100*time.Millisecond {
					return usageErr("--every %s: must be at least 100ms", every)
				}
				return pollRuns(ctx, c, rf, every, cmd.OutOrStdout())
			}
			r, err := watchRun(ctx, c, args[0], "", cmd.OutOrStdout(), startTimeout)
			if err != nil {
				return c.inNamespace(err)
			}
			return runResult(r)
		},
	}
	watch.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: never); watching a run that has not ended then exits 1")
	watch.Flags().DurationVar(&every, "every", time.Second, "poll interval without RUN")
	watch.Flags().DurationVar(&startTimeout, "start-timeout", 5*time.Second, "how long to wait for a run that does not exist yet (its delivery may be on its way)")
	addRunFilterFlags(watch, &rf, 20)

	var out string
	var lf runFilter
	list := &cobra.Command{
		Use:   "list",
		Short: "List the newest runs (the same as get runs)",
		Args:  usageArgs(noArgs("narrow with --webhook, --job or --status; one run: hookrun get run RUN")),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			return getter{c: c, o: o, out: cmd.OutOrStdout(), format: out, now: time.Now()}.get(cmd.Context(), "runs", "", lf)
		},
	}
	addOutputFlag(list, &out, "output format")
	addRunFilterFlags(list, &lf, 20)

	cancel := &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a queued or running run",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodPost, "/v1/runs/"+url.PathEscape(args[0])+"/cancel", c.nsQuery(), nil)
			if err != nil {
				return c.inNamespace(err)
			}
			var r message.Run
			if err := decodeAnswer(resp.Body, &r); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s: cancel requested (status %s)\n", args[0], r.Status)
			return nil
		},
	}
	cmd.AddCommand(watch, list, cancel)
	return cmd
}

// runResult is the exit of a command that waited for a run: 0 when it
// succeeded, 6 otherwise.
func runResult(r *message.Run) error {
	if r.Status == message.StatusSucceeded {
		return nil
	}
	msg := fmt.Sprintf("run %s ended %s", r.ID, r.Status)
	if r.ExitCode != nil {
		msg += fmt.Sprintf(" (exit %d)", *r.ExitCode)
	}
	if r.Error != "" {
		msg += ": " + r.Error
	}
	return failErr(codeRunFailed, "%s", msg)
}

// sseEvent is one server-sent event.
type sseEvent struct {
	Name string
	Data string
	ID   string // a live output line's "<attempt>.<n>" ("" for others)
}

// readEvents reads server-sent events from r until it ends, calling f for
// each; f returning false stops reading.
func readEvents(r io.Reader, f func(sseEvent) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if len(data) > 0 || ev.Name != "" {
				ev.Data = strings.Join(data, "\n")
				if !f(ev) {
					return nil
				}
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"): // comment (keep-alive)
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.Name = value
			case "id":
				ev.ID = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// watchRun follows a run's events until it ends and prints its status
// changes and output. A run not found is retried for appear (it may still
// be on its way through the dispatcher), then reported as not found.
// delivery, when known (a send or a replay), is the delivery whose run to
// follow: a run id is the event's, and an event sent again after its dedup
// window runs again under it, after the earlier run's end.
func watchRun(ctx context.Context, c *apiClient, id, delivery string, out io.Writer, appear time.Duration) (*message.Run, error) {
	p := &runPrinter{out: out, seen: map[string]bool{}, printed: map[string]*attemptOutput{}, delivery: delivery}
	deadline := time.Now().Add(appear)
	failures := 0
	var lastErr error // what the last try met, when it ended before ctx
	for {
		before := p.progress()
		final, err := p.follow(ctx, c, id)
		if final != nil {
			p.finish(final)
			return final, nil
		}
		if ctx.Err() == nil {
			lastErr = err
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if p.progress() == 0 && lastErr != nil && !p.connected {
					// Nothing of the run was ever read: not a run still
					// going, but one not found or an API not answering.
					return nil, failErr(exitCode(lastErr), "%s (gave up at --timeout)", errMessage(lastErr))
				}
				return nil, failErr(codeError, "run %s has not ended yet (timed out)", id)
			}
			return nil, failErr(codeInterrupted, "stopped watching run %s", id)
		}
		if p.progress() > before {
			// The stream brought something new before it broke (a
			// proxy's connection lifetime, a keys restart): only breaks
			// in a row without news count. Its replay of what was
			// printed already is no news.
			failures = 0
		}
		wait := streamRetryWait
		switch exitCode(err) {
		case codeNotFound:
			if time.Now().After(deadline) {
				return nil, err
			}
		case codeRefused, codeUsage:
			return nil, err
		default: // the stream broke (or ended early): reconnect; events replay from the first
			if failures++; failures > maxStreamFailures {
				if err == nil {
					err = failErr(codeUnavailable, "the event stream of run %s keeps ending before the run", id)
				}
				return nil, err
			}
			wait = min(wait<<(failures-1), 5*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// streamRetryWait is the first wait before a run's event stream is opened
// again (a variable for tests).
var streamRetryWait = 250 * time.Millisecond

// maxStreamFailures bounds the breaks in a row of a run's event stream
// before a watch gives up: with waits doubling from 250 ms up to 5 s, about
// 25 s without a stream that works, longer than a keys restart.
const maxStreamFailures = 8

// runPrinter prints a run's events once each, across reconnections.
//
// A new stream replays the run from its first status: the statuses are
// known by delivery, status and attempt, and the output by the attempt
// whose "running" came before it (keys sends an attempt's output after
// that status and before the one that ends it), which the new stream sends
// again from its start. So the printer keeps what it printed of each
// attempt's output, and a stream's output of an attempt is printed only
// past that.
type runPrinter struct {
	out        io.Writer
	seen       map[string]bool // delivery+status+attempt already printed
	liveOutput bool
	delivery   string // the delivery whose run is followed ("": the run id's current)
	pinNext    bool   // the delivery followed was a duplicate: follow the next run status' delivery
	connected  bool   // the last follow got the run's stream (it exists, though nothing came yet)

	printed    map[string]*attemptOutput // delivery+attempt → its output printed
	cur        *outputCursor             // the attempt the stream is at (nil: none yet in this stream)
	curKey     string                    // its delivery+attempt
	curAttempt int                       // its attempt
	midLine    bool                      // the output printed last did not end its line
}

// follow reads one event stream; it returns the final status when the run
// ended, else the reason the stream stopped.
func (p *runPrinter) follow(ctx context.Context, c *apiClient, id string) (*message.Run, error) {
	q := c.nsQuery()
	if p.delivery != "" {
		q.Set("delivery", p.delivery)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/runs/"+url.PathEscape(id)+"/events?"+q.Encode(), nil)
	if err != nil {
		return nil, usageErr("%v", unwrapURLError(err)) // its URL may hold a password
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	stream := &http.Client{} // no timeout: the stream lasts as long as the run
	p.connected = false
	resp, err := stream.Do(req)
	if err != nil {
		return nil, failErr(codeUnavailable, "cannot reach the API at %s: %v", redactedURL(c.base), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, c.answerError("/v1/runs/"+url.PathEscape(id)+"/events", resp.StatusCode, resp.Status, b)
	}
	p.connected = true
	var final *message.Run
	p.cur, p.curKey = nil, "" // the stream starts from the run's first status
	err = readEvents(resp.Body, func(ev sseEvent) bool {
		switch ev.Name {
		case "status":
			var r message.Run
			if json.Unmarshal([]byte(ev.Data), &r) != nil {
				return true
			}
			if p.delivery != "" && r.Kind == message.KindDelivery && r.Status == message.DeliveryDuplicate && r.DeliveryID == p.delivery {
				// The delivery followed is a duplicate only the
				// dispatcher's dedup claim caught (the ingress answered
				// it as new): keys goes on with the run it repeats,
				// whose statuses are another delivery's. They are this
				// one's outcome now, here and after a reconnect.
				p.delivery, p.pinNext = "", true
				p.endLine()
				fmt.Fprintf(p.out, "delivery %s: a duplicate of run %s; following that run\n", r.DeliveryID, id)
				return true
			}
			if p.delivery != "" && r.DeliveryID != "" && r.DeliveryID != p.delivery {
				return true // another delivery's run under the same id (an older keys service)
			}
			if p.pinNext && r.Kind != message.KindDelivery && r.DeliveryID != "" {
				// The run the duplicate repeats, as keys found it: a
				// reconnect asks for its delivery's, not for whatever run
				// of the event is current by then.
				p.delivery, p.pinNext = r.DeliveryID, false
			}
			if r.Status == message.StatusRunning {
				p.startAttempt(fmt.Sprintf("%s/%d", r.DeliveryID, r.Attempt))
				p.curAttempt = r.Attempt
			}
			p.status(&r)
			if message.Final(r.Status) {
				final = &r
				return false
			}
		case "output":
			var line string
			if json.Unmarshal([]byte(ev.Data), &line) == nil {
				p.liveOutput = true
				p.output(line, ev.ID)
			}
		}
		return true
	})
	if final != nil {
		return final, nil
	}
	if err != nil && ctx.Err() == nil {
		return nil, failErr(codeUnavailable, "the event stream of run %s broke: %v", id, err)
	}
	return nil, nil
}

func (p *runPrinter) status(r *message.Run) {
	key := fmt.Sprintf("%s/%s/%d", r.DeliveryID, r.Status, r.Attempt)
	if p.seen[key] || message.Final(r.Status) {
		return // a final status is printed by finish, after the output
	}
	p.seen[key] = true
	p.endLine()
	line := "run " + r.ID + ": " + r.Status
	if r.Status == message.StatusRunning && r.Attempt > 0 {
		line += fmt.Sprintf(" (attempt %d)", r.Attempt)
	}
	fmt.Fprintln(p.out, line)
}

// finish prints the output the live stream did not carry (a run that ended
// before the watch began) and the final status.
func (p *runPrinter) finish(r *message.Run) {
	p.endLine()
	if !p.liveOutput && r.Output != "" {
		fmt.Fprint(p.out, r.Output)
		if !strings.HasSuffix(r.Output, "\n") {
			fmt.Fprintln(p.out)
		}
	}
	line := "run " + r.ID + ": " + r.Status
	if r.ExitCode != nil {
		line += fmt.Sprintf(" (exit %d)", *r.ExitCode)
	}
	if d := runDuration(*r); d != "" {
		line += " in " + d
	}
	if r.Error != "" {
		line += ": " + oneLine(r.Error)
	}
	fmt.Fprintln(p.out, line)
}

// startAttempt places the output the stream sends next as attempt key's
// (delivery+attempt), from its start. A "running" of the attempt the
// stream is at already (stored again) does not start it over.
func (p *runPrinter) startAttempt(key string) {
	if p.cur != nil && key == p.curKey {
		return
	}
	a := p.printed[key]
	if a == nil {
		a = &attemptOutput{}
		p.printed[key] = a
	}
	p.cur, p.curKey = &outputCursor{a: a}, key
}

// output prints the part of text, the stream's next output, that was not
// printed yet. The text goes out as it came: the executor sends a long
// line in pieces, only the last of which ends with its "\n" (keys passes
// them on as they are), so a piece is not a line of its own. Older
// executors sent the same pieces, only cut anywhere, a character split
// between two showing as U+FFFD.
//
// A live line comes numbered (id "<attempt>.<n>", from keys of the
// eleventh session on): it is printed if no line of that number or a
// later one was, whatever its text. So lines that repeat earlier text are
// neither taken for a replay of it nor printed twice, and a stream that
// got no snapshot of the attempt (the executor did not answer keys in
// time) loses none of the lines after it.
func (p *runPrinter) output(text, id string) {
	if p.cur == nil {
		p.startAttempt("") // no "running" before it in this stream (a keys service that sends none)
	}
	if n, ok := lineNumber(id, p.curAttempt); ok {
		a := p.cur.a
		if n <= a.lastLine {
			return
		}
		a.lastLine = n
		a.add(text)
		p.cur.at = a.n
		fmt.Fprint(p.out, text)
		p.midLine = !strings.HasSuffix(text, "\n")
		return
	}
	if s := p.cur.next(text); s != "" {
		fmt.Fprint(p.out, s)
		p.midLine = !strings.HasSuffix(s, "\n")
	}
}

// endLine ends a line of output left open (a piece, or an attempt's output
// that does not end with "\n") before a line of the printer's own.
func (p *runPrinter) endLine() {
	if p.midLine {
		fmt.Fprintln(p.out)
		p.midLine = false
	}
}

// truncatedMark begins the output of an attempt whose executor kept only
// its end (the snapshot of a running attempt, the tail in its record).
const truncatedMark = "[…output truncated…]\n"

// maxPrintedKept bounds what the printer keeps of an attempt's output to
// match a replay against: more than the executor's tail (64 KiB by
// default), which is what a replay that is not from the start holds.
const maxPrintedKept = 1 << 20

// attemptOutput is what was printed of one attempt's output: its length,
// and its end.
// progress counts what the printer has printed: statuses and output bytes.
// A stream that raises it brought news.
func (p *runPrinter) progress() int {
	n := len(p.seen)
	for _, a := range p.printed {
		n += a.n
	}
	return n
}

type attemptOutput struct {
	n        int
	text     []byte // the last maxPrintedKept bytes at least, or all
	lastLine int    // the number of the last numbered live line printed
}

// lineNumber is the number of an output line from its event id
// "<attempt>.<n>.<delivery>" ("<attempt>.<n>" from an older keys service),
// if the id has one and names attempt.
func lineNumber(id string, attempt int) (int, bool) {
	f := strings.SplitN(id, ".", 3)
	if len(f) < 2 {
		return 0, false
	}
	at, err1 := strconv.Atoi(f[0])
	num, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || num < 1 || at != attempt {
		return 0, false
	}
	return num, true
}

func (a *attemptOutput) add(s string) {
	a.n += len(s)
	a.text = append(a.text, s...)
	if len(a.text) > 2*maxPrintedKept {
		a.text = append(a.text[:0], a.text[len(a.text)-maxPrintedKept:]...)
	}
}

// agrees reports whether s, at offset at of the attempt's output, is what
// was printed there, as far as the text kept holds it.
func (a *attemptOutput) agrees(s string, at int) bool {
	base := a.n - len(a.text)
	lo, hi := max(at, base), min(at+len(s), a.n)
	return lo >= hi || string(a.text[lo-base:hi-base]) == s[lo-at:hi-at]
}

// outputCursor is where one stream's output of an attempt stands against
// what was printed of it. Counting is enough while the stream resends the
// attempt's output from its start, which it does whether it comes from the
// record that ended the attempt, from the executor's snapshot or live, and
// in pieces cut anywhere. An output the executor kept only the end of
// begins with truncatedMark instead, somewhere within the output, and the
// same text sent otherwise (lines a slow stream lost) cannot be counted
// either: the cursor then finds the text in what was printed.
type outputCursor struct {
	a  *attemptOutput
	at int // the offset in the attempt's output of the stream's next byte; -1: not known
}

// next returns the part of s, the stream's next output of the attempt,
// past what was printed, and records it as printed.
func (c *outputCursor) next(s string) string {
	a := c.a
	if c.at == 0 && a.n > 0 && s == truncatedMark {
		c.at = -1
		return ""
	}
	if c.at >= 0 && !a.agrees(s, c.at) {
		c.at = -1
	}
	if c.at < 0 {
		// The last place is the likeliest: a replay that is not from the
		// start holds the end of the output.
		if i := bytes.LastIndex(a.text, []byte(s)); i >= 0 {
			c.at = a.n - len(a.text) + i
		} else {
			c.at = a.n - overlap(a.text, s)
		}
	}
	fresh := s[min(len(s), max(0, a.n-c.at)):]
	c.at += len(s)
	a.add(fresh)
	return fresh
}

// overlap returns the length of the longest start of s, shorter than s,
// that text ends with.
func overlap(text []byte, s string) int {
	for o := min(len(s)-1, len(text)); o > 0; o-- {
		if string(text[len(text)-o:]) == s[:o] {
			return o
		}
	}
	return 0
}

// pollRuns prints the newest runs as they appear and change, until ctx ends.
func pollRuns(ctx context.Context, c *apiClient, rf runFilter, every time.Duration, out io.Writer) error {
	if rf.limit < 1 || rf.limit > 1000 {
		return usageErr("--limit %d: must be from 1 to 1000", rf.limit)
	}
	last := map[string]string{} // run id → delivery and status last printed
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		var l struct {
			Runs []message.Run `json:"runs"`
		}
		err := c.getJSON(ctx, "/v1/runs", rf.query(c.ns), &l)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		// Oldest first, so lines read in time order.
		for i := len(l.Runs) - 1; i >= 0; i-- {
			r := l.Runs[i]
			if last[r.ID] == r.DeliveryID+" "+r.Status {
				continue
			}
			last[r.ID] = r.DeliveryID + " " + r.Status
			line := fmt.Sprintf("%s  webhook/%s  job/%s  %s", r.ID, r.Webhook, r.Job, r.Status)
			if r.ExitCode != nil {
				line += fmt.Sprintf(" (exit %d)", *r.ExitCode)
			}
			fmt.Fprintln(out, line)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
