package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hookrun/hookrun/pkg/embednats"
)

// ServiceUsers are the NATS users of deploy/nats/users.conf, one per
// service, plus admin for operators.
var ServiceUsers = []string{"ingress", "dispatcher", "executor", "keys", "admin"}

// StartSecuredNATS starts an embedded server with the project's own
// configuration, deploy/nats/single.conf: the per-service users and their
// permissions of deploy/nats/users.conf, with test passwords. Its listen
// address, store and monitoring port are the test's. Violations lists the
// permission violations the server logged.
func StartSecuredNATS(t testing.TB) *NATS {
	t.Helper()
	users := map[string]string{}
	for _, u := range ServiceUsers {
		users[u] = "test-password-" + u
		// The configuration reads the passwords from the environment; the
		// values are the same for every test, so setting them is safe
		// under t.Parallel.
		_ = os.Setenv("NATS_"+strings.ToUpper(u)+"_PASSWORD", users[u])
	}
	_ = os.Setenv("NATS_SERVER_NAME", "hookrun-test")
	return startNATS(t, embednats.Options{Port: -1, StoreDir: t.TempDir(), ServerName: "hookrun-test", ConfigFile: DeployFile("nats", "single.conf")}, users)
}

// DeployFile is the path of a file under the repository's deploy/.
func DeployFile(parts ...string) string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(self), "..", "..", "deploy"}, parts...)...)
}

// Violations returns the permission violations the server has logged
// (StartSecuredNATS only).
func (n *NATS) Violations() []string {
	if n.log == nil {
		return nil
	}
	return n.log.lines()
}

// violationLog is a nats-server logger keeping the permission violations.
type violationLog struct {
	mu  sync.Mutex
	got []string
}

func (l *violationLog) add(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if strings.Contains(line, "Violation") {
		l.mu.Lock()
		l.got = append(l.got, line)
		l.mu.Unlock()
	}
}

func (l *violationLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func (l *violationLog) Noticef(format string, v ...any) { l.add(format, v...) }
func (l *violationLog) Warnf(format string, v ...any)   { l.add(format, v...) }
func (l *violationLog) Fatalf(format string, v ...any)  { l.add(format, v...) }
func (l *violationLog) Errorf(format string, v ...any)  { l.add(format, v...) }
func (l *violationLog) Debugf(format string, v ...any)  {}
func (l *violationLog) Tracef(format string, v ...any)  {}
