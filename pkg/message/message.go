// Package message defines the versioned messages that travel between
// Hookrun's services: a Delivery (ingress → DELIVERIES), a RunRequest
// (dispatcher → RUNS) and a Run status event (→ STATUS).
//
// Each message carries its schema name in the "schema" field and in the
// Hookrun-Schema header; the JSON Schemas live in schemas/ and are embedded.
// A reader refuses a message whose schema it does not know rather than
// guessing at its fields.
package message

import (
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// Schema names. A breaking change gets a new version and readers of both.
const (
	SchemaDelivery   = "hookrun.delivery.v1"
	SchemaRunRequest = "hookrun.runrequest.v1"
	SchemaRun        = "hookrun.run.v1"
)

// Schemas holds the JSON Schema documents, one per schema name.
//
//go:embed schemas/*.json
var Schemas embed.FS

// Delivery is one accepted HTTP call, as the ingress stored it. Headers and
// query carry no credential: the ingress strips them before publishing.
type Delivery struct {
	Schema      string              `json:"schema"`
	ID          string              `json:"id"`
	Namespace   string              `json:"namespace"`
	Webhook     string              `json:"webhook"`
	Job         string              `json:"job"`
	EventID     string              `json:"eventId"`
	RunID       string              `json:"runId"`
	Method      string              `json:"method"`
	ContentType string              `json:"contentType,omitempty"`
	Body        []byte              `json:"body,omitempty"`
	Header      map[string][]string `json:"header,omitempty"`
	Query       map[string][]string `json:"query,omitempty"`
	Principal   string              `json:"principal"`
	Profile     string              `json:"profile,omitempty"`
	ReceivedAt  time.Time           `json:"receivedAt"`
	SourceIP    string              `json:"sourceIp,omitempty"`
	ReplayOf    string              `json:"replayOf,omitempty"`
}

// Source is the webhook_source of d's run: the signature profile that
// authenticated it, else the auth mode.
func (d *Delivery) Source() string {
	if d.Profile != "" {
		return d.Profile
	}
	if strings.HasPrefix(d.Principal, "key:") {
		return "apikey"
	}
	return "url"
}

// RunRequest is everything an executor needs to run a job once.
type RunRequest struct {
	Schema      string              `json:"schema"`
	ID          string              `json:"id"`
	Namespace   string              `json:"namespace"`
	Job         string              `json:"job"`
	Webhook     string              `json:"webhook"`
	DeliveryID  string              `json:"deliveryId"`
	EventID     string              `json:"eventId"`
	Args        map[string]string   `json:"args"`
	Payload     []byte              `json:"payload,omitempty"`
	ContentType string              `json:"contentType,omitempty"`
	Header      map[string][]string `json:"header,omitempty"`
	// Method and Query are the delivery's, for an HTTP job's body template
	// (.method, .query), as its argument templates saw them; the query has
	// no credential (see Delivery). A request from a dispatcher older than
	// them has neither, and its body template sees them empty.
	Method     string              `json:"method,omitempty"`
	Query      map[string][]string `json:"query,omitempty"`
	ReceivedAt time.Time           `json:"receivedAt"`
	Source     string              `json:"source,omitempty"`
	QueuedAt   time.Time           `json:"queuedAt"`
	Replay     bool                `json:"replay,omitempty"`
	Callback   *Callback           `json:"callback,omitempty"`
}

// Callback names where final status events of a run are POSTed.
type Callback struct {
	URL string `json:"url"`
	// URLSecretRef, when set, names the secret whose value is the URL (URL
	// is then empty): the executor reads it when it sends the callback.
	URLSecretRef string `json:"urlSecretRef,omitempty"`
	SecretRef    string `json:"secretRef,omitempty"`
}

// Run statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusTimedOut  = "timed_out"
	StatusCancelled = "cancelled"
	StatusFiltered  = "filtered"
	StatusRejected  = "rejected"
)

// CancelledWhileQueued is the error of the cancelled status the keys
// service stores for a run it cancels before any executor took it: an
// executor that then takes the run's request counts it.
const CancelledWhileQueued = "cancelled while queued"

// Delivery outcomes (the status of a delivery record).
const (
	DeliveryDispatched = "dispatched"
	DeliveryDuplicate  = "duplicate"
	DeliveryFiltered   = "filtered"
	DeliveryRejected   = "rejected"
)

// Final reports whether status ends a run.
func Final(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusTimedOut, StatusCancelled, StatusFiltered, StatusRejected:
		return true
	}
	return false
}

// MaxStatusPayload bounds the payload copied into status events; the whole
// body stays in the delivery.
const MaxStatusPayload = 64 << 10

// PayloadTruncated reports whether StatusPayload cuts body.
func PayloadTruncated(body []byte) bool { return len(body) > MaxStatusPayload }

// StatusPayload is the webhook_payload of a status event: the body, or its
// first MaxStatusPayload bytes cut back to the start of a UTF-8 character,
// so that a multi-byte character cut in two does not end it as U+FFFD.
func StatusPayload(body []byte) string {
	if len(body) <= MaxStatusPayload {
		return string(body)
	}
	cut := MaxStatusPayload
	for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(body[cut]); i++ {
		cut--
	}
	if !utf8.RuneStart(body[cut]) { // not UTF-8 text there: cut anywhere
		cut = MaxStatusPayload
	}
	return string(body[:cut])
}

// Markers of what a run's status record leaves out to stay within NATS'
// max_payload, whoever stores the record (the dispatcher its "queued", the
// executor the later ones). Only the record (the API's view of the run) is
// cut: the delivery keeps the whole body, the run request the whole
// arguments.
const (
	PayloadLeftOut = "[webhook_payload left out: the run's status record would be over NATS' max_payload; the delivery holds the whole body]"
	ArgLeftOut     = "[left out: the run's status record would be over NATS' max_payload]"
)

// OutputTruncated begins a run's output (its record's, a running run's
// snapshot) when lines before the kept tail were dropped.
const OutputTruncated = "[…output truncated…]\n"

// Run is a status event and the API's view of a run (or, with Kind
// "delivery", of a delivery's outcome). The last event per subject is the
// current state, so every event carries the whole record.
type Run struct {
	Schema     string     `json:"schema"`
	Kind       string     `json:"kind"`
	ID         string     `json:"id"`
	Namespace  string     `json:"namespace"`
	Webhook    string     `json:"webhook"`
	Job        string     `json:"job,omitempty"`
	DeliveryID string     `json:"deliveryId,omitempty"`
	RunID      string     `json:"runId,omitempty"`
	Status     string     `json:"status"`
	Attempt    int        `json:"attempt,omitempty"`
	ExitCode   *int       `json:"exitCode,omitempty"`
	QueuedAt   *time.Time `json:"queuedAt,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// RetryAt is when a queued run's next attempt is due, while it waits
	// out its retry backoff as a scheduled message.
	RetryAt *time.Time `json:"retryAt,omitempty"`
	// Copy names the run request the executor that wrote this record
	// ran: 0 the dispatcher's, n the copy scheduled for attempt n. Of two
	// requests of one run (a copy, and an original redelivered after a
	// crash), only the one that owns the run runs it.
	Copy int `json:"copy,omitempty"`
	// Interrupted counts the run's attempts before this one whose
	// executor stopped (shut down, or died) before they ended: the job did
	// not fail them, and up to three do not use up its retries.
	Interrupted int `json:"interrupted,omitempty"`
	// RequestSeq is the RUNS sequence of the request the executor that
	// wrote this "running" record runs. Two messages of one request (the
	// dispatcher's request stored again once RUNS' duplicate window had
	// passed) have the same Copy; this tells them apart.
	RequestSeq uint64 `json:"requestSeq,omitempty"`
	Output     string `json:"output,omitempty"`
	// OutputLines is the number of the last output line the attempt
	// published live (lines are numbered from 1 per attempt; a long line
	// goes in numbered pieces): when Output holds exactly that many
	// lines, its k-th is line k, and a client that had lines up to n
	// (its SSE Last-Event-ID) is sent only the rest.
	OutputLines int               `json:"outputLines,omitempty"`
	Error       string            `json:"error,omitempty"`
	Args        map[string]string `json:"args,omitempty"`
	Replay      bool              `json:"replay,omitempty"`

	WebhookPayload string `json:"webhook_payload,omitempty"`
	// WebhookPayloadTruncated: WebhookPayload is the body's first
	// MaxStatusPayload bytes only (StatusPayload); the delivery holds it
	// whole. Cut, a JSON body is no longer JSON: this says why.
	WebhookPayloadTruncated bool      `json:"webhook_payload_truncated,omitempty"`
	WebhookEventID          string    `json:"webhook_event_id,omitempty"`
	WebhookReceivedAt       time.Time `json:"webhook_received_at"`
	WebhookSource           string    `json:"webhook_source,omitempty"`
	Callback                *Callback `json:"callback,omitempty"`
}

// Kinds of status records.
const (
	KindRun      = "run"
	KindDelivery = "delivery"
)

// The messages are encoded and decoded by goccy/go-json: the same bytes as
// encoding/json (TestMarshal_SameBytesAsEncodingJSON and the fuzz target
// FuzzCodec_MatchesEncodingJSON hold it to that), at a fraction of the cost —
// decoding a delivery with a 1 KiB body took 13 µs with encoding/json and
// 2.4 µs with it, the largest item in the dispatcher's profile.

// Marshal encodes a message as encoding/json.Marshal would.
func Marshal(v any) ([]byte, error) { return gojson.Marshal(v) }

// MarshalNoHTMLEscape is Marshal without encoding/json's escaping of <, >
// and & (valid JSON either way): for JSON read by programs, not embedded in
// HTML, where the escapes would only multiply the size.
func MarshalNoHTMLEscape(v any) ([]byte, error) {
	return gojson.MarshalWithOption(v, gojson.DisableHTMLEscape())
}

// Encode writes a message and a newline to w, as an encoding/json Encoder would.
func Encode(w io.Writer, v any) error { return gojson.NewEncoder(w).Encode(v) }

// AnotherVersion reports whether a message whose schema header is got, and
// which did not decode as want, is another version of want's kind
// ("hookrun.delivery.v2" for "hookrun.delivery.v1"): one a later release
// wrote during a rolling upgrade. Such a message was accepted (a sender
// got 202 for it) and must wait for a reader that can read it, not be
// terminated as corrupt.
func AnotherVersion(got, want string) bool {
	kind, _, ok := strings.Cut(want, ".v")
	gotKind, _, gotOK := strings.Cut(got, ".v")
	return ok && gotOK && got != want && gotKind == kind
}

// SchemaOf is the schema a message names: its schema header, else the
// "schema" field of its JSON ("" when it has neither).
func SchemaOf(header string, data []byte) string {
	if header != "" {
		return header
	}
	var head struct {
		Schema string `json:"schema"`
	}
	_ = json.Unmarshal(data, &head)
	return head.Schema
}

// Decode unmarshals data into v after checking its schema name. The
// message types are decoded in one pass and their Schema field checked;
// any other v is checked with a first pass over the schema name.
func Decode(data []byte, want string, v any) error {
	var got string
	switch m := v.(type) {
	case *Delivery:
		if err := gojson.Unmarshal(data, m); err != nil {
			return fmt.Errorf("decode %s: %w", want, err)
		}
		got = m.Schema
	case *RunRequest:
		if err := gojson.Unmarshal(data, m); err != nil {
			return fmt.Errorf("decode %s: %w", want, err)
		}
		got = m.Schema
	case *Run:
		if err := gojson.Unmarshal(data, m); err != nil {
			return fmt.Errorf("decode %s: %w", want, err)
		}
		got = m.Schema
	default:
		var head struct {
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return fmt.Errorf("decode %s: %w", want, err)
		}
		if head.Schema != want {
			return fmt.Errorf("decode: schema %q, want %q", head.Schema, want)
		}
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("decode %s: %w", want, err)
		}
		return nil
	}
	if got != want {
		return fmt.Errorf("decode: schema %q, want %q", got, want)
	}
	return nil
}
