package service

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/redact"
)

// What NATS and Redis hold for Hookrun, for sizing them and for alerts
// before they run out ("Sizing NATS" in OPERATIONS.md): without a NATS or
// Redis exporter, the services that already talk to them report it.
var (
	mStreamMessages = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_stream_messages",
		Help: "Messages a Hookrun JetStream stream holds (stream info state.messages), from the keys service.",
	}, []string{"stream"})
	mStreamBytes = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_stream_bytes",
		Help: "Bytes a Hookrun JetStream stream holds (state.bytes, one replica), from the keys service.",
	}, []string{"stream"})
	mStreamSubjects = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_stream_subjects",
		Help: "Subjects a Hookrun JetStream stream holds (state.num_subjects): nats-server keeps an index entry in memory for each, from the keys service.",
	}, []string{"stream"})
	// The gauges without labels are vectors, so that only a service that
	// reports them serves them (not every service at 0).
	mJetStreamStorage = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_jetstream_storage_bytes",
		Help: "File storage the NATS account's JetStream streams use, every stream and bucket (account info storage), from the keys service.",
	}, nil)
	mJetStreamStorageLimit = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_jetstream_storage_limit_bytes",
		Help: "The NATS account's JetStream file storage limit (account info limits.max_storage); 0 when the account has none (the server's max_file_store then bounds it).",
	}, nil)
	mRedisUsedMemory = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_redis_used_memory_bytes",
		Help: "Memory Redis uses (INFO memory used_memory), from the dispatcher.",
	}, nil)
	mRedisMaxMemory = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_redis_maxmemory_bytes",
		Help: "Redis' maxmemory (INFO memory maxmemory); 0 when it has none.",
	}, nil)
)

// ReportStreams exports, every interval until ctx ends, what Hookrun's
// streams hold and the account's JetStream storage. A stream that is gone
// loses its series; one whose info does not answer keeps its last values,
// and the failure is logged (see reportWarning).
func ReportStreams(ctx context.Context, js jetstream.JetStream, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var warned reportWarning
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var failed error
		for _, name := range []string{bus.StreamDeliveries, bus.StreamStatus, bus.StreamRuns, bus.StreamRetries} {
			s, err := js.Stream(cctx, name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				mStreamMessages.DeleteLabelValues(name)
				mStreamBytes.DeleteLabelValues(name)
				mStreamSubjects.DeleteLabelValues(name)
				continue
			}
			if err != nil {
				failed = cmp.Or(failed, fmt.Errorf("stream %s: %w", name, err))
				continue
			}
			// Stream returned the info it read: no second request.
			st := s.CachedInfo().State
			mStreamMessages.WithLabelValues(name).Set(float64(st.Msgs))
			mStreamBytes.WithLabelValues(name).Set(float64(st.Bytes))
			mStreamSubjects.WithLabelValues(name).Set(float64(st.NumSubjects))
		}
		if ai, err := js.AccountInfo(cctx); err == nil {
			mJetStreamStorage.WithLabelValues().Set(float64(ai.Store))
			mJetStreamStorageLimit.WithLabelValues().Set(float64(max(ai.Limits.MaxStore, 0)))
		} else {
			failed = cmp.Or(failed, fmt.Errorf("account info: %w", err))
		}
		cancel()
		if ctx.Err() == nil {
			warned.report(log, "what the JetStream streams hold", "hookrun_stream_*, hookrun_jetstream_*", failed)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ReportRedisMemory exports Redis' used memory and maxmemory every
// interval until ctx ends; a failure (an ACL without +info, Redis away)
// is logged (see reportWarning).
func ReportRedisMemory(ctx context.Context, rdb redis.UniversalClient, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var warned reportWarning
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := rdb.Info(cctx, "memory").Result()
		cancel()
		if err == nil {
			if v, ok := infoField(info, "used_memory"); ok {
				mRedisUsedMemory.WithLabelValues().Set(v)
			}
			if v, ok := infoField(info, "maxmemory"); ok {
				mRedisMaxMemory.WithLabelValues().Set(v)
			}
		}
		if ctx.Err() == nil {
			warned.report(log, "Redis' memory (INFO memory)", "hookrun_redis_*_bytes", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reportWarning logs a reporter's failure when it starts, again when its
// error changes (at most every warnAgain: errors that alternate, a
// timeout and a refusal, would otherwise log at every interval), and once
// when it ends.
type reportWarning struct {
	last string
	at   time.Time
}

const warnAgain = 10 * time.Minute

func (w *reportWarning) report(log *slog.Logger, what, metrics string, err error) {
	switch {
	case err == nil && w.last != "":
		log.Info("read again: " + what)
		w.last = ""
	case err != nil && (w.last == "" || (err.Error() != w.last && time.Since(w.at) >= warnAgain)):
		log.Warn("cannot read "+what+": "+metrics+" keep their last values", "err", redact.URLs(err.Error()))
		w.last, w.at = err.Error(), time.Now()
	}
}

// infoField reads a numeric field of a Redis INFO answer.
func infoField(info, name string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && k == name {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
