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
// carry the run's markers in their environment (<PREFIX>_RUN_ID and
// <PREFIX>_RUN_ATTEMPT): one scan of /proc every leftoverScanEvery finds
// them for every run that ended since, at a cost that does not grow with
// the runs per second. A run is watched for leftoverWatchFor after its end.
type leftovers struct {
	mu    sync.Mutex
	ended map[string]time.Time // the run's "<id-marker>\x00<attempt-marker>" → when it ended
}

const (
	leftoverScanEvery = time.Second
	leftoverWatchFor  = 10 * time.Second
)

// add records the markers of a run that has just ended.
func (l *leftovers) add(markers []string) {
	if len(markers) != 2 {
		return
	}
	l.mu.Lock()
	if l.ended == nil {
		l.ended = map[string]time.Time{}
	}
	l.ended[markers[0]+"\x00"+markers[1]] = time.Now()
	l.mu.Unlock()
}

// run scans until ctx ends.
func (l *leftovers) run(ctx context.Context, kill func(markers [][2]string) int, onKill func(int)) {
	t := time.NewTicker(leftoverScanEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var want [][2]string
		now := time.Now()
		l.mu.Lock()
		for k, at := range l.ended {
			if now.Sub(at) > leftoverWatchFor {
				delete(l.ended, k)
				continue
			}
			id, attempt, _ := strings.Cut(k, "\x00")
			want = append(want, [2]string{id, attempt})
		}
		l.mu.Unlock()
		if len(want) == 0 {
			continue
		}
		if n := kill(want); n > 0 && onKill != nil {
			onKill(n)
		}
	}
}
