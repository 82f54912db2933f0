package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/mail"
	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/gcs"
	"github.com/crmsync/crmsync/storage/local"
	"github.com/crmsync/crmsync/storage/sftp"
)

// openStorage opens the configured external storage, or returns nil when
// it is off.
func openStorage(ctx context.Context, c configs.Storage, log *slog.Logger) (storage.Target, error) {
	if !c.Enabled {
		return nil, nil
	}
	// Each branch checks its own error so a failed constructor never
	// returns a non-nil interface holding a nil pointer.
	switch c.Type {
	case "local":
		t, err := local.New(c.Local)
		if err != nil {
			return nil, err
		}
		return t, nil
	case "sftp":
		t, err := sftp.New(c.SFTP, log.With("component", "sftp"))
		if err != nil {
			return nil, err
		}
		return t, nil
	case "gcs":
		t, err := gcs.New(ctx, c.GCS, log.With("component", "gcs"))
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("storage: unknown type %q", c.Type)
}

func storedKinds(c configs.Storage) map[storage.FileKind]bool {
	m := map[storage.FileKind]bool{}
	for _, f := range c.Files {
		m[storage.FileKind(f)] = true
	}
	return m
}

func checkStorage(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check storage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "config file (default: the embedded demo config)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if !cfg.Storage.Enabled {
		return fmt.Errorf("storage is not enabled in the config (storage.enabled)")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t, err := openStorage(ctx, cfg.Storage, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer t.Close()
	if err := storage.Check(ctx, t); err != nil {
		return fmt.Errorf("%s storage: %w", cfg.Storage.Type, err)
	}
	fmt.Fprintf(stdout, "%s storage: wrote, read back and deleted a probe file: ok\n", cfg.Storage.Type)
	return nil
}

func checkEmail(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check email", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "config file")
	to := fs.String("to", "", "address to send the test message to")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *to == "" {
		return usageError{"--to is required"}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if err := cfg.Email.SMTP.Validate(); err != nil {
		return fmt.Errorf("email.smtp: %w", err)
	}
	sender, err := mail.NewSender(cfg.Email.SMTP, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	o := mail.Outcome{
		MessageID: fmt.Sprintf("<check-%d@crmsync>", time.Now().UnixNano()),
		To:        *to,
		Subject:   "crmsync test message",
		Metadata:  []byte(`{"check": "this is a test message from crmsync check email"}`),
	}
	if err := sender.Send(ctx, o); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Fprintf(stdout, "sent a test message to %s\n", *to)
	return nil
}
