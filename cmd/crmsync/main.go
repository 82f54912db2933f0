// Command crmsync runs the crmsync service (HTTP API and job worker) and
// its checking tools. See `crmsync help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `crmsync connects a contact center to a homegrown CRM.

Usage:
  crmsync serve [--config FILE] [--api-only | --worker-only] [--listen ADDR]
      Run the HTTP API and the job worker. Without --config, the embedded
      demo config runs: in-process Redis and the built-in sample CRM.
  crmsync check config --config FILE
      Validate a config file; print every problem with its path and line.
  crmsync check crm --config FILE --endpoint NAME --session SAMPLE.json [--send]
      Render the request an endpoint would send for a sample session
      (secrets redacted); with --send, send it and show what came back.
  crmsync check storage --config FILE
      Connect to the configured storage, write, read back and delete a
      probe file; say in plain words what failed.
  crmsync check email --config FILE --to ADDR
      Send a test message through the configured SMTP server.
  crmsync example-config
      Print the documented example config.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "crmsync: %v\n\n%s", err, usage)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "crmsync: %v\n", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "check":
		if len(args) < 2 {
			return usageError{"check what? config, crm, storage or email"}
		}
		switch args[1] {
		case "config":
			return checkConfig(args[2:], stdout)
		case "crm":
			return checkCRM(ctx, args[2:], stdout)
		case "storage":
			return checkStorage(ctx, args[2:], stdout)
		case "email":
			return checkEmail(ctx, args[2:], stdout)
		}
		return usageError{fmt.Sprintf("unknown check %q", args[1])}
	case "example-config":
		_, err := stdout.Write(exampleConfig())
		return err
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
