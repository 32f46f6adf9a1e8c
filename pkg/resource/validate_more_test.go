package resource

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func validSecret() Secret {
	return Secret{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindSecret}, Metadata: Meta{Name: "gh"}}
}

// An explicit previousValidFor of 0s is no grace (replacing a leaked
// value); only an absent field means the 24h default. Both are stored as
// values, so what GET shows applies unchanged.
func TestSecretValidate_ExplicitZeroGraceIsNoGrace(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want time.Duration
		out  string
	}{
		{`{}`, 24 * time.Hour, `"previousValidFor":"24h0m0s"`},
		{`{"previousValidFor":"0s"}`, 0, `"previousValidFor":"0s"`},
		{`{"previousValidFor":0}`, 0, `"previousValidFor":"0s"`},
		{`{"previousValidFor":"1h"}`, time.Hour, `"previousValidFor":"1h0m0s"`},
	} {
		s := validSecret()
		if err := json.Unmarshal([]byte(tc.spec), &s.Spec); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil || s.Spec.Grace() != tc.want {
			t.Fatalf("%s: %v, grace %v, want %v", tc.spec, err, s.Spec.Grace(), tc.want)
		}
		b, err := json.Marshal(s.Spec)
		if err != nil || !strings.Contains(string(b), tc.out) {
			t.Fatalf("%s: stored as %s, want %s", tc.spec, b, tc.out)
		}
		// Read back and validated again, it stays the same.
		again := validSecret()
		if err := json.Unmarshal(b, &again.Spec); err != nil {
			t.Fatal(err)
		}
		if err := again.Validate(); err != nil || again.Spec.Grace() != tc.want {
			t.Fatalf("%s read back from %s: %v, grace %v", tc.spec, b, err, again.Spec.Grace())
		}
	}
	if (SecretSpec{}).Grace() != DefaultPreviousValidFor {
		t.Fatal("a spec without previousValidFor (a record of an earlier release) must have the default grace")
	}
}

func TestJobValidate_BoundsTimeoutAndRetryBackoff(t *testing.T) {
	d := func(s string) Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return Duration(v)
	}
	cases := []struct {
		name  string
		edit  func(*Job)
		field string
	}{
		{"negative backoff", func(j *Job) { j.Spec.RetryBackoff = d("-5s") }, "spec.retryBackoff"},
		{"backoff of a century", func(j *Job) { j.Spec.RetryBackoff = d("1000000h") }, "spec.retryBackoff"},
		{"backoff over a day", func(j *Job) { j.Spec.RetryBackoff = d("24h1s") }, "spec.retryBackoff"},
		{"timeout of a nanosecond", func(j *Job) { j.Spec.Timeout = d("1ns") }, "spec.timeout"},
		{"timeout under a tenth of a second", func(j *Job) { j.Spec.Timeout = d("99ms") }, "spec.timeout"},
		{"timeout over a day", func(j *Job) { j.Spec.Timeout = d("25h") }, "spec.timeout"},
		{"negative timeout", func(j *Job) { j.Spec.Timeout = d("-1m") }, "spec.timeout"},

		{"short backoff", func(j *Job) { j.Spec.RetryBackoff = d("100ms") }, ""},
		{"backoff of a day", func(j *Job) { j.Spec.RetryBackoff = d("24h") }, ""},
		{"timeout of a tenth of a second", func(j *Job) { j.Spec.Timeout = d("100ms") }, ""},
		{"timeout of a day", func(j *Job) { j.Spec.Timeout = d("24h") }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := validJob()
			tc.edit(&j)
			err := j.Validate()
			wantFieldError(t, err, tc.field, "")
			if err != nil && !strings.Contains(err.Error(), "24h") {
				t.Fatalf("%v: the message should say the bounds", err)
			}
		})
	}
}

func TestWebhookValidate_RefusesDuplicateMethods(t *testing.T) {
	for _, methods := range [][]string{{"POST", "post"}, {"GET", "PUT", "Get"}, {"PATCH", "PATCH"}} {
		w := validWebhook()
		w.Spec.Methods = methods
		err := w.Validate()
		if f := fieldOf(err); !strings.HasPrefix(f, "spec.methods") {
			t.Fatalf("%q: %v (field %q), want spec.methods", methods, err, f)
		}
		if !strings.Contains(err.Error(), "twice") {
			t.Fatalf("%q: %v", methods, err)
		}
	}
	w := validWebhook()
	w.Spec.Methods = []string{"get", "Post", "PUT", "patch"}
	if err := w.Validate(); err != nil || strings.Join(w.Spec.Methods, ",") != "GET,POST,PUT,PATCH" {
		t.Fatalf("distinct methods: %v %q", err, w.Spec.Methods)
	}
}

// An API key name a client cannot send would refuse every delivery.
func TestWebhookValidate_APIKeyNameTheSenderCanSend(t *testing.T) {
	cases := []struct {
		in, name string
		ok       bool
	}{
		{"header", "X:Bad", false},
		{"header", "X-Key\x00", false},
		{"header", "X-Kéy", false},
		{"header", "X(Key)", false},
		{"header", "X Key", false},
		{"header", "X-API-KEY", true},
		{"header", "x_api.key~1", true},
		{"query", "api\x00key", false},
		{"query", "api\x7fkey", false},
		{"body", "key\u0085", false},
		{"body", "key\r", false},
		{"path", "key\x01", false},
		{"query", "a/b", false},
		{"query", "api_key", true},
		{"query", "api:key", true}, // a query name may hold a colon
		{"body", "apiKey", true},
		{"path", "key", true},
		// Read by the server itself: no delivery can carry a key there.
		{"header", "Host", false},
		{"header", "transfer-encoding", false},
		{"header", "Connection", false},
		{"header", "Content-Length", false},
		{"header", "Authorization", true},
	}
	for _, tc := range cases {
		w := validWebhook()
		w.Spec.Auth.APIKey = &APIKeyAuth{In: tc.in, Name: tc.name}
		err := w.Validate()
		if tc.ok != (err == nil) || (err != nil && fieldOf(err) != "spec.auth.apiKey.name") {
			t.Errorf("in %s, name %q: %v (field %q), want ok=%v", tc.in, tc.name, err, fieldOf(err), tc.ok)
		}
	}
}

// A GET's body is not read: a webhook taking GET cannot want its API key
// in the body, where no GET could send it.
func TestWebhookValidate_GETCannotCarryTheKeyInTheBody(t *testing.T) {
	for _, tc := range []struct {
		in      string
		methods []string
		ok      bool
	}{
		{"body", []string{"GET", "POST"}, false},
		{"body", []string{"get"}, false},
		{"body", []string{"POST", "PUT"}, true},
		{"query", []string{"GET"}, true},
		{"header", []string{"GET"}, true},
	} {
		w := validWebhook()
		w.Spec.Methods = tc.methods
		w.Spec.Auth.APIKey = &APIKeyAuth{In: tc.in}
		err := w.Validate()
		if tc.ok != (err == nil) || (err != nil && fieldOf(err) != "spec.methods") {
			t.Errorf("key in %s, methods %v: %v (field %q), want ok=%v", tc.in, tc.methods, err, fieldOf(err), tc.ok)
		}
	}
}

// Signed timestamps are whole seconds: a tolerance under a second would
// refuse every delivery but the odd one sent on the second.
func TestWebhookValidate_SignatureToleranceOfAtLeastASecond(t *testing.T) {
	for _, tc := range []struct {
		tolerance time.Duration
		ok        bool
	}{
		{0, true}, // the profile's default
		{time.Second, true},
		{10 * time.Minute, true},
		{24 * time.Hour, true},
		{time.Nanosecond, false},
		{999 * time.Millisecond, false},
		{-time.Second, false},
		{25 * time.Hour, false},
	} {
		w := validWebhook()
		w.Spec.Auth.Signature = &SignatureAuth{Profile: "standard-webhooks", SecretRef: "s", Tolerance: Duration(tc.tolerance)}
		err := w.Validate()
		if tc.ok != (err == nil) || (err != nil && fieldOf(err) != "spec.auth.signature.tolerance") {
			t.Errorf("tolerance %s: %v (field %q), want ok=%v", tc.tolerance, err, fieldOf(err), tc.ok)
		}
	}
}
