package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func strp(s string) *string { return &s }

func validJob() Job {
	return Job{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindJob},
		Metadata: Meta{Name: "report"},
		Spec:     JobSpec{Command: []string{"/bin/sh", "-c", "true"}},
	}
}

func validWebhook() Webhook {
	return Webhook{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindWebhook},
		Metadata: Meta{Name: "gh"},
		Spec:     WebhookSpec{Job: "report"},
	}
}

// fieldOf returns the field a validation error names ("" when err is not a FieldError).
func fieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// wantFieldError checks that err names field (none: err is nil) and, when
// msg is set, says msg.
func wantFieldError(t *testing.T, err error, field, msg string) {
	t.Helper()
	if got := fieldOf(err); got != field {
		t.Fatalf("Validate() = %v (field %q), want field %q", err, got, field)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("Validate() = %q, want it to contain %q", err, msg)
	}
}

func TestValidName_RefusesSubjectSyntax(t *testing.T) {
	for _, n := range []string{"a.b", "a*", ">", "a>b", "A", "-a", "a-", "a_b", "a b", "", strings.Repeat("a", 64)} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
	for _, n := range []string{"a", "report-github-push", "x1", strings.Repeat("a", 63)} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
}

func TestJobValidate_NamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Job)
		field string
	}{
		{"ok", func(*Job) {}, ""},
		{"wrong kind", func(j *Job) { j.Kind = "Webhook" }, "kind"},
		{"wrong api version", func(j *Job) { j.APIVersion = "v1" }, "apiVersion"},
		{"dotted name", func(j *Job) { j.Metadata.Name = "a.b" }, "metadata.name"},
		{"wildcard namespace", func(j *Job) { j.Metadata.Namespace = "*" }, "metadata.namespace"},
		{"no command", func(j *Job) { j.Spec.Command = nil }, "spec.command"},
		{"command and http", func(j *Job) { j.Spec.HTTP = &HTTPAction{URL: "http://x"} }, "spec.http"},
		{"empty program", func(j *Job) { j.Spec.Command = []string{""} }, "spec.command[0]"},
		{"relative http url", func(j *Job) { j.Spec.Command = nil; j.Spec.HTTP = &HTTPAction{URL: "/x"} }, "spec.http.url"},
		{"http body template that does not parse", func(j *Job) {
			j.Spec.Command = nil
			j.Spec.HTTP = &HTTPAction{URL: "http://x", Body: `{"a": {{ .body.a }`}
		}, "spec.http.body"},
		{"http body template with a loop over a number", func(j *Job) {
			j.Spec.Command = nil
			j.Spec.HTTP = &HTTPAction{URL: "http://x", Body: `{{ range 1000000000 }}x{{ end }}`}
		}, "spec.http.body"},
		{"bad arg name", func(j *Job) { j.Spec.Args = []Arg{{Name: "1x"}} }, "spec.args[0].name"},
		{"duplicate arg", func(j *Job) { j.Spec.Args = []Arg{{Name: "a-b"}, {Name: "A_B"}} }, "spec.args[1].name"},
		{"negative timeout", func(j *Job) { j.Spec.Timeout = -1 }, "spec.timeout"},
		{"huge concurrency", func(j *Job) { j.Spec.Concurrency = 10001 }, "spec.concurrency"},
		{"negative retries", func(j *Job) { j.Spec.Retries = -1 }, "spec.retries"},
		{"lower-case prefix", func(j *Job) { j.Spec.EnvPrefix = "janus" }, "spec.envPrefix"},
		{"argument hiding the payload", func(j *Job) { j.Spec.Args = []Arg{{Name: "webhook-payload"}} }, "spec.args[0].name"},
		{"env setting the input contract", func(j *Job) { j.Spec.Env = map[string]string{"HOOKRUN_RUN_ID": "x"} }, "spec.env"},
		{"env setting the contract under its prefix", func(j *Job) {
			j.Spec.EnvPrefix, j.Spec.Env = "JANUS", map[string]string{"PATH": "/opt/bin", "JANUS_WEBHOOK_PAYLOAD_FILE": "/etc/passwd"}
		}, "spec.env"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := validJob()
			tc.edit(&j)
			err := j.Validate()
			if got := fieldOf(err); got != tc.field {
				t.Fatalf("Validate() = %v (field %q), want field %q", err, got, tc.field)
			}
		})
	}
}

// TestJobValidate_RefusesJobsThatCannotRun pins what the executor could
// never run (net/http refuses the request, exec the command) as a
// validation error naming the entry, instead of a job every run of which fails.
func TestJobValidate_RefusesJobsThatCannotRun(t *testing.T) {
	httpJob := func(h HTTPAction) func(*Job) {
		return func(j *Job) {
			h.URL = "https://example.com/hook"
			j.Spec.Command, j.Spec.HTTP = nil, &h
		}
	}
	cases := []struct {
		name  string
		edit  func(*Job)
		field string
		msg   string
	}{
		{"method with a space", httpJob(HTTPAction{Method: "get x"}), "spec.http.method", "must be an HTTP method"},
		{"method with a newline", httpJob(HTTPAction{Method: "POST\r\nX-A: b"}), "spec.http.method", "must be an HTTP method"},
		{"method with a slash", httpJob(HTTPAction{Method: "GET/1"}), "spec.http.method", "must be an HTTP method"},
		{"header name with a space", httpJob(HTTPAction{Headers: map[string]string{"X-Ok": "1", "Bad Header": "x"}}),
			`spec.http.headers["Bad Header"]`, `spec.http.headers["Bad Header"]: must be a header name`},
		{"header name with a colon", httpJob(HTTPAction{Headers: map[string]string{"X-A:": "x"}}), `spec.http.headers["X-A:"]`, "must be a header name"},
		{"empty header name", httpJob(HTTPAction{Headers: map[string]string{"": "x"}}), `spec.http.headers[""]`, "must be a header name"},
		{"header name with a NUL", httpJob(HTTPAction{Headers: map[string]string{"X-\x00": "x"}}), `spec.http.headers["X-\x00"]`, "must be a header name"},
		{"header value with CRLF", httpJob(HTTPAction{Headers: map[string]string{"X-A": "1\r\nX-B: 2"}}),
			`spec.http.headers["X-A"]`, `spec.http.headers["X-A"]: the value must not contain control characters`},
		{"header value with a NUL", httpJob(HTTPAction{Headers: map[string]string{"X-A": "a\x00b"}}), `spec.http.headers["X-A"]`, "control characters"},
		{"NUL in an argument", func(j *Job) { j.Spec.Command = []string{"/bin/echo", "a\x00b"} },
			"spec.command[1]", "spec.command[1]: must not contain a NUL byte"},
		{"NUL in the program", func(j *Job) { j.Spec.Command = []string{"/bin/true\x00"} }, "spec.command[0]", "NUL"},
		{"env name with =", func(j *Job) { j.Spec.Env = map[string]string{"A=B": "c"} },
			`spec.env["A=B"]`, `spec.env["A=B"]: the name must not contain = or a NUL byte`},
		{"env name starting with =", func(j *Job) { j.Spec.Env = map[string]string{"=A": "c"} }, `spec.env["=A"]`, "must not contain ="},
		{"empty env name", func(j *Job) { j.Spec.Env = map[string]string{"": "c"} }, `spec.env[""]`, `spec.env[""]: a variable needs a name`},
		{"NUL in an env name", func(j *Job) { j.Spec.Env = map[string]string{"A\x00": "c"} }, `spec.env["A\x00"]`, "NUL"},
		{"NUL in an env value", func(j *Job) { j.Spec.Env = map[string]string{"PATH": "/bin", "A": "x\x00y"} },
			`spec.env["A"]`, `spec.env["A"]: the value must not contain a NUL byte`},
		// Linux starts no program with a string over 128 KiB, or all of
		// them over 2 MiB.
		{"argument over 128 KiB", func(j *Job) { j.Spec.Command = []string{"/bin/echo", strings.Repeat("a", 128<<10)} },
			"spec.command[1]", "Linux starts no program with an argument over 128 KiB"},
		{"variable over 128 KiB", func(j *Job) { j.Spec.Env = map[string]string{"BIG": strings.Repeat("a", 128<<10-4)} },
			`spec.env["BIG"]`, "Linux starts no program with a variable over 128 KiB"},
		{"default over 128 KiB with its variable's name", func(j *Job) {
			d := strings.Repeat("a", 128<<10-len("HOOKRUN_ARG_D="))
			j.Spec.Args = []Arg{{Name: "d", Default: &d}}
		}, "spec.args[0].default", "Linux starts no program with a variable over 128 KiB"},
		{"command, env and defaults over 1 MiB", func(j *Job) {
			d := strings.Repeat("a", 64<<10)
			for i := range 9 {
				j.Spec.Args = append(j.Spec.Args, Arg{Name: fmt.Sprintf("a%d", i), Default: &d})
			}
			j.Spec.Env = map[string]string{"A": strings.Repeat("e", 120<<10), "B": strings.Repeat("e", 120<<10)}
			j.Spec.Command = []string{"/bin/echo", strings.Repeat("c", 120<<10), strings.Repeat("c", 120<<10)}
		}, "spec", "at most 1 MiB"},
		// Linux counts each string's pointer too.
		{"a quarter of a million one-byte arguments", func(j *Job) {
			j.Spec.Command = append([]string{"/bin/echo"}, slices.Repeat([]string{"a"}, 250_000)...)
		}, "spec", "at most 1 MiB"},
		{"HTTP body over the rendered bound", func(j *Job) {
			j.Spec.Command, j.Spec.HTTP = nil, &HTTPAction{URL: "https://example.com/hook", Body: strings.Repeat("b", 1<<20+1)}
		}, "spec.http.body", "a rendered body is at most 1048576"},

		// What runs stays accepted.
		{"HTTP job with a large default", func(j *Job) {
			d := strings.Repeat("a", 200<<10)
			j.Spec.Command, j.Spec.HTTP = nil, &HTTPAction{URL: "https://example.com/hook"}
			j.Spec.Args = []Arg{{Name: "d", Default: &d}}
		}, "", ""},
		{"argument, variable and default at their limits", func(j *Job) {
			d := strings.Repeat("a", 128<<10-1-len("HOOKRUN_ARG_D="))
			j.Spec.Args = []Arg{{Name: "d", Default: &d}}
			j.Spec.Env = map[string]string{"BIG": strings.Repeat("a", 128<<10-5)}
			j.Spec.Command = []string{"/bin/echo", strings.Repeat("a", 128<<10-1)}
		}, "", ""},
		{"lower-case method", httpJob(HTTPAction{Method: "patch"}), "", ""},
		{"extension method", httpJob(HTTPAction{Method: "PURGE"}), "", ""},
		{"headers of every kind", httpJob(HTTPAction{Headers: map[string]string{
			"Authorization": "Bearer a.b.c", "x-lower": "", "X-Tab": "a\tb", "X-Unicode": "café", "X_!#$%&'*+-.^`|~": "x",
		}}), "", ""},
		{"arguments with spaces and newlines", func(j *Job) { j.Spec.Command = []string{"/bin/sh", "-c", "echo a\necho b", ""} }, "", ""},
		{"env value with = and newlines", func(j *Job) { j.Spec.Env = map[string]string{"A": "b=c\nd", "lower_case": "", "PATH": "/opt/bin"} }, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := validJob()
			tc.edit(&j)
			err := j.Validate()
			wantFieldError(t, err, tc.field, tc.msg)
		})
	}
}

func TestJobValidate_FillsHTTPMethod(t *testing.T) {
	for in, want := range map[string]string{"": "POST", "put": "PUT", "Delete": "DELETE", "PROPFIND": "PROPFIND"} {
		j := validJob()
		j.Spec.Command, j.Spec.HTTP = nil, &HTTPAction{URL: "http://x", Method: in}
		if err := j.Validate(); err != nil || j.Spec.HTTP.Method != want {
			t.Errorf("method %q: %v, stored %q; want %q", in, err, j.Spec.HTTP.Method, want)
		}
	}
}

func TestJobValidate_FillsDefaults(t *testing.T) {
	j := validJob()
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	s := j.Spec
	if j.Metadata.Namespace != DefaultNamespace || s.Timeout.D() != 5*time.Minute || s.Concurrency != 4 || s.EnvPrefix != "HOOKRUN" || s.RetryBackoff.D() != 5*time.Second {
		t.Fatalf("defaults not filled: %+v %+v", j.Metadata, s)
	}
}

func TestWebhookValidate_NamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Webhook)
		field string
		msg   string
	}{
		{"ok", func(*Webhook) {}, "", ""},
		{"no job", func(w *Webhook) { w.Spec.Job = "" }, "spec.job", "is required"},
		{"bad method", func(w *Webhook) { w.Spec.Methods = []string{"POST", "DELETE"} }, "spec.methods[1]", ""},
		{"key in cookie", func(w *Webhook) { w.Spec.Auth.APIKey = &APIKeyAuth{In: "cookie"} },
			"spec.auth.apiKey.in", "spec.auth.apiKey.in: must be one of header, query, path, body"},
		{"key name with slash", func(w *Webhook) { w.Spec.Auth.APIKey = &APIKeyAuth{Name: "a/b"} }, "spec.auth.apiKey.name", ""},
		{"no profile", func(w *Webhook) { w.Spec.Auth.Signature = &SignatureAuth{SecretRef: "s"} }, "spec.auth.signature.profile", ""},
		{"no secretRef", func(w *Webhook) { w.Spec.Auth.Signature = &SignatureAuth{Profile: "github"} }, "spec.auth.signature.secretRef", ""},
		{"two modes", func(w *Webhook) {
			w.Spec.Auth.APIKey = &APIKeyAuth{}
			w.Spec.Auth.Signature = &SignatureAuth{Profile: "github", SecretRef: "s"}
		}, "spec.auth", ""},
		{"idempotency header with a profile that signs the event id", func(w *Webhook) {
			w.Spec.Auth.Signature = &SignatureAuth{Profile: "stripe", SecretRef: "s"}
			w.Spec.IdempotencyHeader = "X-Id"
		}, "spec.idempotencyHeader", "signs the event id"},
		{"idempotency header no request carries", func(w *Webhook) { w.Spec.IdempotencyHeader = "X-Event-Id:" }, "spec.idempotencyHeader", "header name"},
		{"idempotency header with a control character", func(w *Webhook) { w.Spec.IdempotencyHeader = "Bad\x01" }, "spec.idempotencyHeader", "header name"},
		{"negative burst", func(w *Webhook) { w.Spec.RateLimit = &RateLimit{PerSecond: 5, Burst: -3} }, "spec.rateLimit.burst", ""},
		{"huge body", func(w *Webhook) { w.Spec.MaxBodyBytes = 1 << 30 }, "spec.maxBodyBytes", ""},
		{"body over what one NATS message holds", func(w *Webhook) { w.Spec.MaxBodyBytes = MaxBodyBytes + 1 }, "spec.maxBodyBytes", ""},
		{"zero rate", func(w *Webhook) { w.Spec.RateLimit = &RateLimit{} }, "spec.rateLimit.perSecond", ""},
		{"response 204", func(w *Webhook) { w.Spec.Response = &Response{Status: 204} }, "spec.response.status", ""},
		{"callback not a URL", func(w *Webhook) { w.Spec.Callback = &Callback{URL: "example.com"} }, "spec.callback.url", ""},
		{"callback secret dotted", func(w *Webhook) { w.Spec.Callback = &Callback{URL: "https://x", SecretRef: "a.b"} }, "spec.callback.secretRef", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := validWebhook()
			tc.edit(&w)
			err := w.Validate()
			wantFieldError(t, err, tc.field, tc.msg)
		})
	}
}

func TestWebhookValidate_FillsAPIKeyDefaults(t *testing.T) {
	w := validWebhook()
	w.Spec.Auth.APIKey = &APIKeyAuth{}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	if a := w.Spec.Auth.APIKey; a.In != "header" || a.Name != "X-API-KEY" {
		t.Fatalf("apiKey defaults: %+v", a)
	}
	w = validWebhook()
	w.Spec.Auth.APIKey = &APIKeyAuth{In: "query"}
	// Jac Cloud: "name … optional: defaults to X-API-KEY", whatever the type.
	if err := w.Validate(); err != nil || w.Spec.Auth.APIKey.Name != "X-API-KEY" {
		t.Fatalf("query key: %v %+v", err, w.Spec.Auth.APIKey)
	}
	w = validWebhook()
	w.Spec.Auth.APIKey = &APIKeyAuth{In: "body"}
	if err := w.Validate(); err != nil || w.Spec.Auth.APIKey.Name != "X-API-KEY" {
		t.Fatalf("body key: %v %+v", err, w.Spec.Auth.APIKey)
	}
	w = validWebhook()
	if err := w.Validate(); err != nil || w.Spec.Auth.Mode() != "none" || w.Spec.Methods[0] != "POST" || w.SuccessStatus() != 202 {
		t.Fatalf("defaults: %v %+v", err, w.Spec)
	}
}

func TestSecretValidate(t *testing.T) {
	s := Secret{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindSecret}, Metadata: Meta{Name: "gh"}}
	if err := s.Validate(); err != nil || s.Spec.PreviousValidFor.D() != 24*time.Hour {
		t.Fatalf("default grace: %v %v", err, s.Spec.PreviousValidFor.D())
	}
	neg := Duration(-1)
	s.Spec.PreviousValidFor = &neg
	if f := fieldOf(s.Validate()); f != "spec.previousValidFor" {
		t.Fatalf("negative grace: field %q", f)
	}
	s.Spec.PreviousValidFor = nil
	s.Spec.Value = strings.Repeat("x", 4097)
	if f := fieldOf(s.Validate()); f != "spec.value" {
		t.Fatalf("long value: field %q", f)
	}
}

func TestDuration_JSON(t *testing.T) {
	var v struct {
		Spec struct {
			Timeout Duration `json:"timeout"`
		} `json:"spec"`
	}
	for in, want := range map[string]time.Duration{`"90s"`: 90 * time.Second, `"72h"`: 72 * time.Hour, `30`: 30 * time.Second} {
		if err := json.Unmarshal([]byte(`{"spec":{"timeout":`+in+`}}`), &v); err != nil || v.Spec.Timeout.D() != want {
			t.Errorf("%s: %v %v", in, v.Spec.Timeout.D(), err)
		}
	}
	// A malformed duration is a type error that encoding/json completes with the path.
	err := json.Unmarshal([]byte(`{"spec":{"timeout":"soon"}}`), &v)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field != "spec.timeout" {
		t.Fatalf("malformed duration: %v", err)
	}
	// A number of seconds past what a duration holds (±292 years) is out
	// of range, not wrapped to a negative the validation would blame.
	for _, in := range []string{`1e10`, `-1e10`, `1e300`} {
		err := json.Unmarshal([]byte(`{"spec":{"timeout":`+in+`}}`), &v)
		if !errors.As(err, &te) || te.Field != "spec.timeout" || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%s seconds: %v (%v), want an out-of-range type error", in, err, v.Spec.Timeout.D())
		}
	}
	b, _ := json.Marshal(Duration(5 * time.Minute))
	if string(b) != `"5m0s"` {
		t.Fatalf("marshal: %s", b)
	}
}

func TestExpiration_Duration(t *testing.T) {
	cases := []struct {
		e     Expiration
		want  time.Duration
		field string
	}{
		{Expiration{60, "seconds"}, time.Minute, ""},
		{Expiration{2, "days"}, 48 * time.Hour, ""},
		{Expiration{0, "hours"}, 0, "expiration.count"}, // "never" is no expiration, not a zero one
		{Expiration{1, "weeks"}, 0, "expiration.interval"},
		{Expiration{-1, "days"}, 0, "expiration.count"},
	}
	for _, tc := range cases {
		d, err := tc.e.Duration()
		if fieldOf(err) != tc.field || (err == nil && d != tc.want) {
			t.Errorf("%+v: %v %v", tc.e, d, err)
		}
	}
}

func TestJobSpec_TemplateArgs(t *testing.T) {
	s := JobSpec{Args: []Arg{{Name: "topic", Default: strp("AI"), Value: "{{ .body.topic }}"}}}
	a := s.TemplateArgs()
	if len(a) != 1 || a[0].Name != "topic" || *a[0].Default != "AI" || a[0].Value != "{{ .body.topic }}" {
		t.Fatalf("%+v", a)
	}
}
