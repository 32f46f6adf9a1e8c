package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// A status record carries the run's webhook payload (up to 64 KiB of
// body), its arguments and its output tail, and JSON takes six bytes for a
// control byte (\u00XX): a record can be over NATS' max_payload, which
// NATS refuses every time it is sent. Every status the executor stores
// ("running", a retry's "queued", the final one) is fitted alike, as the
// dispatcher fits its "queued" (dispatcher/outcome.go, fitRecord), with
// the same markers (message.PayloadLeftOut): the payload left out with a
// marker first, then the output cut to its end.
// Unfitted, a "running" refused made the run come back for ever, and a
// retry's "queued" refused made its next attempt look interrupted (free).

// statusHeaderRoom is what a status message's headers may take of
// max_payload.
const statusHeaderRoom = 1 << 10

// publishStatus stores rec as runstatus.PublishAfter does. A record NATS
// refuses as over its max_payload (the client tells, without a round trip:
// the common record costs nothing more) is fitted and stored again; rec
// keeps what was left out, so the run's later statuses leave it out too.
func (x *Executor) publishStatus(ctx context.Context, rec *message.Run, after uint64, log *slog.Logger) (uint64, error) {
	seq, err := runstatus.PublishAfter(ctx, x.js, rec, after)
	if !errors.Is(err, nats.ErrMaxPayload) {
		return seq, err
	}
	limit := x.js.Conn().MaxPayload()
	if ferr := fitStatus(rec, limit); ferr != nil {
		return 0, fmt.Errorf("%w: %w", err, ferr)
	}
	log.Warn("status over NATS' max_payload: storing it without its webhook payload, its output cut to fit", "status", rec.Status, "max_payload", limit)
	return runstatus.PublishAfter(ctx, x.js, rec, after)
}

// fitStatus makes status record r fit, with its headers, in limit bytes:
// its webhook payload left out (a marker in its place), then its error cut
// to maxStrippedError (longer is noise), then its output cut to its end
// (marked as a tail that dropped lines is), then its arguments' values
// left out. It fails only when r does not fit even so.
func fitStatus(r *message.Run, limit int64) error {
	r.Schema = message.SchemaRun // measured as stored
	over := func() (int64, error) {
		data, err := message.MarshalNoHTMLEscape(r)
		return int64(len(data)) + statusHeaderRoom - limit, err
	}
	n, err := over()
	if err != nil || limit <= 0 || n <= 0 {
		return err
	}
	if r.WebhookPayload != "" && r.WebhookPayload != message.PayloadLeftOut {
		r.WebhookPayload = message.PayloadLeftOut
		r.WebhookPayloadTruncated = false // the marker says more
		if n, err = over(); err != nil || n <= 0 {
			return err
		}
	}
	if len(r.Error) > maxStrippedError {
		r.Error = strings.ToValidUTF8(r.Error[:maxStrippedError], "") + "…"
		if n, err = over(); err != nil || n <= 0 {
			return err
		}
	}
	output := r.Output
	if output != "" {
		r.Output = cutOutput(output, n)
		if n, err = over(); err != nil || n <= 0 {
			return err
		}
	}
	if len(r.Args) > 0 {
		// The output is cut again from the whole: without the arguments,
		// more of it may fit.
		args := make(map[string]string, len(r.Args))
		for k := range r.Args {
			args[k] = message.ArgLeftOut
		}
		r.Args, r.Output = args, output
		if n, err = over(); err != nil || n <= 0 {
			return err
		}
		if output != "" {
			r.Output = cutOutput(output, n)
			if n, err = over(); err != nil || n <= 0 {
				return err
			}
		}
	}
	return fmt.Errorf("the run's status record takes %d bytes even without its payload, output and arguments, over NATS' max_payload of %d", n+limit, limit)
}

// cutOutput returns the longest end of output (keepEnd) whose JSON takes
// at least over bytes less than output's: a byte of output takes one to
// six in JSON (a control byte escaped), so the cut is searched for by
// measure, not reckoned from over.
func cutOutput(output string, over int64) string {
	size := func(s string) int64 {
		b, _ := message.MarshalNoHTMLEscape(s)
		return int64(len(b))
	}
	within := size(output) - over
	lo, hi := 0, len(output)-1 // output's length: kept whole, not short enough
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if size(keepEnd(output, mid)) <= within {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return keepEnd(output, lo)
}

// keepEnd returns output cut to at most max bytes: its end, after
// message.OutputTruncated (as a tail that dropped lines begins), cut
// between two UTF-8 characters. Output within max is returned as it is;
// where max leaves no room beside the marker, the marker alone.
func keepEnd(output string, max int) string {
	if len(output) <= max {
		return output
	}
	body := strings.TrimPrefix(output, message.OutputTruncated)
	room := max - len(message.OutputTruncated)
	if room <= 0 {
		return message.OutputTruncated
	}
	i := len(body) - room
	for i < len(body) && !utf8.RuneStart(body[i]) {
		i++
	}
	return message.OutputTruncated + body[i:]
}
