package executor

import (
	"context"
	"strings"
	"sync"
	"time"
)

// leftovers kills what ended runs left running outside their process
// group. At a run's end its group is killed, but a process the command
// moved to a group or session of its own (setsid, a daemon's double fork)
// would outlive the run, its timeout and its cancel. Such processes still
// carry the run's markers in their environment: <PREFIX>_RUN_ID,
// <PREFIX>_RUN_ATTEMPT and <PREFIX>_WEBHOOK_DELIVERY_ID (a run id is the
// event's, and a later delivery of the event runs again under it, as
// attempt 1 again). One scan of /proc every leftoverScanEvery finds them
// for every run that ended since, at a cost that does not grow with the
// runs per second; processes in the group of a run still running here are
// not read. A run is watched for leftoverWatchFor after its end.
type leftovers struct {
	mu    sync.Mutex
	ended map[string]time.Time // the run's markers, joined by NUL → when it ended
	live  map[int]struct{}     // process groups of the runs running here
}

const (
	leftoverScanEvery = time.Second
	leftoverWatchFor  = 10 * time.Second
)

// started records the process group of a run that has just started.
func (l *leftovers) started(pgid int) {
	l.mu.Lock()
	if l.live == nil {
		l.live = map[int]struct{}{}
	}
	l.live[pgid] = struct{}{}
	l.mu.Unlock()
}

// add records the markers of a run that has just ended, whose group is
// pgid (killed by now).
func (l *leftovers) add(pgid int, markers ...string) {
	l.mu.Lock()
	delete(l.live, pgid)
	if l.ended == nil {
		l.ended = map[string]time.Time{}
	}
	l.ended[strings.Join(markers, "\x00")] = time.Now()
	l.mu.Unlock()
}

// isLive tells whether pgrp is the group of a run running here.
func (l *leftovers) isLive(pgrp int) bool {
	l.mu.Lock()
	_, ok := l.live[pgrp]
	l.mu.Unlock()
	return ok
}

// run scans until ctx ends.
func (l *leftovers) run(ctx context.Context, kill func(runs [][]string, skip func(pgrp int) bool) int, onKill func(int)) {
	t := time.NewTicker(leftoverScanEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var want [][]string
		now := time.Now()
		l.mu.Lock()
		for k, at := range l.ended {
			if now.Sub(at) > leftoverWatchFor {
				delete(l.ended, k)
				continue
			}
			want = append(want, strings.Split(k, "\x00"))
		}
		l.mu.Unlock()
		if len(want) == 0 {
			continue
		}
		if n := kill(want, l.isLive); n > 0 && onKill != nil {
			onKill(n)
		}
	}
}
