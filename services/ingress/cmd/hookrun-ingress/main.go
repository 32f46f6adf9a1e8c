// Command hookrun-ingress runs Hookrun's ingress service.
package main

import (
	"context"

	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/services/ingress"
)

func main() {
	service.Main("ingress", "127.0.0.1:8080", func(ctx context.Context) error {
		cfg, err := ingress.ConfigFromEnv()
		if err != nil {
			return err
		}
		log := service.Logger("ingress", cfg.LogLevel)
		deps, err := service.Open(ctx, "ingress", cfg.Common, log)
		if err != nil {
			return err
		}
		defer deps.Close()
		in, err := ingress.FromDeps(ctx, cfg, deps)
		if err != nil {
			return err
		}
		log.Info("ingress listening", "addr", cfg.HTTPAddr)
		return in.Run(ctx, nil)
	})
}
