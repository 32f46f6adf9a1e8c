package testenv

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hookrun/hookrun/pkg/embednats"
)

var clusterSeq atomic.Int64

// Cluster is a three-node (or n-node) JetStream cluster of embedded
// servers on loopback, each with its own store, so that a node can be
// stopped and started again on the same ports and data.
type Cluster struct {
	t     testing.TB
	Nodes []*server.Server
	opts  []embednats.Options
}

// StartCluster starts n embedded servers forming a cluster of a name of
// its own. The name keeps clusters of other tests apart: a stopped node's
// ports are free, and a node of another cluster (another test binary) that
// takes one would otherwise be accepted as a route of this one.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var routes []string
	name := fmt.Sprintf("hookrun-test-%d-%d", os.Getpid(), clusterSeq.Add(1))
	for i := 0; i < n; i++ {
		o := embednats.Options{
			ServerName:  fmt.Sprintf("%s-n%d", name, i+1),
			Port:        FreePort(t),
			ClusterPort: FreePort(t),
			ClusterName: name,
			StoreDir:    t.TempDir(),
		}
		c.opts = append(c.opts, o)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.ClusterPort))
	}
	for i := range c.opts {
		c.opts[i].Routes = routes
	}
	c.Nodes = make([]*server.Server, n)
	errs := make(chan error, n)
	for i := range c.opts {
		go func() {
			s, err := embednats.Start(c.opts[i])
			c.Nodes[i] = s
			errs <- err
		}()
	}
	for range c.opts {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range c.Nodes {
			if s != nil {
				s.Shutdown()
			}
		}
	})
	c.WaitJetStream()
	return c
}

// URL lists every node's client URL, comma-separated, as clients take it.
func (c *Cluster) URL() string {
	var us []string
	for _, o := range c.opts {
		us = append(us, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(us, ",")
}

// Stop shuts node i down, keeping its store.
func (c *Cluster) Stop(i int) {
	c.Nodes[i].Shutdown()
	c.Nodes[i].WaitForShutdown()
}

// Start starts node i again on its ports and store.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	var err error
	for try := 0; try < 50; try++ {
		if c.Nodes[i], err = embednats.Start(c.opts[i]); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal(err)
}

// WaitJetStream waits until the cluster has a JetStream meta leader.
func (c *Cluster) WaitJetStream() {
	c.t.Helper()
	Eventually(c.t, 30*time.Second, func() error {
		for _, s := range c.Nodes {
			if s != nil && s.Running() && s.JetStreamIsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no JetStream meta leader yet")
	})
}
