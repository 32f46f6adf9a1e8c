package runstatus

import "time"

// SetWindow makes ListPage read recent events first from a stream of
// fullScan messages on, with first windows of about events events; restore
// puts the defaults back.
func SetWindow(fullScan uint64, events int) (restore func()) {
	oldFull, oldEvents := fullScanBelow, windowEvents
	fullScanBelow, windowEvents = fullScan, events
	return func() { fullScanBelow, windowEvents = oldFull, oldEvents }
}

// SetClockMargin sets how far ahead queue times may be without showing in
// the events read, for a test whose stream spans a few seconds only.
func SetClockMargin(d time.Duration) (restore func()) {
	old := clockMargin
	clockMargin = d
	return func() { clockMargin = old }
}

// EventsRead is how many events ListPage has read so far.
func EventsRead() uint64 { return eventsRead.Load() }

// ResetWholeRunsPeak forgets the most runs a page's scan held whole;
// WholeRunsPeak tells it.
func ResetWholeRunsPeak()  { wholeRunsPeak.Store(0) }
func WholeRunsPeak() int64 { return wholeRunsPeak.Load() }
