package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/redact"
	"github.com/hookrun/hookrun/pkg/secretbox"
)

func init() {
	clientCommands = append(clientCommands, newBenchCmd, newBenchBaselineCmd, newBenchNATSCmd)
}

type benchOptions struct {
	duration    time.Duration
	warmup      time.Duration
	conns       int
	rounds      int
	bodySize    int
	rate        float64
	runs        int
	redisURL    string
	binDir      string
	pprofDir    string
	ingressOnly bool
	runsOnly    bool
	workDir     string
}

func newBenchCmd() *cobra.Command {
	o := benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test the real stack beside bare baselines and print the ratios",
		Long: `bench starts a nats-server (the embedded server, in a process of its own),
the bare baselines (an Echo handler answering 202; an Echo handler publishing
to a JetStream file stream; both get the same signed requests as the
ingress) and the four Hookrun services as separate processes, then measures:
the ingress at maximum rate (closed loop, signed generic-profile deliveries,
full authentication, metrics and logging; it and the two bare publish
handlers take turns in --rounds rounds, so that a slow patch of a shared
machine does not fall on one side of a ratio), the dispatcher draining the
backlog, the ingress latency at half its maximum rate (open loop), runs of a
trivial command per second against a bare os/exec spawn loop, and accept →
run started latency at a fixed rate. The service binaries are looked up next
to this executable (make build puts them in bin/).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each closed/open-loop phase")
	f.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each closed-loop phase")
	f.IntVar(&o.rounds, "rounds", 3, "rounds the bare publish handlers and the ingress take turns in at maximum rate, each of duration/rounds")
	f.IntVar(&o.conns, "conns", 64, "connections of the closed-loop phases")
	f.IntVar(&o.bodySize, "body", 1024, "body size in bytes")
	f.Float64Var(&o.rate, "rate", 500, "deliveries/s of the accept→run-started phase")
	f.IntVar(&o.runs, "runs", 3000, "runs of the runs/s phase")
	f.StringVar(&o.redisURL, "redis", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis for dedup (REDIS_URL)")
	// --help shows the default: a REDIS_URL's password is not printed.
	f.Lookup("redis").DefValue = redact.URL(f.Lookup("redis").DefValue)
	f.StringVar(&o.binDir, "bin", "", "directory of the hookrun-* binaries (default: next to this executable)")
	f.StringVar(&o.pprofDir, "pprof", "", "write CPU profiles of the ingress during its closed-loop phase (DIR/ingress.pprof) of the dispatcher for 2s of draining the backlog (DIR/dispatcher.pprof) of the executor for the first runs/1500 seconds of the runs phase (DIR/executor.pprof), of nats-server in the ingress and runs phases (DIR/nats-ingress.pprof, DIR/nats-executor.pprof), execution traces of the ingress for 3s of its half-rate phase (DIR/ingress-half.trace) and of the dispatcher and executor for 3s of the end-to-end phase (DIR/dispatcher-e2e.trace, DIR/executor-e2e.trace), and CPU profiles of nats-server and the executor for 4s of the end-to-end phase (DIR/nats-e2e.pprof, DIR/executor-e2e.pprof)")
	f.StringVar(&o.workDir, "work-dir", "", "the executor's HOOKRUN_WORK_DIR (default: on /dev/shm when it is a tmpfs, as docker-compose.yml puts run directories on a tmpfs; else beside the bench's nats store)")
	f.BoolVar(&o.ingressOnly, "ingress-only", false, "stop after the ingress phases (baselines, maximum, half rate)")
	f.BoolVar(&o.runsOnly, "runs-only", false, "skip the baselines, ingress and dispatcher phases: only the spawn loop, the runs phase and end to end")
	return cmd
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// benchProc is a process under test.
type benchProc struct {
	name string
	cmd  *exec.Cmd
	addr string
	out  *bytes.Buffer
	mu   sync.Mutex
}

func (p *benchProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len() < 1<<20 {
		p.out.Write(b)
	}
	return len(b), nil
}

func (p *benchProc) stop() {
	if p == nil || p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func (p *benchProc) pid() int { return p.cmd.Process.Pid }

// peakRSS is the process' high-water resident set (VmHWM), in MiB.
func (p *benchProc) peakRSS() float64 { return p.status("VmHWM:") }

// rss is the process' resident set now (VmRSS), in MiB.
func (p *benchProc) rss() float64 { return p.status("VmRSS:") }

// status reads a size field of /proc/<pid>/status, in MiB.
func (p *benchProc) status(field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

var (
	pickedMu sync.Mutex
	picked   = map[string]bool{}
)

// pickAddr returns a loopback address that was free a moment ago and was
// not returned before: the kernel can give one ephemeral port to two
// listeners opened and closed in a row, and the processes it is for bind
// it only later.
func pickAddr() string {
	pickedMu.Lock()
	defer pickedMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "127.0.0.1:0"
		}
		a := l.Addr().String()
		l.Close()
		if !picked[a] {
			picked[a] = true
			return a
		}
	}
	return "127.0.0.1:0"
}

func startProc(name, bin string, env []string, args ...string) (*benchProc, error) {
	p := &benchProc{name: name, out: &bytes.Buffer{}, addr: pickAddr()}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(append(os.Environ(), env...), "HOOKRUN_HTTP_ADDR="+p.addr, "HOOKRUN_LOG_LEVEL=info")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = benchChildAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

func waitHTTP(url string, total time.Duration) error {
	deadline := time.Now().Add(total)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s", url, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type benchReport struct {
	rows   [][3]string
	ratios [][2]string
}

func (r *benchReport) add(what, value, note string) {
	r.rows = append(r.rows, [3]string{what, value, note})
}

func runBench(ctx context.Context, o benchOptions, out io.Writer) error {
	if o.binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.binDir = filepath.Dir(exe)
	}
	for _, s := range []string{"ingress", "dispatcher", "executor", "keys"} {
		if _, err := os.Stat(filepath.Join(o.binDir, "hookrun-"+s)); err != nil {
			return fmt.Errorf("hookrun-%s not found in %s: run `make build` (or pass --bin)", s, o.binDir)
		}
	}
	self, _ := os.Executable()
	rdb := redis.NewClient(mustRedisOpts(o.redisURL))
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("Redis at %s: %w (start redis-server or set REDIS_URL)", redact.URL(o.redisURL), err)
	}
	// Memory per dedup key depends on how full the database's hash table
	// is: keys left by earlier runs (or a rehash they started) would be
	// counted. Claims go to an empty database when the given one is not.
	// A database the bench takes is marked with a token key, so that a
	// second bench on the same Redis takes another, and is emptied at the
	// end only if the mark is still ours.
	var token string
	redisNote := "the given database, empty at start"
	if n, _ := rdb.DBSize(ctx).Result(); n > 0 {
		if u, c, tok, ok := emptyRedisDB(ctx, o.redisURL); ok {
			rdb.Close()
			o.redisURL, rdb, token = u, c, tok
			redisNote = "a database empty at start, emptied at the end"
		} else {
			redisNote = fmt.Sprintf("the given database, which held %d %s: memory per key is skewed", n, plural(n, "key", "keys"))
		}
	}
	defer func() {
		if token != "" {
			if v, _ := rdb.Get(context.WithoutCancel(ctx), benchRedisMark).Result(); v == token {
				rdb.FlushDB(context.WithoutCancel(ctx))
			}
		}
		rdb.Close()
	}()
	dir, err := os.MkdirTemp("", "hookrun-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	natsArgs := []string{"bench-nats", "--store", filepath.Join(dir, "nats")}
	if o.pprofDir != "" {
		// Made here, not found missing only when the first profile is
		// written, after the run it was for.
		if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
		natsArgs = append(natsArgs, "--pprof", pickAddr())
	}
	np, err := startProc("nats", self, nil, natsArgs...)
	if err != nil {
		return err
	}
	defer np.stop()
	natsURL, err := waitListening(np)
	if err != nil {
		return err
	}
	natsPprof := ""
	if o.pprofDir != "" {
		natsPprof = "http://" + natsArgs[len(natsArgs)-1]
	}
	rep := &benchReport{}
	logf := func(format string, a ...any) { fmt.Fprintf(out, "# "+format+"\n", a...) }
	logf("machine: %d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel())
	logf("redis: database %d, %s (%s)", mustRedisOpts(o.redisURL).DB, redisNote, redisVersion(ctx, rdb))

	// Run directories go where docker-compose.yml puts them, on a tmpfs
	// (/dev/shm here), unless --work-dir says otherwise.
	workDir := o.workDir
	if workDir == "" {
		workDir = filepath.Join(dir, "runs")
		if fsType("/dev/shm") == "tmpfs" {
			if d, err := os.MkdirTemp("/dev/shm", "hookrun-bench-runs-"); err == nil {
				workDir = d
				defer os.RemoveAll(d)
			}
		}
	}
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return err
	}
	// 2. The services.
	env := []string{
		"HOOKRUN_NATS_URL=" + natsURL, "HOOKRUN_REDIS_URL=" + o.redisURL,
		"HOOKRUN_SECRET_KEY=" + secretbox.NewKey(), "HOOKRUN_ADMIN_TOKENS=bench-token",
		"HOOKRUN_EXECUTOR_MAX_CONCURRENT=64", "HOOKRUN_WORK_DIR=" + workDir,
	}
	if o.pprofDir != "" {
		env = append(env, "HOOKRUN_PPROF=true")
	}
	procs := map[string]*benchProc{}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(name string) error {
		p, err := startProc(name, filepath.Join(o.binDir, "hookrun-"+name), env)
		if err != nil {
			return err
		}
		procs[name] = p
		if err := waitHTTP("http://"+p.addr+"/readyz", 30*time.Second); err != nil {
			return fmt.Errorf("%w\n%s", err, p.out.String())
		}
		return nil
	}
	for _, s := range []string{"keys", "ingress"} {
		if err := start(s); err != nil {
			return err
		}
	}
	api := "http://" + procs["keys"].addr
	secret := benchSecret
	if err := setupBench(api, secret); err != nil {
		return err
	}
	ingress := "http://" + procs["ingress"].addr
	loadPath, spawnPath, err := endpointPaths(api)
	if err != nil {
		return err
	}
	if err := waitAccepted(ingress+loadPath, secret); err != nil {
		return err
	}

	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var (
		prof                  chan error
		cpu                   *cpuMeter
		bare202, barePub      loadResult
		bareFeat, ing         loadResult
		pubRounds, featRounds []string // ingress ÷ each bare publish handler, by round
		dispRate              float64
		ingCPU, dispCPU       float64 // µs per request or delivery, load generator left out
	)
	if o.runsOnly {
		// The readiness delivery of waitAccepted is not a run of the
		// runs phase.
		if err := start("dispatcher"); err != nil {
			return err
		}
		_ = waitDrained(ctx, js, bus.StreamDeliveries, bus.ConsumerDispatcher, time.Minute)
		purge(ctx, js, bus.StreamRuns)
	} else {
		// 1. The closed loops at maximum: the bare baselines and the
		// ingress (dispatcher and executor not running: the backlog
		// waits in DELIVERIES). The bare 202 handler, which only sets the
		// scale, goes first; then the two bare publish handlers and the
		// ingress take turns, in o.rounds rounds of o.duration/o.rounds
		// each, so that a slow patch of this shared machine falls on all
		// three rather than on one (their ratios are over all rounds, and
		// each round's is shown).
		rounds := max(1, o.rounds)
		per := (o.duration / time.Duration(rounds)).Round(time.Millisecond)
		bare := map[string]*benchProc{}
		defer func() {
			for _, p := range bare {
				p.stop()
			}
		}()
		for _, mode := range []string{"202", "publish", "publish-features"} {
			p, err := startProc("baseline-"+mode, self, nil, "bench-baseline", "--mode", mode, "--nats", natsURL, "--addr", pickAddr())
			if err != nil {
				return err
			}
			bare[mode] = p
			if p.addr, err = waitListening(p); err != nil {
				return err
			}
		}
		bareLoad := func(mode string, round int, warmup, d time.Duration, cpu *cpuMeter) loadResult {
			// The same load as the ingress gets, signature headers and
			// all: the load generator's cost per request is then the
			// same on both sides of the ratio (the bare handler ignores
			// them). Event ids are unique across rounds: the features
			// baseline has JetStream's duplicate window.
			return closedLoop(ctx, o.conns, warmup, d, signedDeliveries("http://"+bare[mode].addr+"/v1/hooks/x", benchSecret, fmt.Sprintf("bare-%s-r%d-", mode, round), o.bodySize), cpu)
		}
		meter := func(name string, pid int) *cpuMeter {
			m := newCPUMeter().add(name, pid, false).add("load generator", os.Getpid(), false).add("nats", np.pid(), false)
			if name == "ingress" {
				m.add("redis", redisPID(ctx, rdb), false)
			}
			return m
		}
		logf("bare 202 handler: closed loop, %d connections, %s", o.conns, o.duration)
		bare202 = bareLoad("202", 0, o.warmup, o.duration, nil)
		bare["202"].stop()
		delete(bare, "202")
		logf("bare publish handler, bare publish-features handler, ingress: closed loops of %d connections, taking turns in %d rounds of %s (%s warm-up in the first, %s in the others), signed generic deliveries of %d bytes", o.conns, rounds, per, o.warmup, min(o.warmup, time.Second), o.bodySize)
		cpuPub, cpuFeat, cpu := meter("handler", bare["publish"].pid()), meter("handler", bare["publish-features"].pid()), meter("ingress", procs["ingress"].pid())
		var pubs, feats, ings []loadResult
		for round := range rounds {
			warmup := o.warmup
			if round > 0 {
				warmup = min(o.warmup, time.Second)
			}
			// Odd rounds go in reverse order: what a phase leaves behind
			// (nats-server writing out its blocks) falls on each side in turn.
			runBare := func() {
				pubs = append(pubs, bareLoad("publish", round, warmup, per, cpuPub))
				feats = append(feats, bareLoad("publish-features", round, warmup, per, cpuFeat))
			}
			if round%2 == 0 {
				runBare()
			}
			if o.pprofDir != "" && round == 0 {
				prof = make(chan error, 1)
				go func() {
					time.Sleep(warmup)
					prof <- fetchProfile(ingress, per, filepath.Join(o.pprofDir, "ingress.pprof"))
				}()
				go func() {
					time.Sleep(warmup)
					if err := fetchProfile(natsPprof, max(time.Second, per-time.Second), filepath.Join(o.pprofDir, "nats-ingress.pprof")); err != nil {
						logf("profile: %v", err)
					}
				}()
			}
			ings = append(ings, closedLoop(ctx, o.conns, warmup, per, signedDeliveries(ingress+loadPath, secret, fmt.Sprintf("load-r%d-", round), o.bodySize), cpu))
			if prof != nil {
				if err := <-prof; err != nil {
					logf("profile: %v", err)
				}
				prof = nil
			}
			if round%2 == 1 {
				runBare()
			}
		}
		bare["publish-features"].stop() // the bare publish handler goes on, at half rate
		barePub, bareFeat, ing = mergeLoads(pubs...), mergeLoads(feats...), mergeLoads(ings...)
		barePub.CPU, bareFeat.CPU, ing.CPU = cpuPub.per(barePub.Sent), cpuFeat.per(bareFeat.Sent), cpu.per(ing.Sent)
		ingCPU = cpu.total(ing.Sent, "load generator")
		for i := range ings {
			pubRounds = append(pubRounds, fmt.Sprintf("%.2f", ings[i].PerSecond()/pubs[i].PerSecond()))
			featRounds = append(featRounds, fmt.Sprintf("%.2f", ings[i].PerSecond()/feats[i].PerSecond()))
		}
		rpid := redisPID(ctx, rdb)
		rep.add("bare Echo 202: req/s", f0(bare202.PerSecond()), fmt.Sprintf("p50 %s p99 %s", ms(bare202.Pct(.5)), ms(bare202.Pct(.99))))
		rep.add("bare Echo + JetStream publish: req/s", f0(barePub.PerSecond()), fmt.Sprintf("p50 %s p99 %s; rounds %s", ms(barePub.Pct(.5)), ms(barePub.Pct(.99)), rates(pubs)))
		rep.add("bare Echo + JetStream publish: CPU µs per request", barePub.CPU, "closed loop")
		rep.add("bare publish with the ingress' JetStream features: req/s", f0(bareFeat.PerSecond()), fmt.Sprintf("p50 %s p99 %s; rounds %s; a stream configured as DELIVERIES, a subject, message id and headers per request", ms(bareFeat.Pct(.5)), ms(bareFeat.Pct(.99)), rates(feats)))
		rep.add("bare publish with the ingress' JetStream features: CPU µs per request", bareFeat.CPU, "closed loop")
		rep.add("ingress: accepted/s", f0(ing.PerSecond()), fmt.Sprintf("codes %s; rounds %s", ing.codes(), rates(ings)))
		rep.add("ingress latency p50 / p99 / p99.9", fmt.Sprintf("%s / %s / %s", ms(ing.Pct(.5)), ms(ing.Pct(.99)), ms(ing.Pct(.999))), "at maximum rate")
		rep.add("ingress: CPU µs per request", ing.CPU, "closed loop")

		// 3b. The ingress at half that rate, the same set-up (open loop),
		// taking turns with the bare publish handler at the same rate (how
		// much of that latency this machine and stack cost before Hookrun
		// does anything), in rounds as at maximum rate: whatever the
		// maximum left behind (nats-server writing out its blocks, a
		// slow patch) falls on both.
		half := ing.PerSecond() / 2
		logf("ingress and bare publish handler: open loops at %.0f/s (half of the ingress' maximum), taking turns in %d rounds of %s (%s warm-up in the first, %s in the others), dispatcher and executor not running", half, rounds, per, o.warmup, min(o.warmup, time.Second))
		var hls, bls []loadResult
		for round := range rounds {
			warmup := o.warmup
			if round > 0 {
				warmup = min(o.warmup, time.Second)
			}
			bareHalf := func() {
				bls = append(bls, openLoop(ctx, half, warmup, per, signedDeliveries("http://"+bare["publish"].addr+"/v1/hooks/x", benchSecret, fmt.Sprintf("bare-half-r%d-", round), o.bodySize)))
			}
			if round%2 == 0 {
				// The bare handler first in even rounds: in the first, the
				// ingress would otherwise follow its own maximum at once.
				bareHalf()
			}
			var trace chan error
			if o.pprofDir != "" && round == 0 {
				// An execution trace after the warm-up: where the half-rate
				// latency waits (go tool trace -pprof=sched|sync|net|syscall).
				trace = make(chan error, 1)
				go func() {
					select {
					case <-time.After(warmup):
						trace <- fetchPprof("http://"+procs["ingress"].addr, "trace", min(3*time.Second, per), filepath.Join(o.pprofDir, "ingress-half.trace"))
					case <-ctx.Done():
						trace <- ctx.Err()
					}
				}()
			}
			hls = append(hls, openLoop(ctx, half, warmup, per, signedDeliveries(ingress+loadPath, secret, fmt.Sprintf("half-r%d-", round), o.bodySize)))
			if trace != nil {
				if err := <-trace; err != nil {
					logf("trace: %v", err)
				}
			}
			if round%2 == 1 {
				bareHalf()
			}
		}
		bare["publish"].stop()
		hl, bl := mergeLoads(hls...), mergeLoads(bls...)
		rep.add("ingress latency p50 / p99 / p99.9 at half rate", fmt.Sprintf("%s / %s / %s", ms(hl.Pct(.5)), ms(hl.Pct(.99)), ms(hl.Pct(.999))), fmt.Sprintf("%.0f/s offered, codes %s, %d sent over 5 ms late; p99 by round %s", half, hl.codes(), hl.Lagged, p99s(hls)))
		rep.add("bare Echo + JetStream publish latency p50 / p99 / p99.9 at that rate", fmt.Sprintf("%s / %s / %s", ms(bl.Pct(.5)), ms(bl.Pct(.99)), ms(bl.Pct(.999))), fmt.Sprintf("%.0f/s offered, codes %s, %d sent over 5 ms late; p99 by round %s", half, bl.codes(), bl.Lagged, p99s(bls)))
		if o.ingressOnly {
			rep.ratios = [][2]string{
				pubRatio(ing, barePub, pubRounds),
				featuresRatio(ing, bareFeat, featRounds),
			}
			rep.print(out)
			return nil
		}

		// 4. Dispatcher draining the backlog.
		backlog, _ := streamMsgs(ctx, js, bus.StreamDeliveries)
		keysBefore, memBefore := redisKeysMem(ctx, rdb)
		t0 := time.Now()
		if err := start("dispatcher"); err != nil {
			return err
		}
		cpu = newCPUMeter().add("dispatcher", procs["dispatcher"].pid(), false).add("load generator", os.Getpid(), false).add("nats", np.pid(), false).add("redis", rpid, false).start()
		var dprof chan error
		if o.pprofDir != "" {
			dprof = make(chan error, 1)
			go func() {
				dprof <- fetchProfile("http://"+procs["dispatcher"].addr, 2*time.Second, filepath.Join(o.pprofDir, "dispatcher.pprof"))
			}()
		}
		if err := waitDrained(ctx, js, bus.StreamDeliveries, bus.ConsumerDispatcher, 5*time.Minute); err != nil {
			return err
		}
		dispRate = float64(backlog) / time.Since(t0).Seconds()
		if dprof != nil {
			if err := <-dprof; err != nil {
				logf("profile: %v", err)
			}
		}
		rep.add("dispatcher: deliveries/s (draining the backlog)", f0(dispRate), fmt.Sprintf("%d %s, includes start-up", backlog, plural(backlog, "delivery", "deliveries")))
		rep.add("dispatcher: CPU µs per delivery", cpu.per(int(backlog)), "draining")
		// Its rate is measured alone, the ingress' beside the load
		// generator on the same cores: by CPU per delivery, the load
		// generator's left out on both sides, the two compare as they
		// would where senders are elsewhere.
		dispCPU = cpu.total(int(backlog), "load generator")
		keysAfter, memAfter := redisKeysMem(ctx, rdb)
		if backlog > 0 {
			// Every delivery drained has an event id of its own: one claim each.
			rep.add("Redis memory per dedup claim", fmt.Sprintf("%.0f B", float64(memAfter-memBefore)/float64(backlog)), fmt.Sprintf("%d %s in %d Redis %s (used_memory delta), %s", backlog, plural(backlog, "claim", "claims"), keysAfter-keysBefore, plural(keysAfter-keysBefore, "key", "keys"), redisNote))
		}
		purge(ctx, js, bus.StreamRuns)

		// 5. The same half rate with the dispatcher working beside the ingress
		// on the same cores (the whole pipeline but the executor).
		logf("ingress: open loop at %.0f/s for %s after a %s warm-up, dispatcher running", half, o.duration, o.warmup)
		hd := openLoop(ctx, half, o.warmup, o.duration, signedDeliveries(ingress+loadPath, secret, "halfd-", o.bodySize))
		rep.add("ingress latency p50 / p99 at half rate, dispatcher running", fmt.Sprintf("%s / %s", ms(hd.Pct(.5)), ms(hd.Pct(.99))), fmt.Sprintf("%.0f/s offered, codes %s", half, hd.codes()))
		_ = waitDrained(ctx, js, bus.StreamDeliveries, bus.ConsumerDispatcher, 2*time.Minute)
		purge(ctx, js, bus.StreamRuns)
	}

	// 6. Runs per second: a bare os/exec spawn loop, then the executor on a backlog of trivial runs.
	logf("bare os/exec spawn loop: %d × /bin/true, 64 at a time", o.runs)
	cpu = newCPUMeter().add("bench (spawning)", os.Getpid(), false).add("its /bin/true children", os.Getpid(), true).start()
	spawnRate := spawnLoop(o.runs, 64)
	rep.add("bare os/exec spawn loop: /bin/true per s", f0(spawnRate), "64 concurrent")
	rep.add("bare os/exec spawn loop: CPU µs per run", cpu.per(o.runs), "")
	logf("executor: %d %s of /bin/true (job concurrency 64), run directories on %s", o.runs, plural(o.runs, "run", "runs"), fsType(workDir))
	pre := closedLoopN(ctx, 32, o.runs, signedDeliveries(ingress+spawnPath, secret, "spawn-", 256))
	if pre != o.runs {
		return fmt.Errorf("only %d of %d spawn %s accepted", pre, o.runs, plural(o.runs, "delivery", "deliveries"))
	}
	if err := waitDrained(ctx, js, bus.StreamDeliveries, bus.ConsumerDispatcher, 2*time.Minute); err != nil {
		return err
	}
	finals := countFinals(nc)
	t1 := time.Now()
	if err := start("executor"); err != nil {
		return err
	}
	cpu = newCPUMeter().add("executor", procs["executor"].pid(), false).add("its /bin/true children", procs["executor"].pid(), true).add("load generator", os.Getpid(), false).add("nats", np.pid(), false).start()
	if o.pprofDir != "" {
		prof = make(chan error, 1)
		go func() {
			prof <- fetchProfile("http://"+procs["executor"].addr, time.Duration(max(1, o.runs/1500))*time.Second, filepath.Join(o.pprofDir, "executor.pprof"))
		}()
		go func() {
			if err := fetchProfile(natsPprof, time.Duration(max(1, o.runs/1500))*time.Second, filepath.Join(o.pprofDir, "nats-executor.pprof")); err != nil {
				logf("profile: %v", err)
			}
		}()
	}
	if err := finals.wait(o.runs, 5*time.Minute); err != nil {
		return err
	}
	runRate := float64(o.runs) / time.Since(t1).Seconds()
	if prof != nil {
		if err := <-prof; err != nil {
			logf("profile: %v", err)
		}
	}
	rep.add("executor: runs finished/s", f0(runRate), fmt.Sprintf("%d %s, includes start-up (first run finished after %s); statuses %s", o.runs, plural(o.runs, "run", "runs"), ms(finals.firstAfter(t1)), finals.summary()))
	rep.add("executor: CPU µs per run", cpu.per(o.runs), "")

	// 7. Accept → run started at a fixed rate, everything running.
	logf("end to end: open loop at %.0f/s for %s after a %s warm-up", o.rate, o.duration, o.warmup)
	// Only the measured deliveries' runs: the open loop sends event ids
	// "e2e-<i>", the measured ones from i0 on (those due after the
	// warm-up), so a warm-up delivery received a moment late is not one.
	i0 := int64(math.Ceil(o.rate * o.warmup.Seconds()))
	lat := watchStarts(nc, time.Now().Add(o.warmup), func(eventID string) bool {
		i, err := strconv.ParseInt(strings.TrimPrefix(eventID, "e2e-"), 10, 64)
		return err == nil && strings.HasPrefix(eventID, "e2e-") && i >= i0
	})
	var traces chan error
	if o.pprofDir != "" {
		// CPU profiles (nats-server, executor) and execution traces
		// (dispatcher, executor) after the warm-up: where accept → started
		// waits, past the ingress.
		traces = make(chan error, 4)
		for _, p := range []struct{ name, base string }{{"nats-e2e.pprof", natsPprof}, {"executor-e2e.pprof", "http://" + procs["executor"].addr}} {
			go func() {
				select {
				case <-time.After(o.warmup):
					traces <- fetchProfile(p.base, 4*time.Second, filepath.Join(o.pprofDir, p.name))
				case <-ctx.Done():
					traces <- ctx.Err()
				}
			}()
		}
		for _, s := range []string{"dispatcher", "executor"} {
			go func() {
				select {
				case <-time.After(o.warmup + time.Second):
					traces <- fetchPprof("http://"+procs[s].addr, "trace", 3*time.Second, filepath.Join(o.pprofDir, s+"-e2e.trace"))
				case <-ctx.Done():
					traces <- ctx.Err()
				}
			}()
		}
	}
	e2e := openLoop(ctx, o.rate, o.warmup, o.duration, signedDeliveries(ingress+spawnPath, secret, "e2e-", 256))
	for range cap(traces) {
		if err := <-traces; err != nil {
			logf("trace: %v", err)
		}
	}
	// Every accepted run's start, or 30 s: a run that starts later is
	// counted as missing, not left out of the percentiles unsaid.
	lat.waitFor(e2e.Accepted, 30*time.Second)
	starts := lat.stop()
	missing := max(0, e2e.Accepted-len(starts))
	lat.mu.Lock()
	stages := fmt.Sprintf("accept → queued p50 / p99 %s / %s, queued → started %s / %s", ms(percentile(lat.queued, .5)), ms(percentile(lat.queued, .99)), ms(percentile(lat.picked, .5)), ms(percentile(lat.picked, .99)))
	restarts, repeated := lat.restarts, lat.repeated
	lat.mu.Unlock()
	rep.add(fmt.Sprintf("accept → run started p50 / p99 at %.0f/s", o.rate), fmt.Sprintf("%s / %s", ms(percentile(starts, .5)), ms(percentile(starts, .99))), fmt.Sprintf("%d %s started (their first attempt; %d \"running\" of one stored twice), %d started again as a later attempt, %d accepted not started within 30 s of the load's end (not in the percentiles), ingress codes %s; %s", len(starts), plural(len(starts), "run", "runs"), repeated, restarts, missing, e2e.codes(), stages))

	for _, s := range []string{"ingress", "dispatcher", "executor", "keys"} {
		rep.add("peak RSS "+s, fmt.Sprintf("%.1f MiB", procs[s].peakRSS()), "VmHWM")
	}
	// What retention costs: every retained delivery and status event stays
	// on disk, and each subject (one per delivery in DELIVERIES, one per run
	// or duplicate in STATUS) in nats-server's memory (OPERATIONS.md,
	// "Sizing NATS").
	var held []string
	for _, name := range []string{bus.StreamDeliveries, bus.StreamStatus} {
		if st, err := streamState(ctx, js, name); err == nil && st.Msgs > 0 {
			rep.add(name+" at the end", fmt.Sprintf("%d messages, %.0f B each", st.Msgs, float64(st.Bytes)/float64(st.Msgs)), fmt.Sprintf("%d subjects", st.NumSubjects))
			held = append(held, fmt.Sprintf("%d subjects in %s", st.NumSubjects, name))
		}
	}
	rep.add("RSS nats-server now / peak", fmt.Sprintf("%.1f / %.1f MiB", np.rss(), np.peakRSS()), "VmRSS / VmHWM, holding "+strings.Join(held, " and "))
	rep.ratios = [][2]string{{"runs/s ÷ bare spawn (target ≥ 0.80)", fmt.Sprintf("%.2f", runRate/spawnRate)}}
	if !o.runsOnly {
		rep.ratios = [][2]string{
			pubRatio(ing, barePub, pubRounds),
			featuresRatio(ing, bareFeat, featRounds),
			rep.ratios[0],
			{"dispatcher ÷ ingress (target ≥ 1.00)", fmt.Sprintf("%.2f", dispRate/ing.PerSecond())},
		}
		if dispCPU > 0 && ingCPU > 0 {
			with := "nats and redis included"
			if redisPID(ctx, rdb) == 0 {
				with = "nats included; Redis not on this host, not measured"
			}
			rep.ratios = append(rep.ratios, [2]string{"dispatcher ÷ ingress by CPU per delivery (the load generator's left out: the dispatcher's rate above is measured alone, the ingress' beside the load generator)", fmt.Sprintf("%.2f (ingress %.0f µs, dispatcher %.0f µs, %s)", ingCPU/dispCPU, ingCPU, dispCPU, with)})
		}
	}
	rep.print(out)
	return nil
}

// featuresRatio compares the ingress with the bare publish handler that
// uses the same JetStream features (no target: it tells the ingress' own
// cost apart from what JetStream's duplicate window and per-delivery
// subjects cost).
func featuresRatio(ing, bareFeat loadResult, rounds []string) [2]string {
	return [2]string{"ingress ÷ bare publish with the ingress' JetStream features", ratioOf(ing, bareFeat, rounds)}
}

// pubRatio is the ratio the first target is about.
func pubRatio(ing, barePub loadResult, rounds []string) [2]string {
	return [2]string{"ingress ÷ bare publish (target ≥ 0.90)", ratioOf(ing, barePub, rounds)}
}

// ratioOf is a's rate over b's, over all rounds, with each round's own.
func ratioOf(a, b loadResult, rounds []string) string {
	v := fmt.Sprintf("%.2f", a.PerSecond()/b.PerSecond())
	if len(rounds) > 1 {
		v += " (rounds " + strings.Join(rounds, ", ") + ")"
	}
	return v
}

// p99s lists each round's p99 latency.
func p99s(rounds []loadResult) string {
	s := make([]string, len(rounds))
	for i, r := range rounds {
		s[i] = ms(r.Pct(.99))
	}
	return strings.Join(s, ", ")
}

// rates lists each round's accepted/s.
func rates(rounds []loadResult) string {
	s := make([]string, len(rounds))
	for i, r := range rounds {
		s[i] = f0(r.PerSecond())
	}
	return strings.Join(s, ", ")
}

func (rep *benchReport) print(out io.Writer) {
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| measure | value | notes |")
	fmt.Fprintln(out, "|---|---|---|")
	for _, r := range rep.rows {
		fmt.Fprintf(out, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| ratio | value |")
	fmt.Fprintln(out, "|---|---|")
	for _, r := range rep.ratios {
		fmt.Fprintf(out, "| %s | %s |\n", r[0], r[1])
	}
}

func redisVersion(ctx context.Context, rdb *redis.Client) string {
	info, _ := rdb.Info(ctx, "server").Result()
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			return "Redis " + v
		}
	}
	return "Redis"
}

// benchRedisMark is the key that marks a Redis database as taken by a bench.
const benchRedisMark = "hookrun-bench:taken"

// emptyRedisDB takes a database with no keys on the same Redis, 1 to 15:
// its URL for the services, a client, and the token of its mark.
func emptyRedisDB(ctx context.Context, base string) (string, *redis.Client, string, bool) {
	opts := mustRedisOpts(base)
	for db := 1; db < 16; db++ {
		u, ok := redisURLWithDB(base, db)
		if !ok {
			return "", nil, "", false
		}
		o := *opts
		o.DB = db
		c := redis.NewClient(&o)
		if n, err := c.DBSize(ctx).Result(); err == nil && n == 0 {
			token := strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(os.Getpid())
			// Taken only if still empty: the mark and the check in one step.
			took, err := c.Eval(ctx, `if redis.call('DBSIZE') == 0 then redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0`, []string{benchRedisMark}, token).Int()
			if err == nil && took == 1 {
				return u, c, token, true
			}
		}
		c.Close()
	}
	return "", nil, "", false
}

// redisURLWithDB is base with its database set to db, wherever that URL
// form keeps it (the ?db= parameter, else the path of a redis:// URL).
func redisURLWithDB(base string, db int) (string, bool) {
	u, err := url.Parse(base)
	if err != nil {
		return "", false
	}
	if q := u.Query(); q.Has("db") || u.Scheme == "unix" {
		q.Set("db", strconv.Itoa(db))
		u.RawQuery = q.Encode()
	} else {
		u.Path = "/" + strconv.Itoa(db)
	}
	o, err := redis.ParseURL(u.String())
	if err != nil || o.DB != db {
		return "", false
	}
	return u.String(), true
}

func mustRedisOpts(u string) *redis.Options {
	o, err := redis.ParseURL(u)
	if err != nil {
		return &redis.Options{Addr: "127.0.0.1:6379"}
	}
	return o
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func f0(v float64) string       { return strconv.FormatFloat(v, 'f', 0, 64) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func waitListening(p *benchProc) (string, error) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		s := p.out.String()
		p.mu.Unlock()
		sc := bufio.NewScanner(strings.NewReader(s))
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				return a, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", errors.New(p.name + " did not start")
}

func apiPut(api, path string, body any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, api+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer bench-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("PUT %s: %s %s", path, resp.Status, msg)
	}
	return nil
}

// setupBench makes a generic-signed webhook "load" (its job is never run
// during the ingress phases) and "spawn" on a /bin/true job.
// benchSecret signs every request the bench sends, the bare baselines'
// included.
const benchSecret = "bench-secret-0123456789"

func setupBench(api, secret string) error {
	res := func(kind, name string, spec map[string]any) map[string]any {
		return map[string]any{"apiVersion": "hookrun.dev/v1", "kind": kind, "metadata": map[string]any{"name": name}, "spec": spec}
	}
	steps := []struct {
		path string
		body map[string]any
	}{
		{"/v1/secrets/bench", res("Secret", "bench", map[string]any{"value": secret})},
		{"/v1/jobs/sink", res("Job", "sink", map[string]any{"command": []string{"/bin/true"}, "concurrency": 64})},
		{"/v1/jobs/true", res("Job", "true", map[string]any{"command": []string{"/bin/true"}, "concurrency": 64, "timeout": "30s"})},
		{"/v1/webhooks/load", res("Webhook", "load", map[string]any{"job": "sink", "auth": map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "bench"}}})},
		{"/v1/webhooks/spawn", res("Webhook", "spawn", map[string]any{"job": "true", "auth": map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "bench"}}})},
	}
	for _, s := range steps {
		if err := apiPut(api, s.path, s.body); err != nil {
			return err
		}
	}
	return nil
}

func endpointPaths(api string) (load, spawn string, err error) {
	get := func(name string) (string, error) {
		req, _ := http.NewRequest(http.MethodGet, api+"/v1/webhooks/"+name, nil)
		req.Header.Set("Authorization", "Bearer bench-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var w struct {
			Status struct{ EndpointPath string } `json:"status"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
			return "", err
		}
		return w.Status.EndpointPath, nil
	}
	if load, err = get("load"); err != nil {
		return
	}
	spawn, err = get("spawn")
	return
}

func waitAccepted(url, secret string) error {
	mk := signedDeliveries(url, secret, "probe-", 64)
	c := benchClient(1)
	for i := int64(0); i < 200; i++ {
		if code := do(c, mk(i)); code == "202" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the ingress never accepted the bench webhook")
}

func closedLoopN(ctx context.Context, conns, n int, mk requestMaker) int {
	c := benchClient(conns)
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil {
					return
				}
				if do(c, mk(i)) == "202" {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	st, err := streamState(ctx, js, name)
	return st.Msgs, err
}

func streamState(ctx context.Context, js jetstream.JetStream, name string) (jetstream.StreamState, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return info.State, nil
}

func purge(ctx context.Context, js jetstream.JetStream, name string) {
	if s, err := js.Stream(ctx, name); err == nil {
		_ = s.Purge(ctx)
	}
}

// waitDrained waits until a consumer has nothing pending or unacked.
func waitDrained(ctx context.Context, js jetstream.JetStream, stream, consumer string, total time.Duration) error {
	deadline := time.Now().Add(total)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(ctx, stream, consumer)
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s/%s not drained after %s", stream, consumer, total)
}

func redisKeysMem(ctx context.Context, rdb *redis.Client) (int64, int64) {
	n, _ := rdb.DBSize(ctx).Result()
	info, _ := rdb.Info(ctx, "memory").Result()
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
			m, _ := strconv.ParseInt(v, 10, 64)
			return n, m
		}
	}
	return n, 0
}

// spawnLoop starts and reaps /bin/true n times, par at a time.
func spawnLoop(n, par int) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				_ = exec.Command("/bin/true").Run()
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds()
}

// finalCounter counts final run statuses seen on STATUS subjects.
type finalCounter struct {
	sub   *nats.Subscription
	mu    sync.Mutex
	seen  map[string]string
	first time.Time // when the first final status came
	count atomic.Int64
}

func countFinals(nc *nats.Conn) *finalCounter {
	f := &finalCounter{seen: map[string]string{}}
	f.sub, _ = nc.Subscribe(bus.StatusAll, func(m *nats.Msg) {
		st := m.Header.Get(bus.HeaderStatus)
		if !message.Final(st) || !strings.Contains(m.Subject, ".run_") {
			return
		}
		f.mu.Lock()
		if f.first.IsZero() {
			f.first = time.Now()
		}
		if _, ok := f.seen[m.Subject]; !ok {
			f.count.Add(1)
		}
		f.seen[m.Subject] = st
		f.mu.Unlock()
	})
	return f
}

func (f *finalCounter) wait(n int, total time.Duration) error {
	deadline := time.Now().Add(total)
	for f.count.Load() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d %s finished after %s", f.count.Load(), n, plural(n, "run", "runs"), total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = f.sub.Unsubscribe()
	return nil
}

// firstAfter is how long after t the first final status came.
func (f *finalCounter) firstAfter(t time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first.Sub(t)
}

func (f *finalCounter) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := map[string]int{}
	for _, s := range f.seen {
		c[s]++
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// startWatcher records accept → run started from "running" status events.
type startWatcher struct {
	sub    *nats.Subscription
	mu     sync.Mutex
	ls     []time.Duration
	queued []time.Duration // accept → run queued (ingress, DELIVERIES, dispatcher)
	picked []time.Duration // queued → started (RUNS, executor)
	// restarts counts runs started again as a later attempt (handed back
	// after storing "running", or their executor lost).
	restarts int
	// seen holds the runs counted, by run and delivery: a "running" of
	// an attempt 1 seen twice is counted in repeated, not twice.
	seen     map[string]bool
	repeated int
}

// Runs received before since (the warm-up) are not counted.
func watchStarts(nc *nats.Conn, since time.Time, measured func(eventID string) bool) *startWatcher {
	w := &startWatcher{seen: map[string]bool{}}
	w.sub, _ = nc.Subscribe(bus.StatusAll, func(m *nats.Msg) {
		if m.Header.Get(bus.HeaderStatus) != message.StatusRunning {
			return
		}
		var r message.Run
		if json.Unmarshal(m.Data, &r) != nil || r.StartedAt == nil || r.WebhookReceivedAt.Before(since) || !measured(r.WebhookEventID) {
			return
		}
		w.mu.Lock()
		if r.Attempt > 1 { // a restart: its latency is not accept → start
			w.restarts++
			w.mu.Unlock()
			return
		}
		k := r.ID + "/" + r.DeliveryID
		if w.seen[k] {
			w.repeated++
			w.mu.Unlock()
			return
		}
		w.seen[k] = true
		w.ls = append(w.ls, r.StartedAt.Sub(r.WebhookReceivedAt))
		if r.QueuedAt != nil {
			w.queued = append(w.queued, r.QueuedAt.Sub(r.WebhookReceivedAt))
			w.picked = append(w.picked, r.StartedAt.Sub(*r.QueuedAt))
		}
		w.mu.Unlock()
	})
	return w
}

// waitFor waits until n runs have started, or for at most d.
func (w *startWatcher) waitFor(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		got := len(w.ls)
		w.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *startWatcher) stop() []time.Duration {
	_ = w.sub.Unsubscribe()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ls
}

// fetchProfile saves a CPU profile of a service taken over d.
func fetchProfile(base string, d time.Duration, path string) error {
	return fetchPprof(base, "profile", d, path)
}

// fetchPprof saves /debug/pprof/<kind> (profile: CPU; trace: execution
// trace) of d from base to path.
func fetchPprof(base, kind string, d time.Duration, path string) error {
	c := &http.Client{Timeout: d + 10*time.Second}
	resp, err := c.Get(fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", base, kind, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
