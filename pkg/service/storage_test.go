package service

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// ReportStreams exports what each stream holds (messages, bytes, subjects)
// and the account's JetStream storage, and a limit of 0 when the account
// has none.
func TestReportStreams_WhatTheStreamsHold(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.Ensure(ctx, js, bus.Options{Replicas: 1, Retention: bus.DefaultRetention}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"dlv_a", "dlv_b", "dlv_b"} {
		if _, err := js.Publish(ctx, bus.DeliverySubject("default", "w", d), make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ReportStreams(ctx, js, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	testenv.Eventually(t, 5*time.Second, func() error {
		msgs := testutil.ToFloat64(mStreamMessages.WithLabelValues(bus.StreamDeliveries))
		subjects := testutil.ToFloat64(mStreamSubjects.WithLabelValues(bus.StreamDeliveries))
		bytes := testutil.ToFloat64(mStreamBytes.WithLabelValues(bus.StreamDeliveries))
		if msgs != 3 || subjects != 2 || bytes < 3000 {
			return fmt.Errorf("DELIVERIES: %v messages, %v subjects, %v bytes; want 3, 2, at least 3000", msgs, subjects, bytes)
		}
		if s := testutil.ToFloat64(mJetStreamStorage.WithLabelValues()); s < bytes {
			return fmt.Errorf("JetStream storage %v bytes, less than DELIVERIES' %v", s, bytes)
		}
		return nil
	})
	for _, st := range []string{bus.StreamStatus, bus.StreamRuns, bus.StreamRetries} {
		if got := testutil.ToFloat64(mStreamMessages.WithLabelValues(st)); got != 0 {
			t.Errorf("%s: %v messages, want 0", st, got)
		}
	}
	if got := testutil.ToFloat64(mJetStreamStorageLimit.WithLabelValues()); got != 0 {
		t.Errorf("storage limit %v for an account without a limit, want 0", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ReportStreams did not return when its context ended")
	}
}

// ReportRedisMemory exports Redis' used memory and its maxmemory.
func TestReportRedisMemory_UsedAndMax(t *testing.T) {
	port := startRedisServer(t, "", "--maxmemory", "64mb")
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = ReportRedisMemory(ctx, rdb, 20*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	testenv.Eventually(t, 5*time.Second, func() error {
		used, maxm := testutil.ToFloat64(mRedisUsedMemory.WithLabelValues()), testutil.ToFloat64(mRedisMaxMemory.WithLabelValues())
		if used <= 0 || maxm != 64<<20 {
			return fmt.Errorf("used %v, max %v; want used > 0, max %d", used, maxm, 64<<20)
		}
		return nil
	})
}

// A reporter that cannot read (here: Redis refuses INFO to its user) says
// so once, not at every interval, and again when the error changes.
func TestReportRedisMemory_LogsAFailureOnce(t *testing.T) {
	port := startRedisServer(t, "")
	admin := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer admin.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := admin.Do(ctx, "ACL", "SETUSER", "claims", "on", ">pw", "~*", "+@all", "-info").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Username: "claims", Password: "pw"})
	defer rdb.Close()
	var logs testenv.Buffer
	go func() {
		_ = ReportRedisMemory(ctx, rdb, 10*time.Millisecond, slog.New(slog.NewJSONHandler(&logs, nil)))
	}()
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(logs.String(), "cannot read Redis' memory"); n != 1 {
		t.Fatalf("%d warnings in 300 ms of failed reads, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "NOPERM") {
		t.Fatalf("the warning does not say why:\n%s", logs.String())
	}
}

func TestInfoField(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:0\r\n"
	for _, tc := range []struct {
		name string
		want float64
		ok   bool
	}{{"used_memory", 1048576, true}, {"maxmemory", 0, true}, {"used_memory_human", 0, false}, {"absent", 0, false}} {
		got, ok := infoField(info, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("infoField(%q) = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
