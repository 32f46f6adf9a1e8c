package runstatus

// SetWindow makes ListPage read recent events first from a stream of
// fullScan messages on, with first windows of about events events; restore
// puts the defaults back.
func SetWindow(fullScan uint64, events int) (restore func()) {
	oldFull, oldEvents := fullScanBelow, windowEvents
	fullScanBelow, windowEvents = fullScan, events
	return func() { fullScanBelow, windowEvents = oldFull, oldEvents }
}

// EventsRead is how many events ListPage has read so far.
func EventsRead() uint64 { return eventsRead.Load() }
