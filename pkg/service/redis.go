package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/redact"
)

// sentinelForm is the syntax of a Sentinel HOOKRUN_REDIS_URL, for errors.
const sentinelForm = "redis-sentinel://[[USER]:PASSWORD@]MASTER@HOST1:26379,HOST2:26379[/DB][?OPTIONS] (rediss-sentinel:// for TLS)"

// OpenRedis opens HOOKRUN_REDIS_URL, u: a single Redis, redis://[[USER]:
// PASSWORD@]HOST:6379[/DB][?OPTIONS] (rediss:// with TLS), or a master
// found through Sentinels (see parseSentinelURL), whose Sentinels ask
// sentinelPassword (HOOKRUN_REDIS_SENTINEL_PASSWORD) when they have a
// requirepass of their own.
//
// Commands give up when their context ends (ContextTimeoutEnabled): without
// it go-redis waits for its own read timeout, so a Redis that accepts and
// never answers held a 2 s claim for 5 s, and a 1 s readiness probe as long.
func OpenRedis(u, sentinelPassword string) (redis.UniversalClient, error) {
	if !isSentinelURL(u) {
		if sentinelPassword != "" {
			return nil, fmt.Errorf("HOOKRUN_REDIS_SENTINEL_PASSWORD is set but HOOKRUN_REDIS_URL=%q is no Sentinel URL: %s", redact.URL(u), sentinelForm)
		}
		opt, err := redis.ParseURL(u)
		if err != nil {
			if pu, perr := url.Parse(u); perr == nil && pu.Query().Has("master_name") {
				return nil, fmt.Errorf("HOOKRUN_REDIS_URL=%q: a Sentinel master is named in a Sentinel URL: %s", redact.URL(u), sentinelForm)
			}
			return nil, urlError("HOOKRUN_REDIS_URL", u, func(s string) error {
				_, err := redis.ParseURL(s)
				return err
			})
		}
		opt.ContextTimeoutEnabled = true
		return redis.NewClient(opt), nil
	}
	opt, err := parseSentinelURL(u)
	if err != nil {
		return nil, fmt.Errorf("HOOKRUN_REDIS_URL=%q: %w", redact.URL(u), err)
	}
	opt.SentinelPassword = sentinelPassword
	return redis.NewFailoverClient(opt), nil
}

// isSentinelURL reports whether u is a redis-sentinel:// or
// rediss-sentinel:// URL.
func isSentinelURL(u string) bool {
	scheme, _, found := strings.Cut(u, "://")
	return found && (strings.EqualFold(scheme, "redis-sentinel") || strings.EqualFold(scheme, "rediss-sentinel"))
}

// parseSentinelURL reads a Sentinel URL:
//
//	redis-sentinel://[[USER]:PASSWORD@]MASTER@HOST1[:PORT][,HOST2[:PORT]…][/DB][?OPTIONS]
//
// with rediss-sentinel:// for TLS to the Sentinels and to the master
// (each verified against its own address). USER and PASSWORD are the
// master's and its replicas' (requirepass, or an ACL user), as in a
// redis:// URL; the Sentinels' own password, when they have one, is not
// part of the URL (HOOKRUN_REDIS_SENTINEL_PASSWORD). A port defaults to
// 26379. OPTIONS are those go-redis reads in its own Sentinel URLs
// (dial_timeout=3s, skip_verify=true, …), but for master_name, addr,
// username and password, which have their places above.
//
// The userinfo ends at the last '@' but one, as redact.URL reads it, so a
// password may hold an unescaped '@'. MASTER:PASSWORD@HOSTS is refused
// rather than read as a master named "MASTER:PASSWORD": Sentinel masters
// have no ':' in their names, and the password goes before the name.
//
// Credentials are never put in the URL handed to go-redis, whose errors
// may quote it.
func parseSentinelURL(raw string) (*redis.FailoverOptions, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil, fmt.Errorf("no master's name: %s", sentinelForm)
	}
	hosts, tail := rest[at+1:], ""
	if i := strings.IndexAny(hosts, "/?#"); i >= 0 {
		hosts, tail = hosts[:i], hosts[i:]
	}
	userinfo, master, withUserinfo := "", rest[:at], false
	if i := strings.LastIndex(master, "@"); i >= 0 {
		userinfo, master, withUserinfo = master[:i], master[i+1:], true
	}
	switch {
	case master == "":
		return nil, fmt.Errorf("no master's name: %s", sentinelForm)
	case strings.Contains(master, ":") && !withUserinfo:
		return nil, fmt.Errorf("the master's name holds a ':': a password goes before the name, %s", sentinelForm)
	case strings.ContainsAny(master, ":/?#"):
		return nil, fmt.Errorf("the master's name holds one of : / ? #: %s", sentinelForm)
	}
	var user, password string
	if withUserinfo {
		u, p, _ := strings.Cut(userinfo, ":")
		var uerr, perr error
		user, uerr = url.PathUnescape(u)
		password, perr = url.PathUnescape(p)
		if uerr != nil || perr != nil {
			return nil, errors.New(malformedUserinfo)
		}
	}
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "26379")
		}
		host, port, err := net.SplitHostPort(h)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("Sentinel address %q: want HOST:PORT", h)
		}
		addrs = append(addrs, h)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no Sentinel address: %s", sentinelForm)
	}
	t, err := url.Parse("redis://sentinel" + tail)
	if err != nil {
		return nil, fmt.Errorf("path or options: %w", errors.Unwrap(err))
	}
	if t.Fragment != "" || strings.Contains(tail, "#") {
		return nil, fmt.Errorf("a '#' after the hosts: %s", sentinelForm)
	}
	q := t.Query()
	for _, k := range []string{"master_name", "addr", "username", "password"} {
		if q.Has(k) {
			return nil, fmt.Errorf("option %s: it has its place in the URL, %s", k, sentinelForm)
		}
	}
	q.Set("master_name", master)
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	goScheme := "redis"
	if strings.EqualFold(scheme, "rediss-sentinel") {
		goScheme = "rediss"
	}
	u := url.URL{Scheme: goScheme, Host: addrs[0], Path: t.Path, RawQuery: q.Encode()}
	o, err := redis.ParseFailoverURL(u.String())
	if err != nil {
		return nil, err
	}
	if o.RouteByLatency || o.RouteRandomly {
		return nil, errors.New("route_by_latency and route_randomly need a Redis Cluster of Sentinel-managed masters, which Hookrun does not open")
	}
	o.Username, o.Password = user, password
	o.ContextTimeoutEnabled = true
	if o.TLSConfig != nil {
		// go-redis names the first Sentinel for every certificate; each
		// connection (another Sentinel, the master) checks its own host.
		o.TLSConfig.ServerName = ""
	}
	return o, nil
}

// redisLog routes go-redis's log lines (a pool that fails to dial, a
// Sentinel failover) to a service's JSON log: go-redis otherwise prints
// them to stderr as text ("redis: 2026/11/28 12:00:00 pool.go:770: …"),
// which a JSON log pipeline cannot read.
type redisLog struct{ log *slog.Logger }

// Printf logs go-redis's line as a warning, but for the news of a Sentinel
// (the master it found, one it discovered), which are information.
func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	level := slog.LevelWarn
	for _, news := range []string{"sentinel: new master", "sentinel: selected addr", "sentinel: discovered new sentinel"} {
		if strings.HasPrefix(msg, news) {
			level = slog.LevelInfo
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.Log(ctx, level, msg, "component", "redis")
}
