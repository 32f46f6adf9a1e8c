// Package bus defines Hookrun's NATS layout once — stream, subject, consumer,
// bucket and header names — and creates it idempotently at start-up.
//
// Nobody else formats a subject string: services call the functions here.
package bus

import (
	"strings"
	"time"
)

// Stream names.
const (
	// StreamDeliveries holds every accepted delivery (limits retention, the
	// audit log and the replay source).
	StreamDeliveries = "DELIVERIES"
	// StreamRuns holds resolved run requests (work-queue retention, one
	// durable consumer per job).
	StreamRuns = "RUNS"
	// StreamStatus holds status events of runs and deliveries; the last
	// message per subject is the current state.
	StreamStatus = "STATUS"
	// StreamRetries holds failed runs' retries until they are due, as
	// scheduled messages (NATS message scheduling). It is a stream of its
	// own: scheduling on RUNS made every run's start slower.
	StreamRetries = "RETRIES"
)

// KV bucket names.
const (
	BucketJobs          = "hookrun_jobs"
	BucketWebhooks      = "hookrun_webhooks"
	BucketKeys          = "hookrun_keys"
	BucketSecrets       = "hookrun_secrets"
	BucketWebhookStatus = "hookrun_webhook_status"
	BucketDedup         = "hookrun_dedup"
	BucketCancels       = "hookrun_cancels"
	// BucketCallbackAttempts counts the failed attempts of callbacks
	// that failed at least once, by their status event's STATUS
	// sequence: NATS also counts a delivery handed back at an
	// executor's shutdown, which is no attempt.
	BucketCallbackAttempts = "hookrun_callback_attempts"
)

// Consumer names.
const (
	// ConsumerDispatcher is the durable pull consumer all dispatchers share.
	ConsumerDispatcher = "dispatcher"
	// ConsumerCallbacks is the durable consumer that delivers callbacks.
	ConsumerCallbacks = "callbacks"
	// ConsumerRetries is the durable consumer with which executors move
	// due retries from RETRIES into RUNS.
	ConsumerRetries = "retries"
)

// Subject prefixes.
const (
	prefixDeliveries = "hookrun.deliveries"
	prefixRuns       = "hookrun.runs"
	prefixRetries    = "hookrun.retries"
	prefixStatus     = "hookrun.status"
	prefixOutput     = "hookrun.output"
	prefixCancel     = "hookrun.cancel"
	prefixSnapshot   = "hookrun.snapshot"
)

// Message headers.
const (
	HeaderMsgID     = "Nats-Msg-Id"
	HeaderSchema    = "Hookrun-Schema"
	HeaderDelivery  = "Hookrun-Delivery"
	HeaderRun       = "Hookrun-Run"
	HeaderWebhook   = "Hookrun-Webhook"
	HeaderStatus    = "Hookrun-Status"
	HeaderNamespace = "Hookrun-Namespace"
	// HeaderLine numbers a live output line of a run (1, 2, …); an output
	// snapshot's HeaderLine is the number of the last line it holds.
	HeaderLine = "Hookrun-Line"
	// HeaderAttempt names the attempt a live output line was printed by.
	HeaderAttempt = "Hookrun-Attempt"
	// HeaderRetryAttempt marks a run request scheduled by the executor for
	// a retry: the attempt it is for (2, 3, …).
	HeaderRetryAttempt = "Hookrun-Retry-Attempt"
	// NATS' message scheduling (nats-server 2.12 or later): a message on a
	// schedule subject is published to its target subject, in the same
	// stream, at the given time ("@at <RFC 3339>"), then removed.
	HeaderSchedule       = "Nats-Schedule"
	HeaderScheduleTarget = "Nats-Schedule-Target"
)

// RetryScheduleSubject is the subject in RETRIES that holds the
// scheduled retry of a run until it is due.
func RetryScheduleSubject(runID string) string {
	return join(prefixRetries, "wait", runID)
}

// RetryDueSubject is where NATS publishes a retry of a job's run when it
// is due, in RETRIES; an executor moves it to the job's subject in RUNS.
func RetryDueSubject(ns, job string) string {
	return join(prefixRetries, "due", ns, job)
}

// RetriesDue matches every due retry.
const RetriesDue = prefixRetries + ".due.>"

// JobOfRetryDue is the namespace and job of a RetryDueSubject.
func JobOfRetryDue(subject string) (ns, job string, ok bool) {
	rest, ok := strings.CutPrefix(subject, prefixRetries+".due.")
	if !ok {
		return "", "", false
	}
	ns, job, ok = strings.Cut(rest, ".")
	return ns, job, ok && SafeToken(ns) && SafeToken(job)
}

// DeliverySubject is the subject of one delivery in DELIVERIES.
func DeliverySubject(ns, webhook, delivery string) string {
	return join(prefixDeliveries, ns, webhook, delivery)
}

// DeliveryByIDFilter matches a delivery by id whatever its namespace and webhook.
func DeliveryByIDFilter(delivery string) string {
	return join(prefixDeliveries, "*", "*", delivery)
}

// RunSubject is the subject of run requests of one job in RUNS.
func RunSubject(ns, job string) string { return join(prefixRuns, ns, job) }

// ParseRunSubject returns the namespace and job of a RunSubject; ok is
// false for another subject.
func ParseRunSubject(subject string) (ns, job string, ok bool) {
	rest, found := strings.CutPrefix(subject, prefixRuns+".")
	if !found {
		return "", "", false
	}
	ns, job, found = strings.Cut(rest, ".")
	if !found || ns == "" || job == "" || strings.Contains(job, ".") {
		return "", "", false
	}
	return ns, job, true
}

// StatusSubject is the subject of status events of a run or delivery id.
func StatusSubject(ns, id string) string { return join(prefixStatus, ns, id) }

// StatusByIDFilter matches the status subject of id in any namespace.
func StatusByIDFilter(id string) string { return join(prefixStatus, "*", id) }

// StatusAll matches every status subject.
const StatusAll = prefixStatus + ".>"

// OutputSubject carries live output lines of a run (core NATS, not stored).
func OutputSubject(run string) string { return join(prefixOutput, run) }

// OutputSnapshotSubject takes requests for the output a running run has
// published so far (core NATS request/reply; the executor running it
// answers, with HeaderLine set to the last line's number).
func OutputSnapshotSubject(run string) string { return join(prefixSnapshot, run) }

// OutputSnapshotAll matches every run's snapshot subject.
const OutputSnapshotAll = prefixSnapshot + ".*"

// CancelSubject carries cancel requests for a running run (core NATS).
func CancelSubject(run string) string { return join(prefixCancel, run) }

// JobConsumer is the durable consumer name of one job on RUNS.
func JobConsumer(ns, job string) string { return "job_" + ns + "_" + job }

// ConfigKey is the KV key of a namespaced resource.
func ConfigKey(ns, name string) string { return ns + "." + name }

// SplitConfigKey is the inverse of ConfigKey.
func SplitConfigKey(key string) (ns, name string, ok bool) {
	return strings.Cut(key, ".")
}

func join(parts ...string) string { return strings.Join(parts, ".") }

// SafeToken reports whether s can stand as one subject token: no dots,
// wildcards, whitespace or control characters, and not empty.
func SafeToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		switch {
		case r == '.', r == '*', r == '>', r <= ' ', r == 0x7f:
			return false
		}
	}
	return true
}

// DeliveryMsgID is the Nats-Msg-Id of a delivery: webhook + run id, so
// JetStream's duplicate window drops a sender's fast retry. The run id is
// the event's under this webhook's uid (ident.RunID), not the event id
// itself: a webhook deleted and created again under its name is another
// webhook, whose first delivery of an event the old one had just taken is
// not that delivery's duplicate (as its dedup key is not the old one's). A
// replay uses its own delivery id instead, so it is never dropped as a
// duplicate.
func DeliveryMsgID(ns, webhook, runID, deliveryID string, replay bool) string {
	if replay {
		return deliveryID
	}
	return ns + "." + webhook + ":" + runID
}

// RunMsgID is the Nats-Msg-Id of a run request in RUNS. It names the run
// and the delivery that made it: a re-publish of the same delivery after a
// crash is dropped by RUNS' duplicate window, while a later delivery of the
// event (after the dedup window, which may be shorter than RUNS' duplicate
// window) is a new run and must not be. The dispatcher stores a request
// under it; the executor knows its own request by it.
func RunMsgID(runID, deliveryID string) string { return runID + ":" + deliveryID }

// CancelMark is the value keys writes under a run id in BucketCancels: the
// delivery whose run is cancelled, and when. A run id is the event's, so a
// later delivery of the event (after its dedup window) runs under the same
// id while the mark of the earlier run's cancel may still be there.
// Without a delivery id the mark applies to any delivery's run.
func CancelMark(deliveryID string, at time.Time) []byte {
	ts := at.UTC().Format(time.RFC3339)
	if deliveryID == "" {
		return []byte(ts)
	}
	return []byte(deliveryID + " " + ts)
}

// CancelMarkApplies reports whether a cancel mark is for deliveryID's run.
// A mark without a delivery (written by a release before marks named one)
// applies to any.
func CancelMarkApplies(mark []byte, deliveryID string) bool {
	d, _, ok := strings.Cut(string(mark), " ")
	return !ok || d == deliveryID
}
