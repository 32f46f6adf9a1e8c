// Command hookrun-executor runs Hookrun's executor service.
package main

import (
	"context"
	"os"

	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/services/executor"
)

func main() {
	// As a container's PID 1, the executor is its own init: it runs
	// itself as a child and reaps what jobs leave behind.
	if code, ran := executor.RunAsInit(); ran {
		os.Exit(code)
	}
	service.Main("executor", "127.0.0.1:8083", func(ctx context.Context) error {
		cfg, err := executor.ConfigFromEnv()
		if err != nil {
			return err
		}
		if err := executor.CheckCredentialFiles(cfg); err != nil {
			return err
		}
		if err := executor.CheckWorkDir(cfg); err != nil {
			return err
		}
		log := service.Logger("executor", cfg.LogLevel)
		deps, err := service.Open(ctx, "executor", cfg.Common, log)
		if err != nil {
			return err
		}
		defer deps.Close()
		log.Info("executor running", "addr", cfg.HTTPAddr, "maxConcurrent", cfg.MaxConcurrent)
		return executor.FromDeps(cfg, deps).Run(ctx, nil)
	})
}
