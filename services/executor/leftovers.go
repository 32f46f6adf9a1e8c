package executor

import (
	"context"
	"errors"
	"io/fs"
	"os"
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
//
// A leftover may also write in the run's directory (its HOME) after the
// run's end removed it, making it anew ("mkdir -p $HOME/.cache/…"): a scan
// that kills any leftover removes again the directories of the runs it
// watches that are there again.
type leftovers struct {
	// noChmod: jobs run as another user (HOOKRUN_JOB_USER), so run
	// directories are removed without a chmod walk (removeRunDir).
	noChmod bool
	mu      sync.Mutex
	ended   map[string]*endedRun // by the run's markers, joined by NUL
	live    map[int]struct{}     // process groups of the runs running here
}

// endedRun is a run whose leftovers are watched.
type endedRun struct {
	at    time.Time
	dir   string // its directory, once its end has removed it (watchDir)
	named bool   // the directory's name is its owner record (removeRunDir)
	again bool   // dir is to be removed again: a scan killed leftovers
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
		l.ended = map[string]*endedRun{}
	}
	l.ended[strings.Join(markers, "\x00")] = &endedRun{at: time.Now()}
	l.mu.Unlock()
}

// watchDir records the directory of the ended run whose markers these are
// (as given to add), once its end has removed it.
func (l *leftovers) watchDir(dir string, named bool, markers ...string) {
	l.mu.Lock()
	if r := l.ended[strings.Join(markers, "\x00")]; r != nil {
		r.dir, r.named = dir, named
	}
	l.mu.Unlock()
}

// isLive tells whether pgrp is the group of a run running here.
func (l *leftovers) isLive(pgrp int) bool {
	l.mu.Lock()
	_, ok := l.live[pgrp]
	l.mu.Unlock()
	return ok
}

// run scans every leftoverScanEvery until ctx ends, then once more. Run
// ends ctx only once the run handlers have returned, not when the shutdown
// starts: runs go on for the shutdown grace, and what the last of them
// left must be killed before the executor goes (their directories are
// gone, so no later executor's sweep would find them). The last scan is
// repeated while it kills any: a process may have forked as it was killed.
func (l *leftovers) run(ctx context.Context, kill func(runs [][]string, skip func(pgrp int) bool) int, onKill func(int)) {
	t := time.NewTicker(leftoverScanEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for range 3 {
				if l.scan(kill, onKill) == 0 {
					break
				}
			}
			return
		case <-t.C:
			l.scan(kill, onKill)
		}
	}
}

// scan kills, in one scan of /proc, what the runs that ended within
// leftoverWatchFor left, and returns how many; then it removes the
// directories those may have made anew.
func (l *leftovers) scan(kill func(runs [][]string, skip func(pgrp int) bool) int, onKill func(int)) int {
	var want [][]string
	now := time.Now()
	l.mu.Lock()
	for k, r := range l.ended {
		if now.Sub(r.at) > leftoverWatchFor {
			delete(l.ended, k)
			continue
		}
		want = append(want, strings.Split(k, "\x00"))
	}
	l.mu.Unlock()
	if len(want) == 0 {
		return 0
	}
	n := kill(want, l.isLive)
	if n > 0 && onKill != nil {
		onKill(n)
	}
	l.removeDirsAgain(n > 0)
	return n
}

// removeDirsAgain removes the directories of the watched runs that are
// there again. After a scan that killed leftovers (killed), it looks at
// every watched run's; else only at those it found there the scan before.
// Common scans, which kill none, cost nothing here.
func (l *leftovers) removeDirsAgain(killed bool) {
	type dir struct {
		r     *endedRun
		path  string
		named bool
	}
	var again []dir
	l.mu.Lock()
	for _, r := range l.ended {
		if r.dir != "" && (killed || r.again) {
			r.again = true
			again = append(again, dir{r, r.dir, r.named})
		}
	}
	l.mu.Unlock()
	for _, d := range again {
		// Removed, the directory is looked at once more by the next scan:
		// a process killed as it wrote may make it anew as it goes.
		if _, err := os.Lstat(d.path); err == nil {
			_ = removeRunDir(d.path, d.named, l.noChmod)
		} else if errors.Is(err, fs.ErrNotExist) {
			l.mu.Lock()
			d.r.again = false
			l.mu.Unlock()
		}
	}
}

// killNow kills at once, rather than at the next scan, what the run whose
// markers these are (as given to add) left running outside its group, and
// returns how many it found. It costs a scan of /proc, so it is only for
// where the second until the next scan matters (see runCommand). It
// returns once a scan finds none of them left (a killed process may take a
// moment to exit, or have forked as it was killed), or after about 300 ms
// of trying: what the caller does next (hand the run back, remove its
// directory) is to find them gone.
func (l *leftovers) killNow(markers ...string) int {
	n := killLeftovers([][]string{markers}, l.isLive)
	for wait := 10 * time.Millisecond; n > 0 && wait <= 160*time.Millisecond; wait *= 2 {
		time.Sleep(wait)
		if killLeftovers([][]string{markers}, l.isLive) == 0 {
			break
		}
	}
	return n
}
