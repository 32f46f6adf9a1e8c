package executor

import (
	"context"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// currentStatus is the run's current status, read from the STATUS stream's
// leader (runstatus.Get): a replica behind it could still say "running"
// for a run whose final status was just stored, and the run would start
// again.
func (x *Executor) currentStatus(ctx context.Context, id string) (*message.Run, error) {
	return runstatus.Get(ctx, x.js, id)
}
