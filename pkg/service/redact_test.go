package service

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// A HOOKRUN_REDIS_URL that does not parse is refused at start-up naming the
// variable and the problem, not the password: Go's parse error quotes the
// whole URL.
func TestOpenRedis_MalformedURLErrorHoldsNoPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, problem string }{
		{"redis://:s3cr3tPW@127.0.0.1:notaport/0", `invalid port ":notaport" after host`},
		{"rediss://user:s3cr3tPW@127.0.0.1:notaport/0", `invalid port ":notaport" after host`},
		// Read as a port ":s3c" by url.Parse, whose reason would quote it.
		{"redis://:s3c/r3tPW@127.0.0.1:6379/0", "malformed user or password"},
		{"redis://:s3cr3tPW@127.0.0.1:6379/notadb", "invalid database number"},
		{"redis://:s3cr3tPW@127.0.0.1:6379/0?nosuchoption=1", "unexpected option"},
		// Sentinel URLs.
		{"redis-sentinel://:s3cr3tPW@mymaster@127.0.0.1:26379/notadb", "invalid database number"},
		{"redis-sentinel://:s3cr3tPW@mymaster@127.0.0.1:notaport", `Sentinel address "127.0.0.1:notaport"`},
		{"redis-sentinel://:s3c%zzr3tPW@mymaster@127.0.0.1:26379", "malformed user or password"},
		{"redis-sentinel://mymaster:s3cr3tPW@127.0.0.1:26379", "a password goes before the name"},
		{"redis-sentinel://mymaster@127.0.0.1:26379?password=s3cr3tPW", "option password: it has its place in the URL"},
		{"redis-sentinel://:s3cr3tPW@mymaster@127.0.0.1:26379?nosuchoption=1", "unexpected option"},
		// go-redis' own form names the master in the query.
		{"redis://:s3cr3tPW@127.0.0.1:26379?master_name=mymaster", "redis-sentinel://"},
	} {
		_, err := OpenRedis(tc.raw, "")
		if err == nil {
			t.Errorf("OpenRedis(%q) did not fail", tc.raw)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "s3c") {
			t.Errorf("OpenRedis(%q): the error holds the password: %s", tc.raw, msg)
		}
		if !strings.HasPrefix(msg, "HOOKRUN_REDIS_URL=") || !strings.Contains(msg, tc.problem) {
			t.Errorf("OpenRedis(%q): error %q, want HOOKRUN_REDIS_URL and %q", tc.raw, msg, tc.problem)
		}
	}
}

// A HOOKRUN_NATS_URL that does not parse, or that nats.go refuses, is
// refused naming the variable, never a password or token of the list.
func TestOpen_MalformedNATSURLErrorHoldsNoCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, problem string }{
		{"nats://disp:s3cr3tNATS@127.0.0.1:notaport", `HOOKRUN_NATS_URL="nats://disp:xxxxx@127.0.0.1:notaport": invalid port ":notaport" after host`},
		{"nats://s3cr3tTOKEN@127.0.0.1:notaport", `HOOKRUN_NATS_URL="nats://xxxxx@127.0.0.1:notaport": invalid port`},
		{"nats://n1:4222,nats://disp:s3cr3tNATS@n2:notaport", `HOOKRUN_NATS_URL="nats://n1:4222,nats://disp:xxxxx@n2:notaport": invalid port`},
		{"nats://disp:s3c/r3tNATS@127.0.0.1:4222", "malformed user or password"},
		// A password or token with a comma: nats.go reads
		// "nats://disp:s3c" alone, or dials "s3c" as a host.
		{"nats://disp:s3c,r3tNATS@127.0.0.1:4222", "holds a comma"},
		{"nats://s3c,r3tTOKEN@127.0.0.1:4222", "holds a comma"},
		{"s3c,r3tTOKEN@127.0.0.1:4222", "holds a comma"},
		// URLs that parse but nats.go refuses together.
		{"nats://disp:s3cr3tNATS@127.0.0.1:4222,ws://disp:s3cr3tNATS@127.0.0.1:8080", "connect to NATS at nats://disp:xxxxx@127.0.0.1:4222,ws://disp:xxxxx@127.0.0.1:8080"},
	} {
		_, err := Open(context.Background(), "probe", Common{NATSURL: tc.raw, Replicas: 1}, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Errorf("Open with HOOKRUN_NATS_URL=%q did not fail", tc.raw)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "s3c") {
			t.Errorf("HOOKRUN_NATS_URL=%q: the error holds the password: %s", tc.raw, msg)
		}
		if !strings.Contains(msg, tc.problem) {
			t.Errorf("HOOKRUN_NATS_URL=%q: error %q, want %q", tc.raw, msg, tc.problem)
		}
	}
}

// Every service logs the NATS URL it starts on, with its password or token
// hidden.
func TestOpen_LogsNATSURLWithoutCredentials(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t) // no authentication: it ignores the credentials
	host := strings.TrimPrefix(n.URL, "nats://")
	var logs testenv.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	// keys lays out the streams, another service checks them: two lines.
	for _, tc := range []struct{ name, userinfo, want string }{
		{"keys", "keys:s3cr3tNATS", "keys:xxxxx"},
		{"dispatcher", "s3cr3tTOKEN", "xxxxx"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		d, err := Open(ctx, tc.name, Common{NATSURL: "nats://" + tc.userinfo + "@" + host, Replicas: 1}, log.With("service", tc.name))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		if want := `"nats":"nats://` + tc.want + "@" + host + `"`; !strings.Contains(logs.String(), want) {
			t.Errorf("the log of %s does not hold %s:\n%s", tc.name, want, logs.String())
		}
	}
	if got := logs.String(); strings.Contains(got, "s3cr3t") {
		t.Errorf("the log holds a NATS password or token:\n%s", got)
	}
}

// Lists nats.go takes, of every form, pass the start-up check: only a
// credential that holds a comma is refused.
func TestCheckNATSURLs_TakesTheListsNATSTakes(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"nats://127.0.0.1:4222",
		"nats://n1:4222 ,nats://u:p@n2:4222",
		"n1, n2",
		"nats://n1:4222,u:p@n2:4222",
		"nats://[::1]:4222,nats://tok@[::2]:4222",
		"[::1]:4222,tok@[::2]",
		"wss://n1/ws,wss://u:p@n2/ws",
		"nats://u:p@n1:4222,nats://u:p@n2:4222,nats://u:p@n3:4222",
		"tls://tok@n1:4222",
	} {
		if err := checkNATSURLs(raw); err != nil {
			t.Errorf("checkNATSURLs(%q) = %v, want nil", raw, err)
		}
	}
}
