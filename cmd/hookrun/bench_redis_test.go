package main

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/testenv"
)

func TestRedisURLWithDB_SetsTheDatabaseWhereTheURLFormKeepsIt(t *testing.T) {
	for base, want := range map[string]string{
		"redis://127.0.0.1:6379/0":      "redis://127.0.0.1:6379/3",
		"redis://127.0.0.1:6379":        "redis://127.0.0.1:6379/3",
		"redis://:pw@10.0.0.1:6380/0":   "redis://:pw@10.0.0.1:6380/3",
		"redis://127.0.0.1:6379?db=0":   "redis://127.0.0.1:6379?db=3",
		"unix:///run/redis.sock?db=0":   "unix:///run/redis.sock?db=3",
		"rediss://cache.example:6379/2": "rediss://cache.example:6379/3",
	} {
		got, ok := redisURLWithDB(base, 3)
		if !ok || got != want {
			t.Errorf("redisURLWithDB(%q, 3) = %q, %v; want %q", base, got, ok, want)
			continue
		}
		if o, err := redis.ParseURL(got); err != nil || o.DB != 3 {
			t.Errorf("%q parses to db %v (%v), want 3", got, o, err)
		}
	}
}

func TestEmptyRedisDB_TakesEachEmptyDatabaseOnce(t *testing.T) {
	url := testenv.RedisURL(t)
	ctx := context.Background()
	var taken []*redis.Client
	t.Cleanup(func() {
		for _, c := range taken {
			c.FlushDB(ctx) // only databases this test marked as its own
			c.Close()
		}
	})
	u1, c1, tok1, ok := emptyRedisDB(ctx, url)
	if !ok {
		t.Skip("no empty database among 1-15 on this Redis")
	}
	taken = append(taken, c1)
	if v, _ := c1.Get(ctx, benchRedisMark).Result(); v != tok1 {
		t.Fatalf("the taken database's mark is %q, want the token %q", v, tok1)
	}
	u2, c2, _, ok := emptyRedisDB(ctx, url)
	if ok {
		taken = append(taken, c2)
		if u2 == u1 {
			t.Fatalf("a marked database (%s) was taken again", u1)
		}
	}
	if o := mustRedisOpts(u1); o.DB != c1.Options().DB {
		t.Fatalf("the services' URL %s names database %d, the bench's client %d", u1, o.DB, c1.Options().DB)
	}
}

func TestIsRedisServer_KnowsOtherProcesses(t *testing.T) {
	if isRedisServer(os.Getpid()) || isRedisServer(-1) {
		t.Fatal("the test process or no process taken for redis-server")
	}
}
