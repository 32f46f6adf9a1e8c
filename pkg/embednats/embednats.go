// Package embednats runs the real nats-server in-process with JetStream, for
// `hookrun dev` and for tests.
package embednats

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server.
type Options struct {
	// Host and Port to listen on; Port -1 picks a random free port.
	Host string
	Port int
	// StoreDir keeps JetStream data; reuse it to keep data across restarts.
	StoreDir string
	// HTTPPort serves nats-server monitoring (0: off, -1: random).
	HTTPPort int
	// ServerName names the server (a cluster needs distinct names).
	ServerName string
	// Cluster, when set, joins a cluster: ClusterPort and Routes.
	ClusterName string
	ClusterPort int
	Routes      []string
	// ConfigFile, when set, is a nats-server configuration file (such as
	// deploy/nats/single.conf) read first; the fields above override its
	// listen address, store and monitoring port.
	ConfigFile string
	// Logger, when set, receives the server's log (else it logs nothing).
	Logger server.Logger
	// MaxPayload is the server's max_payload in bytes (0: 8 MiB, as
	// deploy/nats); a test sets a smaller one to reach it cheaply.
	MaxPayload int32
}

// startTimeout bounds how long Start waits for a server to accept
// connections.
const startTimeout = 15 * time.Second

// Start starts a server and waits until it accepts connections. A port it
// cannot take fails it at once, with an error naming the address (for a
// port in use, errors.Is(err, syscall.EADDRINUSE) holds).
func Start(o Options) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	opts := &server.Options{}
	if o.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
	}
	opts.ServerName, opts.Host, opts.Port = o.ServerName, o.Host, o.Port
	opts.JetStream, opts.StoreDir = true, o.StoreDir
	opts.NoSigs, opts.NoLog = true, o.Logger == nil
	opts.HTTPPort, opts.HTTPHost = o.HTTPPort, o.Host
	opts.MaxPayload = 8 << 20
	if o.MaxPayload > 0 {
		opts.MaxPayload = o.MaxPayload
	}
	if o.ClusterName != "" {
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: o.Host, Port: o.ClusterPort}
		opts.Routes = server.RoutesFromStr(joinRoutes(o.Routes))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	// Always a logger, even without o.Logger: the server tells of a port
	// it cannot take only through its logger's Fatalf.
	log := newStartLog(o.Logger)
	s.SetLoggerV2(log, false, false, false)
	started := make(chan struct{})
	go func() {
		defer close(started)
		s.Start()
	}()
	// The server keeps no error to ask for, and ReadyForConnections waits
	// out its whole timeout after a failed listen: the fatal error is
	// watched for between short waits.
	deadline := time.Now().Add(startTimeout)
	for !s.ReadyForConnections(100 * time.Millisecond) {
		select {
		case err := <-log.fatal:
			// Every fatal error of Start ends it: wait for that, so
			// that Shutdown does not race what it set up.
			select {
			case <-started:
			case <-time.After(startTimeout):
			}
			s.Shutdown()
			s.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			s.Shutdown()
			addr := o.Host + " (a random port)"
			if o.Port > 0 {
				addr = net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
			}
			return nil, fmt.Errorf("embedded nats: not ready on %s after %s", addr, startTimeout)
		}
	}
	return s, nil
}

func joinRoutes(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ","
		}
		out += r
	}
	return out
}
