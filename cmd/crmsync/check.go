package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/configs"
	"github.com/crmsync/crmsync/connectors/crm"
	"github.com/crmsync/crmsync/jobs"
	"github.com/crmsync/crmsync/templating"
)

func checkConfig(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *path == "" {
		return usageError{"--config is required"}
	}
	if _, err := configs.Load(*path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}

func checkCRM(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check crm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "config file (default: the embedded demo config)")
	endpoint := fs.String("endpoint", "", "endpoint name: "+strings.Join(endpointNames, ", "))
	sample := fs.String("session", "", "a sample event as JSON, as posted to /v1/events")
	send := fs.Bool("send", false, "send the request and show the answer")
	accountID := fs.String("account-id", "", "value of {ACCOUNT_ID}")
	recordID := fs.String("record-id", "", "value of {RECORD_ID}")
	comment := fs.String("comment", "Test comment from crmsync", "value of {COMMENT_BODY}")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *endpoint == "" || *sample == "" {
		return usageError{"--endpoint and --session are required"}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*sample)
	if err != nil {
		return err
	}
	evs, err := crmsync.DecodeEvents(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *sample, err)
	}
	client, err := crm.New(&cfg.CRM, crm.Options{})
	if err != nil {
		return err
	}
	if !client.Has(*endpoint) {
		return fmt.Errorf("endpoint %q is not configured (known names: %s)", *endpoint, strings.Join(endpointNames, ", "))
	}
	v := jobs.ValuesFor(evs[0], client.PhoneFormat())
	for x, s := range map[templating.Var]string{templating.AccountID: *accountID, templating.RecordID: *recordID, templating.CommentBody: *comment} {
		if s != "" {
			v.Set(x, s)
		}
	}
	r, err := client.Render(*endpoint, &v)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", r.Method, r.URL)
	for k, vs := range r.Header {
		for _, h := range vs {
			fmt.Fprintf(stdout, "%s: %s\n", k, h)
		}
	}
	if r.Body != "" {
		fmt.Fprintf(stdout, "\n%s\n", r.Body)
	}
	if !*send {
		return nil
	}
	res, err := client.Send(ctx, *endpoint, &v)
	fmt.Fprintf(stdout, "\n--- answer: status %d\n", res.Status)
	if res.Body != "" {
		fmt.Fprintf(stdout, "%s\n", res.Body)
	}
	if err != nil && !errors.Is(err, crm.ErrNotConfigured) {
		return err
	}
	located, _ := json.MarshalIndent(res.Located, "", "  ")
	fmt.Fprintf(stdout, "--- at the response data location: %s\n", located)
	if res.ID != "" {
		fmt.Fprintf(stdout, "--- id: %s\n", res.ID)
	}
	return nil
}

var endpointNames = []string{
	crm.EndpointFindAccountByID, crm.EndpointFindAccount, crm.EndpointCreateAccount,
	crm.EndpointFindRecord, crm.EndpointCreateRecord, crm.EndpointUpdateRecord,
	crm.EndpointComment, crm.EndpointUploadFile,
}
