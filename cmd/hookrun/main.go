// Command hookrun is Hookrun's CLI: it runs the whole system in one process
// (`hookrun dev`) and manages a running one (apply, get, send, runs, replay).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "hookrun:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "hookrun:", err)
		if strings.HasPrefix(err.Error(), "unknown command") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit code (see `hookrun --help`).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
