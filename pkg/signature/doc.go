// Package signature verifies and produces the HMAC (and token) signatures
// that webhook providers put on their deliveries.
//
// The ingress looks a webhook's profile up by name, applies the webhook's
// tolerance override with WithTolerance and its event id header, if it
// names one, with WithEventIDHeader, and calls Verify with the current
// secret and any previous one still in its rotation grace; the event id it
// returns is the dedup key, kept for the profile's DefaultWindow unless the
// webhook sets its own. Before publishing, the ingress strips
// CredentialHeaders; a delivery that lacks its event id is answered with
// where the profile reads one (EventIDSource). The CLI ("hookrun send") and
// the benchmark use Sign to produce correctly signed deliveries.
//
// # Profiles
//
// Header names are case-insensitive. "Body" is always the raw request bytes.
// Timestamps are unix seconds; "±5m" is the default tolerance in either
// direction, which WithTolerance changes. An event id header marked
// "(required)" is the default WithEventIDHeader replaces.
//
//	generic            (Orloj)
//	  signature        X-Signature: sha256=<hex HMAC-SHA256>
//	  signed           X-Timestamp + "." + body, ±5m
//	  event id         X-Event-Id (required)
//	  window           24h
//
//	github
//	  signature        X-Hub-Signature-256: sha256=<hex HMAC-SHA256>
//	  signed           body (no timestamp)
//	  event id         X-GitHub-Delivery (required)
//	  window           72h
//
//	stripe
//	  signature        Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]
//	  signed           t + "." + body, ±5m; key is the whole "whsec_..." string
//	  event id         body's top-level "id" (required; body must be a JSON object)
//	  window           72h (Stripe retries for up to three days)
//
//	slack
//	  signature        X-Slack-Signature: v0=<hex HMAC-SHA256>
//	  signed           "v0:" + X-Slack-Request-Timestamp + ":" + body, ±5m
//	  event id         body's top-level "event_id" if present (Events API),
//	                   else "v0sig:" + 32 hex digits of SHA-256 of the signature
//	                   (slash commands, interactivity), so a replay is a duplicate
//	  window           1h (Slack retries three times within minutes)
//
//	standard-webhooks  (Standard Webhooks / Svix)
//	  signature        Webhook-Signature: v1,<base64> [v1,<base64> ...]
//	  signed           Webhook-Id + "." + Webhook-Timestamp + "." + body, ±5m;
//	                   key is the base64-decoded part of "whsec_<base64>"
//	  event id         Webhook-Id (required)
//	  window           24h
//	                   Svix's names (Svix-Id, Svix-Timestamp, Svix-Signature)
//	                   are read when no Webhook-* header is there
//
//	shopify
//	  signature        X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256>
//	                   (Shopify-Hmac-Sha256 for an Events delivery)
//	  signed           body (no timestamp)
//	  event id         X-Shopify-Event-Id and X-Shopify-Topic, else
//	                   X-Shopify-Webhook-Id (required); an Events
//	                   delivery's Shopify-Webhook-Id
//	  window           48h
//
//	gitlab
//	  signature        X-Gitlab-Token: <the secret itself> (a shared token, no HMAC)
//	  signed           nothing
//	  event id         Idempotency-Key (GitLab 17.4+: the same across retries
//	                   and resends), else X-Gitlab-Event-UUID (required)
//	  window           72h
//
// # Security
//
// Every comparison is constant time. Errors name headers but never hold a
// secret or a signature value. Verify checks the signature before the
// timestamp and the event id, so only an authentic request can learn that it
// is stale or lacks an id. Profiles without a signed timestamp (github,
// shopify, gitlab) rely on event id deduplication alone against replays.
// The event ids of stripe and slack (in the body, or slack's derived from
// the signature) and standard-webhooks are signed; the id headers of
// generic, github, shopify and gitlab are not, so a captured delivery can be
// resent under a new id: within the tolerance for generic, at any time for
// the others, as the providers' schemes allow. That is why only those four
// let a webhook name another header for the id (WithEventIDHeader): where
// the id is signed, an unsigned header would open the same hole. Keep a
// tolerance below the dedup window.
package signature
