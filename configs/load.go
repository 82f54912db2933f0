package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crmsync/crmsync"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	Path   string // YAML path, e.g. crm.endpoints.find_account.url
	Line   int    // 0 when unknown
	Reason string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Path, p.Reason)
	}
	if p.Path == "" {
		return p.Reason
	}
	return p.Path + ": " + p.Reason
}

// Problems is every problem found; Load returns it as its error.
type Problems struct {
	File  string
	Items []Problem
}

func (ps *Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", ps.File, len(ps.Items))
	for _, p := range ps.Items {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (ps *Problems) add(path, format string, args ...any) {
	ps.Items = append(ps.Items, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// Load reads, expands, decodes, defaults and checks the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse does what Load does on bytes. lookup resolves ${NAME}.
func Parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	ps := &Problems{File: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		ps.Items = append(ps.Items, yamlProblems(err, nil)...)
		return nil, ps
	}
	lines := indexLines(&root)
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		ps.Items = append(ps.Items, yamlProblems(err, lines)...)
		return nil, ps
	}
	expandAll(reflect.ValueOf(cfg).Elem(), "", lookup, ps)
	if len(ps.Items) == 0 {
		cfg.validate(ps)
	}
	if len(ps.Items) > 0 {
		for i := range ps.Items {
			if ps.Items[i].Line == 0 {
				ps.Items[i].Line = lines.lineOf(ps.Items[i].Path)
			}
		}
		return nil, ps
	}
	return cfg, nil
}

var yamlLineRe = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)

// yamlProblems turns yaml.v3's errors into problems with a path where the
// line tells which key it was.
func yamlProblems(err error, lines *lineIndex) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var out []Problem
	for _, m := range msgs {
		p := Problem{Reason: m}
		if sm := yamlLineRe.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Reason = sm[2]
			if lines != nil {
				p.Path = lines.pathAt(p.Line)
			}
			if fm := unknownFieldRe.FindStringSubmatch(sm[2]); fm != nil {
				p.Reason = fmt.Sprintf("unknown field %q", fm[1])
			}
		}
		out = append(out, p)
	}
	return out
}

// lineIndex maps YAML paths to the line of their key, and back.
type lineIndex struct {
	byPath map[string]int
	byLine map[int]string
}

func indexLines(root *yaml.Node) *lineIndex {
	li := &lineIndex{byPath: map[string]int{}, byLine: map[int]string{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				li.byPath[p] = k.Line
				if _, ok := li.byLine[k.Line]; !ok {
					li.byLine[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				li.byPath[p] = c.Line
				if _, ok := li.byLine[c.Line]; !ok {
					li.byLine[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return li
}

// lineOf finds the line of path, or of its nearest ancestor in the file
// (a missing required field is reported at its parent).
func (li *lineIndex) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := li.byPath[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (li *lineIndex) pathAt(line int) string {
	if p, ok := li.byLine[line]; ok {
		return p
	}
	// An unknown key is not in the index of known paths only when the
	// decoder stopped early; fall back to the closest key above it.
	best, bestLine := "", 0
	for l, p := range li.byLine {
		if l < line && l > bestLine {
			best, bestLine = p, l
		}
	}
	return best
}

var envRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandAll replaces ${NAME} and ${NAME:-default} in every string of the
// decoded config. It runs after decoding, so a value can never change the
// YAML's structure, and an unset variable is named with the path using it.
func expandAll(v reflect.Value, path string, lookup func(string) (string, bool), ps *Problems) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			expandAll(v.Elem(), path, lookup, ps)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			p := path
			if name != "" {
				p = joinPath(path, name)
			}
			expandAll(v.Field(i), p, lookup, ps)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			expandAll(v.Index(i), fmt.Sprintf("%s[%d]", path, i), lookup, ps)
		}
	case reflect.String:
		s := v.String()
		if !strings.Contains(s, "${") {
			return
		}
		out := envRe.ReplaceAllStringFunc(s, func(m string) string {
			sm := envRe.FindStringSubmatch(m)
			if val, ok := lookup(sm[1]); ok && val != "" {
				return val
			}
			if sm[2] != "" {
				return sm[3]
			}
			ps.add(path, "environment variable %s is not set", sm[1])
			return ""
		})
		v.SetString(out)
	}
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// validate applies defaults and checks everything but the CRM section's
// internals, which the crm package checks itself.
func (c *Config) validate(ps *Problems) {
	s := &c.Server
	if s.Listen == "" {
		s.Listen = "127.0.0.1:8080"
	} else if _, port, ok := strings.Cut(s.Listen, ":"); !ok || port == "" {
		ps.add("server.listen", "want host:port, got %q", s.Listen)
	}
	if len(s.APITokens) == 0 {
		ps.add("server.api_tokens", "at least one bearer token is required")
	}
	for i, t := range append(append([]crmsync.Secret{}, s.APITokens...), s.AdminTokens...) {
		if len(t.Reveal()) < 8 {
			field := fmt.Sprintf("server.api_tokens[%d]", i)
			if i >= len(s.APITokens) {
				field = fmt.Sprintf("server.admin_tokens[%d]", i-len(s.APITokens))
			}
			ps.add(field, "a token must be at least 8 characters")
		}
	}
	if len(s.AdminTokens) == 0 {
		s.AdminTokens = s.APITokens
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 1 << 20
	} else if s.MaxBodyBytes < 1024 {
		ps.add("server.max_body_bytes", "must be at least 1024")
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = 30 * time.Second
	} else if s.ShutdownTimeout < 0 {
		ps.add("server.shutdown_timeout", "must not be negative")
	}

	r := &c.Redis
	if r.KeyPrefix == "" {
		r.KeyPrefix = "crmsync:"
	}
	if !r.URL.IsZero() && r.Sentinel != nil {
		ps.add("redis.sentinel", "give url or sentinel, not both")
	}
	if u := r.URL.Reveal(); u != "" && !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") && !strings.HasPrefix(u, "unix://") {
		ps.add("redis.url", "want redis://, rediss:// or unix://")
	}
	if r.Sentinel != nil {
		if r.Sentinel.MasterName == "" {
			ps.add("redis.sentinel.master_name", "required")
		}
		if len(r.Sentinel.Addrs) == 0 {
			ps.add("redis.sentinel.addrs", "at least one host:port is required")
		}
	}

	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		ps.add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		ps.add("log.format", "want text or json, got %q", c.Log.Format)
	}

	w := &c.Worker
	if w.Concurrency == 0 {
		w.Concurrency = 50
	} else if w.Concurrency < 1 || w.Concurrency > 10000 {
		ps.add("worker.concurrency", "must be from 1 to 10000")
	}
	if w.Queue == "" {
		w.Queue = "crmsync"
	} else if crmsync.ValidateID(w.Queue) != nil {
		ps.add("worker.queue", "letters, digits, '-' and '_' only")
	}
	if w.TaskTimeout == 0 {
		w.TaskTimeout = 2 * time.Minute
	} else if w.TaskTimeout < time.Second {
		ps.add("worker.task_timeout", "must be at least 1s")
	}
	if w.LockTTL == 0 {
		w.LockTTL = w.TaskTimeout + 30*time.Second
	} else if w.LockTTL < w.TaskTimeout {
		ps.add("worker.lock_ttl", "must be at least worker.task_timeout (%s), or a running job could lose its lock", w.TaskTimeout)
	}

	rt := &c.Retry
	if rt.InitialDelay == 0 {
		rt.InitialDelay = 30 * time.Second
	} else if rt.InitialDelay < 0 {
		ps.add("retry.initial_delay", "must be positive")
	}
	if rt.Factor == 0 {
		rt.Factor = 2
	} else if rt.Factor < 1 || rt.Factor > 10 {
		ps.add("retry.factor", "must be from 1 to 10")
	}
	if rt.MaxDelay == 0 {
		rt.MaxDelay = 12 * time.Hour
	} else if rt.MaxDelay < rt.InitialDelay {
		ps.add("retry.max_delay", "must be at least retry.initial_delay")
	}
	if rt.Window == 0 {
		rt.Window = 7 * 24 * time.Hour
	} else if rt.Window < rt.InitialDelay {
		ps.add("retry.window", "must be at least retry.initial_delay")
	}
	if len(rt.Statuses) == 0 {
		rt.Statuses = []int{400, 429, 502, 503, 504}
	}
	for i, st := range rt.Statuses {
		if st < 400 || st > 599 {
			ps.add(fmt.Sprintf("retry.statuses[%d]", i), "want an HTTP error status from 400 to 599, got %d", st)
		}
	}

	if c.SampleCRM.Path == "" {
		c.SampleCRM.Path = "/sample-crm"
	} else if !strings.HasPrefix(c.SampleCRM.Path, "/") || strings.HasSuffix(c.SampleCRM.Path, "/") {
		ps.add("sample_crm.path", "must start with / and not end with /")
	}
	for _, reserved := range []string{"/v1", "/admin", "/healthz", "/readyz", "/metrics"} {
		if c.SampleCRM.Path == reserved || strings.HasPrefix(c.SampleCRM.Path, reserved+"/") {
			ps.add("sample_crm.path", "%s is taken by crmsync's own API", reserved)
		}
	}

	c.validateCloseout(ps)
	c.validateRouting(ps)
	c.validatePega(ps)
	c.validateSalesforce(ps)
	if err := c.CRM.Compile(); err != nil {
		for _, p := range crmProblems(err) {
			ps.Items = append(ps.Items, p)
		}
	}
}
