package signature

import "errors"

// Errors returned by Profile.Verify, always wrapped with context that names a
// header but never holds a secret or a signature value. Test with errors.Is.
//
// The ingress maps them to HTTP answers (API.md): ErrSignatureMissing and
// ErrSignatureInvalid to 401 signature_invalid, ErrTimestampOutOfTolerance to
// 401 timestamp_out_of_tolerance, ErrMissingEventID to 400 missing_event_id.
// ErrInvalidSecret is a configuration fault, not the sender's: a 500.
var (
	// ErrSignatureMissing means the request carries no signature header (or,
	// for timestamped profiles, no timestamp header to go with it).
	ErrSignatureMissing = errors.New("signature missing")

	// ErrSignatureInvalid means a signature is present but malformed or does
	// not match the request under any of the secrets.
	ErrSignatureInvalid = errors.New("signature verification failed")

	// ErrTimestampOutOfTolerance means the signature is authentic but its
	// signed timestamp is further from now than the profile's tolerance.
	ErrTimestampOutOfTolerance = errors.New("timestamp out of tolerance")

	// ErrTimestampInMilliseconds comes wrapped beside
	// ErrTimestampOutOfTolerance when the signed timestamp, read as
	// milliseconds, would have been within the tolerance: a sender's
	// usual mistake, worth saying.
	ErrTimestampInMilliseconds = errors.New("the timestamp looks like milliseconds since the epoch, not seconds")

	// ErrMissingEventID means the request is authentic but lacks the event id
	// the profile requires for deduplication.
	ErrMissingEventID = errors.New("missing event id")

	// ErrInvalidSecret means none of the secrets given to Verify is usable:
	// the list is empty, or every entry is empty or not in the profile's
	// format (standard-webhooks needs "whsec_" + base64).
	ErrInvalidSecret = errors.New("no usable signing secret")
)
