package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/secretbox"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/services/dispatcher"
	"github.com/hookrun/hookrun/services/executor"
	"github.com/hookrun/hookrun/services/ingress"
	"github.com/hookrun/hookrun/services/keys"
)

type devOptions struct {
	dataDir        string
	ingressAddr    string
	keysAddr       string
	dispatcherAddr string
	executorAddr   string
	natsPort       int
	noSample       bool
}

func newDevCmd() *cobra.Command {
	o := devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run ingress, dispatcher, executor and keys in one process with an embedded NATS",
		Long: `Run the whole system in one process: an embedded nats-server (JetStream,
data in HOOKRUN_DATA_DIR, kept across restarts) and the four services. Dedup
claims go to Redis when HOOKRUN_REDIS_URL is set, else to NATS KV.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Stopping waits for running jobs (up to the executor's
			// shutdown grace): the first signal says so, and a second
			// ends the process at once, as it would without a handler.
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				select {
				case <-sigs:
				case <-ctx.Done():
					return // ended on its own (a start-up error): nothing to say
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "stopping: running jobs get up to HOOKRUN_EXECUTOR_SHUTDOWN_GRACE (20s by default) to finish; Ctrl-C again to stop at once")
				signal.Stop(sigs)
				cancel()
			}()
			err := runDev(ctx, o, cmd.OutOrStdout())
			if errors.Is(err, syscall.EADDRINUSE) {
				// Another hookrun dev (a forgotten make run) or any other
				// program holds a port: say how to pick others.
				err = fmt.Errorf("%w\n(another hookrun dev? stop it; or choose free ports with --ingress-addr, --keys-addr, --dispatcher-addr, --executor-addr, --nats-port or HOOKRUN_INGRESS_ADDR … and another --data-dir)", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", service.Env("DATA_DIR", "./.hookrun"), "where NATS data, the secret key and the admin token are kept (HOOKRUN_DATA_DIR)")
	f.StringVar(&o.ingressAddr, "ingress-addr", service.Env("INGRESS_ADDR", "127.0.0.1:8080"), "ingress listen address (HOOKRUN_INGRESS_ADDR)")
	f.StringVar(&o.keysAddr, "keys-addr", service.Env("KEYS_ADDR", "127.0.0.1:8081"), "keys API listen address (HOOKRUN_KEYS_ADDR)")
	f.StringVar(&o.dispatcherAddr, "dispatcher-addr", service.Env("DISPATCHER_ADDR", "127.0.0.1:8082"), "dispatcher health/metrics address (HOOKRUN_DISPATCHER_ADDR)")
	f.StringVar(&o.executorAddr, "executor-addr", service.Env("EXECUTOR_ADDR", "127.0.0.1:8083"), "executor health/metrics address (HOOKRUN_EXECUTOR_ADDR)")
	f.IntVar(&o.natsPort, "nats-port", -1, "embedded NATS client port (-1: a free one)")
	f.BoolVar(&o.noSample, "no-sample", false, "do not create the sample job and webhook")
	return cmd
}

// persisted returns the value of env var name, else the content of file in
// dir, else a new value made by gen and written there (0600). A file that
// holds nothing (a first start that stopped between creating it and
// writing it, as on a full disk) is written anew.
func persisted(name, dir, file string, gen func() string) (string, bool, error) {
	if v := os.Getenv(name); v != "" {
		return v, false, nil
	}
	p := filepath.Join(dir, file)
	if b, err := os.ReadFile(p); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, false, nil
		}
	}
	v := gen()
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return v, true, nil
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "hra_" + hex.EncodeToString(b)
}

func runDev(ctx context.Context, o devOptions, out io.Writer) error {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return err
	}
	unlock, err := lockDataDir(o.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	common, err := service.CommonFromEnv("")
	if err != nil {
		return err
	}
	secretKey := common.SecretKey // HOOKRUN_SECRET_KEY or HOOKRUN_SECRET_KEY_FILE
	if secretKey == "" {
		if secretKey, _, err = persisted("HOOKRUN_SECRET_KEY", o.dataDir, "secret.key", secretbox.NewKey); err != nil {
			return err
		}
	}
	tokens, _, err := persisted("HOOKRUN_ADMIN_TOKENS", o.dataDir, "admin.token", newToken)
	if err != nil {
		return err
	}
	if len(keys.ParseTokens(tokens)) == 0 {
		return fmt.Errorf("no admin token in HOOKRUN_ADMIN_TOKENS (or %s): give one or more, separated by commas, or unset it and remove the file to have one made", filepath.Join(o.dataDir, "admin.token"))
	}
	ns, err := embednats.Start(embednats.Options{Port: o.natsPort, StoreDir: filepath.Join(o.dataDir, "nats")})
	if err != nil {
		// A port it cannot take: embednats names the address, this says
		// which flag moves it.
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = fmt.Errorf("%w (the embedded NATS port: pick another with --nats-port)", err)
		}
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()

	common.NATSURL, common.SecretKey = ns.ClientURL(), secretKey
	common.OpsAddr = ""      // one address each: the four services would share it
	common.OneProcess = true // each address serves its own service's metrics
	log := service.Logger("", common.LogLevel)

	open := func(name, addr string) (*service.Deps, service.Common, error) {
		c := common
		c.HTTPAddr = addr
		d, err := service.Open(ctx, name, c, log.With("service", name))
		return d, c, err
	}
	g, gctx := errgroup.WithContext(ctx)
	addrs := map[string]chan net.Addr{"ingress": make(chan net.Addr, 1), "keys": make(chan net.Addr, 1), "dispatcher": make(chan net.Addr, 1), "executor": make(chan net.Addr, 1)}
	readyFn := func(name string) func(net.Addr) { return func(a net.Addr) { addrs[name] <- a } }
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	// Keys.
	kd, kc, err := open("keys", o.keysAddr)
	if err != nil {
		return err
	}
	closers = append(closers, kd.Close)
	ks := keys.FromDeps(keys.Config{Common: kc, AdminTokens: keys.ParseTokens(tokens)}, kd)
	g.Go(func() error { return ks.Run(gctx, readyFn("keys")) })

	// Ingress.
	id, ic, err := open("ingress", o.ingressAddr)
	if err != nil {
		return err
	}
	closers = append(closers, id.Close)
	icfg, err := ingress.ConfigFromEnv()
	if err != nil {
		return err
	}
	icfg.Common = ic
	in, err := ingress.FromDeps(ctx, icfg, id)
	if err != nil {
		return err
	}
	g.Go(func() error { return in.Run(gctx, readyFn("ingress")) })

	// Dispatcher.
	dd, dc, err := open("dispatcher", o.dispatcherAddr)
	if err != nil {
		return err
	}
	closers = append(closers, dd.Close)
	dcfg, err := dispatcher.ConfigFromEnv()
	if err != nil {
		return err
	}
	dcfg.Common = dc
	disp, err := dispatcher.FromDeps(ctx, dcfg, dd)
	if err != nil {
		return err
	}
	g.Go(func() error { return disp.Run(gctx, readyFn("dispatcher")) })

	// Executor.
	xd, xc, err := open("executor", o.executorAddr)
	if err != nil {
		return err
	}
	closers = append(closers, xd.Close)
	xcfg, err := executor.ConfigFromEnv()
	if err != nil {
		return err
	}
	xcfg.Common = xc
	x := executor.FromDeps(xcfg, xd)
	g.Go(func() error { return x.Run(gctx, readyFn("executor")) })

	got := map[string]string{}
	for name, ch := range addrs {
		select {
		case a := <-ch:
			got[name] = "http://" + a.String()
		case <-gctx.Done():
			return g.Wait()
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s did not start in 30s", name)
		}
	}
	token := keys.ParseTokens(tokens)[0]
	// The banner goes out in one write: the services log beside it (the
	// executor picks up the sample job as it is made), and a log line in
	// the middle split the export line from what follows.
	var banner strings.Builder
	fmt.Fprintf(&banner, "Hookrun is running (all-in-one).\n\n")
	fmt.Fprintf(&banner, "  ingress     %s\n  keys API    %s\n  dispatcher  %s/metrics\n  executor    %s/metrics\n  nats        %s (embedded, data in %s)\n\n",
		got["ingress"], got["keys"], got["dispatcher"], got["executor"], ns.ClientURL(), o.dataDir)
	// The export line carries every URL the CLI needs: with only the API's,
	// hookrun send would post to the default ingress address, not this one.
	fmt.Fprintf(&banner, "Admin token: %s\n\n  export HOOKRUN_API_URL=%s HOOKRUN_INGRESS_URL=%s HOOKRUN_ADMIN_TOKEN=%s\n\n", token, got["keys"], got["ingress"], token)
	if !o.noSample {
		// Bounded: the banner, token and URLs included, waits for it.
		sctx, cancel := context.WithTimeout(gctx, 15*time.Second)
		path, err := ensureSample(sctx, got["keys"], token)
		cancel()
		if err != nil {
			fmt.Fprintf(&banner, "(could not create the sample job: %v)\n", err)
		} else {
			fmt.Fprintf(&banner, "Trigger the sample job:\n\n  curl -sS -X POST %s%s -H 'Content-Type: application/json' -d '{\"message\": \"hello from curl\"}'\n\n", got["ingress"], path)
			fmt.Fprintf(&banner, "then, with the export line pasted, see the run (executionId from the answer):\n\n  curl -sS -H \"Authorization: Bearer $HOOKRUN_ADMIN_TOKEN\" %s/v1/runs/<executionId>\n\n", got["keys"])
		}
	}
	fmt.Fprintln(&banner, "Ready. Ctrl-C stops.")
	_, _ = io.WriteString(out, banner.String())
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// ensureSample creates (idempotently) a job that echoes its payload and a
// secret-URL webhook on it, and returns the webhook's endpoint path.
func ensureSample(ctx context.Context, api, token string) (string, error) {
	put := func(path string, body any) (map[string]any, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, api+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode >= 300 {
			return nil, fmt.Errorf("PUT %s: %s %v", path, resp.Status, m["error"])
		}
		return m, nil
	}
	if _, err := put("/v1/jobs/hello", map[string]any{
		"apiVersion": "hookrun.dev/v1", "kind": "Job", "metadata": map[string]any{"name": "hello"},
		"spec": map[string]any{"command": []string{"/bin/sh", "-c", `echo "hello job got: $(cat "$HOOKRUN_WEBHOOK_PAYLOAD_FILE")"`}, "timeout": "1m"},
	}); err != nil {
		return "", err
	}
	w, err := put("/v1/webhooks/hello", map[string]any{
		"apiVersion": "hookrun.dev/v1", "kind": "Webhook", "metadata": map[string]any{"name": "hello"},
		"spec": map[string]any{"job": "hello", "methods": []string{"GET", "POST"}, "auth": map[string]any{"none": map[string]any{}}},
	})
	if err != nil {
		return "", err
	}
	st, _ := w["status"].(map[string]any)
	p, _ := st["endpointPath"].(string)
	if p == "" {
		return "", errors.New("no endpointPath in the answer")
	}
	return p, nil
}
