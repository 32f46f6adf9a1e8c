package dedup

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// LookupMany returns the owners of keys in one round trip (MGET): owners[i]
// is "" and found[i] false where a key is absent.
func (r *Redis) LookupMany(ctx context.Context, keys []string) (owners []string, found []bool, err error) {
	rkeys := make([]string, len(keys))
	for i, k := range keys {
		rkeys[i] = RedisKey(k)
	}
	vals, err := r.c.MGet(ctx, rkeys...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	owners, found = make([]string, len(keys)), make([]bool, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			owners[i], found[i] = s, true
		}
	}
	return owners, found, nil
}
