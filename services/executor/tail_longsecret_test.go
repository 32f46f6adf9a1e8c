package executor

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// randomSecret is a one-line secret of n base64 bytes.
func randomSecret(t *testing.T, n int) string {
	t.Helper()
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return base64.RawStdEncoding.EncodeToString(raw)[:n]
}

// A one-line secret longer than a live piece (a base64 kubeconfig, a long
// JWT) printed by a job goes live masked as the stored output masks it: no
// piece holds any of it, and the pieces make the stored output exactly. A
// line that only starts like a secret is shown as the stored output shows
// it.
func TestTail_LongSecretIsMaskedInEveryLivePiece(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testenv.StartNATS(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	long := randomSecret(t, 6000)
	longer := randomSecret(t, 3*maxLine+100)
	// Two secrets that share their first 4500 bytes (tokens with the same
	// header), the shorter one longer than a piece.
	shared := randomSecret(t, 4500)
	jwtA, jwtB := shared+randomSecret(t, 600), shared+randomSecret(t, 1500)

	cases := []struct {
		name    string
		secrets []string
		output  string
		leaks   []string // what no piece may hold
	}{
		{"alone on its line", []string{long}, long + "\n", []string{long}},
		{"after a name", []string{long}, "KUBECONFIG_B64=" + long + "\n", []string{long}},
		{"after a long text", []string{long}, strings.Repeat("x", maxLine-10) + long + " tail\n", []string{long}},
		{"twice, the output unended", []string{long}, long + " and " + long, []string{long}},
		{"over three pieces long", []string{longer}, "token: " + longer + "\nnext\n", []string{longer}},
		{"sharing a start with another", []string{jwtA, jwtB}, "a=" + jwtB + " b=" + jwtA + "\n", []string{jwtA, jwtB}},
		{"its start only", []string{long}, "x=" + long[:5000] + "\n", nil},
	}
	for i, tc := range cases {
		for _, size := range []int{0, 7, 1000} {
			t.Run(fmt.Sprintf("%s, writes of %d", tc.name, size), func(t *testing.T) {
				subject := bus.OutputSubject(fmt.Sprintf("run_longsecret%d_%d", i, size))
				sub, err := nc.SubscribeSync(subject)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sub.Unsubscribe() })
				tl := newTail(1<<20, nc, subject, 1, "dlv_1")
				tl.secrets = maskable(tc.secrets...)
				for p := []byte(tc.output); len(p) > 0; {
					n := len(p)
					if size > 0 {
						n = min(n, size)
					}
					_, _ = tl.Write(p[:n])
					p = p[n:]
				}
				tl.Flush()

				var live strings.Builder
				for j := 1; j <= tl.Lines(); j++ {
					m, err := sub.NextMsg(5 * time.Second)
					if err != nil {
						t.Fatalf("piece %d of %d: %v", j, tl.Lines(), err)
					}
					if n := m.Header.Get(bus.HeaderLine); n != strconv.Itoa(j) {
						t.Fatalf("piece %d numbered %q", j, n)
					}
					if len(m.Data) > maxLine {
						t.Errorf("piece %d has %d bytes, over %d", j, len(m.Data), maxLine)
					}
					for _, s := range tc.leaks {
						if k := leakedPart(string(m.Data), s); k != "" {
							t.Fatalf("piece %d holds bytes of a secret: %q", j, k)
						}
					}
					live.Write(m.Data)
				}
				stored := tl.String()
				if live.String() != stored {
					t.Errorf("the live pieces (%d bytes) do not make the stored output (%d bytes)", live.Len(), len(stored))
				}
				if snap, _ := tl.Published(); snap != stored {
					t.Errorf("the snapshot (%d bytes) is not the stored output (%d bytes)", len(snap), len(stored))
				}
			})
		}
	}
}

// While a secret longer than a piece is still being written, neither the
// live output nor a snapshot holds the part of it written so far.
func TestTail_HalfWrittenLongSecretIsNotPublished(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testenv.StartNATS(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	subject := bus.OutputSubject("run_halfsecret")
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	secret := randomSecret(t, 6000)
	tl := newTail(1<<20, nc, subject, 1, "dlv_1")
	tl.secrets = maskable(secret)
	_, _ = tl.Write([]byte("KUBECONFIG_B64=" + secret[:5000]))
	if snap, _ := tl.Published(); snap != "KUBECONFIG_B64=" {
		t.Fatalf("snapshot while the secret is written: %d bytes, want only the name before it", len(snap))
	}
	_, _ = tl.Write([]byte(secret[5000:] + "\n"))
	var live string
	for j := 1; j <= tl.Lines(); j++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		live += string(m.Data)
	}
	want(t, "live line", live, "KUBECONFIG_B64=***\n")
}

// leakedPart returns the first 10 bytes in a row of secret that s holds,
// "" when none: random base64 text shares no 10 bytes with it by chance.
func leakedPart(s, secret string) string {
	const n = 10
	grams := make(map[string]bool, len(secret))
	for i := 0; i+n <= len(secret); i++ {
		grams[secret[i:i+n]] = true
	}
	for i := 0; i+n <= len(s); i++ {
		if grams[s[i:i+n]] {
			return s[i : i+n]
		}
	}
	return ""
}

// Whatever the output and however it is written, the live pieces make the
// stored output: every secret in them is masked as it is there (but for
// secrets end to end over more than a piece and the longest secret, cut
// into pieces "***" each). Output of few letters, with secrets short and
// longer than a piece written into it whole, in part and overlapping,
// makes the cuts meet secrets every way.
func TestTail_LivePiecesMakeTheStoredOutput(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testenv.StartNATS(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := mrand.New(mrand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abc"[r.IntN(3)]
		}
		return string(b)
	}
	for i := range 200 {
		secrets := []string{word(6 + r.IntN(10)), word(maxLine/2 + r.IntN(maxLine)), word(maxLine + r.IntN(2*maxLine))}
		var out strings.Builder
		for out.Len() < 6*maxLine {
			switch s := secrets[r.IntN(len(secrets))]; r.IntN(6) {
			case 0:
				out.WriteString(s)
			case 1:
				out.WriteString(s[:r.IntN(len(s))])
			case 2:
				out.WriteString(s[r.IntN(len(s)):])
			case 3:
				out.WriteString("\n")
			default:
				out.WriteString(word(r.IntN(maxLine)))
			}
		}
		subject := bus.OutputSubject(fmt.Sprintf("run_pieces%d", i))
		sub, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		tl := newTail(1<<20, nc, subject, 1, "dlv_1")
		tl.secrets = maskable(secrets...)
		for p := []byte(out.String()); len(p) > 0; {
			n := min(len(p), 1+r.IntN(3*maxLine))
			_, _ = tl.Write(p[:n])
			p = p[n:]
		}
		tl.Flush()
		var live strings.Builder
		for j := 1; j <= tl.Lines(); j++ {
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			live.Write(m.Data)
		}
		_ = sub.Unsubscribe()
		if stored := tl.String(); oneMask(live.String()) != stored {
			t.Fatalf("output %d: the live pieces (%d bytes) do not make the stored output (%d bytes)", i, live.Len(), len(stored))
		}
	}
}

// oneMask makes masks end to end one.
func oneMask(s string) string {
	for strings.Contains(s, masked+masked) {
		s = strings.ReplaceAll(s, masked+masked, masked)
	}
	return s
}

// A secret printed over and over without a "\n" is never a whole piece
// that could be waited for: the line held stays bounded, and no piece nor
// snapshot holds any of the secret.
func TestTail_SecretPrintedOverAndOverStaysBoundedAndMasked(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testenv.StartNATS(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cases := []struct {
		name   string
		secret string
	}{
		{"a secret of 100 bytes", randomSecret(t, 100)},
		{"a secret of 6000 bytes", randomSecret(t, 6000)},
		// Its own end is its start: the line always ends with a start.
		{"a secret of one letter", strings.Repeat("x", 20)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secret, n := tc.secret, len(tc.secret)
			subject := bus.OutputSubject(fmt.Sprintf("run_overandover%d", i))
			sub, err := nc.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			tl := newTail(64<<10, nc, subject, 1, "dlv_1")
			tl.secrets = maskable(secret)
			out := []byte(strings.Repeat(secret, 1<<20/n))
			for i, p := 0, out; len(p) > 0; i++ {
				w := min(len(p), 997) // seldom at a secret's end
				_, _ = tl.Write(p[:w])
				p = p[w:]
				if held := tl.line.Len(); held > 2*(maxLine+n) {
					t.Fatalf("%d bytes of the line held, over twice a piece and the secret", held)
				}
				if i%16 != 0 {
					continue
				}
				if snap, _ := tl.Published(); leakedPart(snap, secret) != "" {
					t.Fatalf("snapshot holds bytes of the secret: %q", leakedPart(snap, secret))
				}
			}
			tl.Flush()
			var live strings.Builder
			for j := 1; j <= tl.Lines(); j++ {
				m, err := sub.NextMsg(5 * time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if k := leakedPart(string(m.Data), secret); k != "" {
					t.Fatalf("piece %d holds bytes of the secret: %q", j, k)
				}
				live.Write(m.Data)
			}
			want(t, "live output", oneMask(live.String()), masked)
		})
	}
}

// Output of a secret over and over, cut between two of them, ends (or its
// kept tail starts) with a whole secret, whose last byte here is also its
// first: that byte is no part of a secret cut there, and masking it as one
// shifted what mask saw, which then found none of the secrets after it (a
// random 100-byte secret leaked into about 1 snapshot in 30). The bytes on
// the other side of the cut decide it.
func TestTail_AWholeSecretAtACutIsNotTakenForPartOfOne(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testenv.StartNATS(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	for i := range 8 {
		body := randomSecret(t, 98)
		secret := "Q" + body + "Q" // its last byte is its first
		tl := newTail(64<<10, nc, bus.OutputSubject(fmt.Sprintf("run_border%d", i)), 1, "dlv_1")
		tl.secrets = maskable(secret)
		out := []byte(strings.Repeat(secret, 1<<20/len(secret)))
		for j, p := 0, out; len(p) > 0; j++ {
			w := min(len(p), 997)
			_, _ = tl.Write(p[:w])
			p = p[w:]
			if snap, _ := tl.Published(); leakedPart(snap, secret) != "" {
				t.Fatalf("secret %d, write %d: the snapshot holds bytes of the secret: %q", i, j, leakedPart(snap, secret))
			}
		}
		tl.Flush()
		if s := tl.String(); leakedPart(s, secret) != "" {
			t.Fatalf("secret %d: the stored output holds bytes of the secret: %q", i, leakedPart(s, secret))
		}
	}
}

// The bytes kept before a run's kept tail are those the output had there:
// a write longer than the tail (a line held back for a long secret, a
// small EXECUTOR_MAX_OUTPUT) replaces what was kept rather than following
// it, which maskCut would take for the bytes before the cut and then not
// mask a secret cut at the tail's start. And output not dropped yet is all
// there is before its cut: a secret cut there began in it, or the bytes at
// the tail's start are no part of one.
func TestTail_TheBytesBeforeTheKeptTailAreTheOutputs(t *testing.T) {
	secret := randomSecret(t, 200)
	tl := newTail(1010, nil, "", 1, "dlv_1")
	tl.secrets = maskable(secret)
	_, _ = tl.Write([]byte("hello\n"))
	// One write of 25 secrets: the last 1010 bytes start 10 bytes before
	// the end of one.
	_, _ = tl.Write([]byte(strings.Repeat(secret, 25)))
	if s := tl.String(); leakedPart(s, secret) != "" {
		t.Fatalf("the stored output after one long write holds bytes of the secret: %q", leakedPart(s, secret))
	}

	// A secret whose last two bytes are its first: output of its last byte
	// and then ten whole ones, one byte over the tail. That byte is all
	// there is before the tail, and no secret is cut at its start.
	bordered := "Q" + randomSecret(t, 97) + "QQ"
	tl = newTail(1000, nil, "", 1, "dlv_1")
	tl.secrets = maskable(bordered)
	_, _ = tl.Write([]byte("Q" + strings.Repeat(bordered, 10)))
	if s := tl.String(); leakedPart(s, bordered) != "" {
		t.Fatalf("the stored output just over the tail holds bytes of the secret: %q", leakedPart(s, bordered))
	}
}
