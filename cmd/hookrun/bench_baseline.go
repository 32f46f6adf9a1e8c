package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // bench-nats --pprof only: the default mux is served nowhere else
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/ident"
)

// newBenchNATSCmd runs the nats-server of `hookrun bench` in a process of
// its own, so that its CPU time is told apart from the load generator's and
// neither delays the other's goroutines.
func newBenchNATSCmd() *cobra.Command {
	var store, pprofAddr string
	cmd := &cobra.Command{
		Use:    "bench-nats",
		Short:  "nats-server with JetStream for benchmarks",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ns, err := embednats.Start(embednats.Options{Port: -1, StoreDir: store})
			if err != nil {
				return err
			}
			fmt.Println("listening", ns.ClientURL())
			if pprofAddr != "" {
				// CPU profiles of the server for `hookrun bench --pprof`.
				ln, err := net.Listen("tcp", pprofAddr)
				if err != nil {
					return err
				}
				fmt.Println("pprof", ln.Addr())
				go func() { _ = http.Serve(ln, http.DefaultServeMux) }()
			}
			<-ctx.Done()
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil
		},
	}
	cmd.Flags().StringVar(&store, "store", "", "JetStream store directory")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this address")
	return cmd
}

// newBenchBaselineCmd runs the bare servers `hookrun bench` compares the
// ingress with: an Echo handler that answers 202, and one that publishes the
// body to a JetStream file stream and answers 202 after the ack — the limit
// of a durable ingress on this stack.
func newBenchBaselineCmd() *cobra.Command {
	var addr, natsURL, mode string
	cmd := &cobra.Command{
		Use:    "bench-baseline",
		Short:  "Bare Echo (+JetStream publish) server for benchmarks",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			e := echo.New()
			e.HideBanner, e.HidePort = true, true
			switch mode {
			case "202":
				e.POST("/v1/hooks/:id", func(c echo.Context) error {
					_, _ = io.Copy(io.Discard, c.Request().Body)
					return c.JSON(http.StatusAccepted, map[string]bool{"accepted": true})
				})
			case "publish", "publish-features":
				h, closeNATS, err := barePublishHandler(ctx, natsURL, mode == "publish-features")
				if err != nil {
					return err
				}
				defer closeNATS()
				e.POST("/v1/hooks/:id", h)
			default:
				return fmt.Errorf("--mode must be 202, publish or publish-features")
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); _ = srv.Close() }()
			fmt.Println("listening", ln.Addr())
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listen address")
	cmd.Flags().StringVar(&natsURL, "nats", "", "NATS URL (mode publish)")
	cmd.Flags().StringVar(&mode, "mode", "publish", "202, publish or publish-features")
	return cmd
}

// barePublishHandler publishes each request's body to a JetStream file
// stream and answers 202 after the ack. With features, the publish uses the
// JetStream features the ingress' publish does, and nothing of the rest of
// the ingress: a stream configured as DELIVERIES (its duplicate window,
// direct gets, retention), a subject per request, a message id per request
// (the request's event id; the subject ends with a delivery id as the
// ingress makes one) and the ingress' two other headers. The
// difference between the two baselines is what those features cost
// nats-server and the client; the difference between the second and the
// ingress is the ingress' own work.
func barePublishHandler(ctx context.Context, natsURL string, features bool) (echo.HandlerFunc, func(), error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	cfg := jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage, MaxAge: time.Hour}
	if features {
		for _, c := range bus.StreamConfigs(bus.Options{}) {
			if c.Name == bus.StreamDeliveries {
				c.Name, c.Subjects, c.Description = "BENCHF", []string{"benchf.>"}, ""
				cfg = c
			}
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		nc.Close()
		return nil, nil, err
	}
	var n atomic.Uint64
	return func(c echo.Context) error {
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		m := &nats.Msg{Subject: "bench." + c.Param("id"), Data: body}
		if features {
			// The event id the load signs (the generic profile's
			// X-Event-Id), in the form of the ingress' message ids
			// (<namespace>.<webhook>:<run>, the run derived from the
			// event id): one per event, of a similar length.
			id := c.Request().Header.Get("X-Event-Id")
			if id == "" {
				id = c.Request().Header.Get("webhook-id")
			}
			if id == "" {
				id = strconv.FormatUint(n.Add(1), 10)
			}
			id = "default.bench:" + id
			m.Subject = "benchf." + c.Param("id") + "." + ident.NewDeliveryID()
			m.Header = nats.Header{
				bus.HeaderSchema:         {"bench"},
				bus.HeaderMsgID:          {id},
				bus.HeaderExpectedStream: {cfg.Name},
			}
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return c.NoContent(http.StatusServiceUnavailable)
		}
		select {
		case <-f.Ok():
			return c.JSON(http.StatusAccepted, map[string]bool{"accepted": true})
		case <-f.Err():
			return c.NoContent(http.StatusServiceUnavailable)
		case <-time.After(5 * time.Second):
			return c.NoContent(http.StatusServiceUnavailable)
		}
	}, nc.Close, nil
}
