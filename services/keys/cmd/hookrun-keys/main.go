// Command hookrun-keys runs Hookrun's control plane (the keys service).
package main

import (
	"context"

	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/services/keys"
)

func main() {
	service.Main("keys", "127.0.0.1:8081", func(ctx context.Context) error {
		cfg, err := keys.ConfigFromEnv()
		if err != nil {
			return err
		}
		log := service.Logger("keys", cfg.LogLevel)
		deps, err := service.Open(ctx, "keys", cfg.Common, log)
		if err != nil {
			return err
		}
		defer deps.Close()
		log.Info("keys API listening", "addr", cfg.HTTPAddr)
		return keys.FromDeps(cfg, deps).Run(ctx, nil)
	})
}
