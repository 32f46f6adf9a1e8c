// Command hookrun-dispatcher runs Hookrun's dispatcher service.
package main

import (
	"context"

	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/services/dispatcher"
)

func main() {
	service.Main("dispatcher", "127.0.0.1:8082", func(ctx context.Context) error {
		cfg, err := dispatcher.ConfigFromEnv()
		if err != nil {
			return err
		}
		log := service.Logger("dispatcher", cfg.LogLevel)
		deps, err := service.Open(ctx, "dispatcher", cfg.Common, log)
		if err != nil {
			return err
		}
		defer deps.Close()
		d, err := dispatcher.FromDeps(ctx, cfg, deps)
		if err != nil {
			return err
		}
		log.Info("dispatcher running", "addr", cfg.HTTPAddr)
		return d.Run(ctx, nil)
	})
}
