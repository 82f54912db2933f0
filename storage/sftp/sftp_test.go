package sftp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/logtest"
	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/storagetest"
)

func newTarget(t testing.TB, cfg Config, log *slog.Logger) *Target {
	t.Helper()
	tg, err := New(cfg, log)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return tg
}

// testLog records what a Target logs, to check what it says and that it
// never says a secret.
func testLog() (*slog.Logger, *logtest.Buffer) {
	buf := &logtest.Buffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func TestConformance(t *testing.T) {
	s := startMemServer(t, false)
	storagetest.Run(t, func(t *testing.T) storage.Target {
		tg, err := New(s.config(t), nil)
		require.NoError(t, err)
		return tg
	})
}

func TestAuth(t *testing.T) {
	s := startMemServer(t, false)
	other := newTestKey(t, "")
	tests := []struct {
		desc    string
		modify  func(*Config)
		wantErr error
	}{
		{"password", func(*Config) {}, nil},
		{"encrypted key and passphrase", func(c *Config) {
			c.Password = ""
			c.PrivateKey = crmsync.Secret(s.userKey.pem)
			c.Passphrase = testPassphrase
		}, nil},
		{"key refused, password accepted", func(c *Config) {
			c.PrivateKey = crmsync.Secret(other.pem)
			c.Passphrase = testPassphrase
		}, nil},
		{"wrong password", func(c *Config) { c.Password = "not-" + testPassword }, storage.ErrAuth},
		{"wrong user", func(c *Config) { c.User = "nobody" }, storage.ErrAuth},
		{"unknown key", func(c *Config) {
			c.Password = ""
			c.PrivateKey = crmsync.Secret(other.pem)
			c.Passphrase = testPassphrase
		}, storage.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			cfg := s.config(t)
			tt.modify(&cfg)
			log, logged := testLog()
			tg := newTarget(t, cfg, log)
			_, err := tg.Put(t.Context(), "ujet-metadata/call-1.json", strings.NewReader("{}"), storage.PutOptions{Size: 2})
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.False(t, Retryable(err), "bad credentials are not transient: %v", err)
			assert.Contains(t, err.Error(), cfg.User)
			assertNoSecret(t, cfg, err.Error()+logged.String())
			assert.Empty(t, dirEntries(t, cfg.FolderPath), "nothing may be written")
		})
	}
}

// assertNoSecret checks that text holds none of cfg's secrets.
func assertNoSecret(t *testing.T, cfg Config, text string) {
	t.Helper()
	for _, secret := range []crmsync.Secret{cfg.Password, cfg.Passphrase} {
		if secret != "" {
			assert.NotContains(t, text, secret.Reveal())
		}
	}
	if cfg.PrivateKey != "" {
		// Any line of the PEM body would be a leak.
		for line := range strings.SplitSeq(cfg.PrivateKey.Reveal(), "\n") {
			if len(line) > 20 && !strings.HasPrefix(line, "-----") {
				assert.NotContains(t, text, line)
			}
		}
	}
}

func TestHostKey(t *testing.T) {
	s := startMemServer(t, false)
	other := newTestKey(t, "")
	otherFP := other.fingerprint()
	serverFP := s.hostKey.fingerprint()
	line := func(pattern string, k testKey) string {
		return knownhosts.Line([]string{pattern}, k.signer.PublicKey())
	}
	addr := knownhosts.Normalize(s.addr)
	tests := []struct {
		desc     string
		modify   func(*Config)
		wantErr  bool
		wantText []string
	}{
		{"fingerprint", func(*Config) {}, false, nil},
		{"fingerprint as ssh-keygen -lf prints it", func(c *Config) {
			c.HostKeyFingerprint = "256 " + serverFP + " root@server (ED25519)"
		}, false, nil},
		{"known_hosts", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = "# from ssh-keyscan\n\n" + line("example.com", other) + "\n" + line(addr, s.hostKey) + "\n"
		}, false, nil},
		{"known_hosts, hashed host name", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = line(knownhosts.HashHostname(addr), s.hostKey)
		}, false, nil},
		{"known_hosts, wildcard", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = line("[127.0.0.*]:*", s.hostKey)
		}, false, nil},
		{"pinned fingerprint of another key", func(c *Config) {
			c.HostKeyFingerprint = otherFP
		}, true, []string{"expected " + otherFP, "ssh-ed25519 " + serverFP, `host_key_fingerprint: "` + serverFP + `"`}},
		{"known_hosts with another key", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = line(addr, other)
		}, true, []string{"expected ssh-ed25519 " + otherFP, "presented ssh-ed25519 " + serverFP, "add this line to known_hosts: " + line(addr, s.hostKey)}},
		{"known_hosts, key revoked", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = line(addr, s.hostKey) + "\n@revoked * " + strings.TrimSpace(string(s.hostKey.authorizedKey()))
		}, true, []string{"@revoked"}},
		{"known_hosts, host negated", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = line("[127.0.0.*]:*,!"+addr, s.hostKey) + "\n" + line(addr, other)
		}, true, []string{"presented ssh-ed25519 " + serverFP}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			cfg := s.config(t)
			tt.modify(&cfg)
			tg := newTarget(t, cfg, nil)
			_, err := tg.Put(t.Context(), "ujet-metadata/call-1.json", strings.NewReader("{}"), storage.PutOptions{Size: 2})
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, storage.ErrHostKey)
			assert.False(t, Retryable(err))
			for _, want := range tt.wantText {
				assert.Contains(t, err.Error(), want)
			}
			assert.Empty(t, dirEntries(t, cfg.FolderPath), "nothing may be written")
		})
	}
}

// A server holds several host keys and presents the one the client
// prefers; a pinned fingerprint of another of them must still be found.
func TestHostKeyFingerprintOfAnotherServerKey(t *testing.T) {
	s := startMemServer(t, false)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecSigner, err := ssh.NewSignerFromKey(ecKey)
	require.NoError(t, err)
	s.setHostKeys(ecSigner, s.hostKey.signer) // x/crypto prefers ECDSA

	cfg := s.config(t) // pins the Ed25519 key
	tg := newTarget(t, cfg, nil)
	_, err = tg.Put(t.Context(), "a.txt", strings.NewReader("a"), storage.PutOptions{Size: 1})
	require.NoError(t, err)

	cfg = s.config(t)
	cfg.HostKeyFingerprint = newTestKey(t, "").fingerprint()
	tg = newTarget(t, cfg, nil)
	_, err = tg.Stat(t.Context(), "a.txt")
	require.ErrorIs(t, err, storage.ErrHostKey)
	// Both keys the server holds are named, so the right one can be
	// picked.
	assert.Contains(t, err.Error(), ssh.FingerprintSHA256(ecSigner.PublicKey()))
	assert.Contains(t, err.Error(), s.hostKey.fingerprint())
}

func TestTrustOnFirstUse(t *testing.T) {
	s := startMemServer(t, false)
	cfg := s.config(t)
	cfg.HostKeyFingerprint = ""
	cfg.TrustOnFirstUse = true
	log, logged := testLog()
	tg := newTarget(t, cfg, log)
	ctx := t.Context()

	_, err := tg.Put(ctx, "a.txt", strings.NewReader("a"), storage.PutOptions{Size: 1})
	require.NoError(t, err)
	s.dropConns()
	_, err = tg.Stat(ctx, "a.txt") // reconnects; same key
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(logged.String(), s.hostKey.fingerprint()), "the trusted key is logged once:\n%s", logged)

	changed := newTestKey(t, "")
	s.setHostKeys(changed.signer)
	s.dropConns()
	_, err = tg.Stat(ctx, "a.txt")
	require.ErrorIs(t, err, storage.ErrHostKey)
	assert.Contains(t, err.Error(), s.hostKey.fingerprint()+" (trusted on first use)")
	assert.Contains(t, err.Error(), changed.fingerprint())
	_, err = tg.Put(ctx, "b.txt", strings.NewReader("b"), storage.PutOptions{Size: 1})
	require.ErrorIs(t, err, storage.ErrHostKey)
	assert.Equal(t, []string{"a.txt"}, dirEntries(t, cfg.FolderPath))
}

// A server that accepts connections and never answers fails calls within
// DialTimeout+IOTimeout, and callers arriving meanwhile share that one
// wait instead of queueing for one each.
func TestDeadServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})

	cfg := Config{
		Host:               "127.0.0.1",
		Port:               ln.Addr().(*net.TCPAddr).Port,
		User:               testUser,
		Password:           testPassword,
		HostKeyFingerprint: newTestKey(t, "").fingerprint(),
		DialTimeout:        500 * time.Millisecond,
		IOTimeout:          time.Second,
	}
	tg := newTarget(t, cfg, nil)
	const callers = 6
	errs := make([]error, callers)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			_, errs[i] = tg.Put(t.Context(), fmt.Sprintf("f%d.txt", i), strings.NewReader("x"), storage.PutOptions{Size: 1})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		require.ErrorIs(t, err, ErrConnection)
		assert.True(t, Retryable(err), "%v", err)
	}
	assert.Less(t, elapsed, cfg.DialTimeout+cfg.IOTimeout+time.Second, "callers must not queue behind each other's timeouts")
}

// stallProxy forwards a TCP connection until frozen; then it forwards
// nothing more in either direction, and keeps the connection open.
type stallProxy struct {
	ln     net.Listener
	target string
	frozen chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func startStallProxy(t testing.TB, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{ln: ln, target: target, frozen: make(chan struct{})}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { p.pipe(up, c) })
			p.wg.Go(func() { p.pipe(c, up) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.freeze()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			return // stop reading: the sender's window fills, then its socket buffers
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A connection that stops moving in the middle of an upload fails the
// upload within IOTimeout; the next call reconnects.
func TestStalledConnection(t *testing.T) {
	s := startMemServer(t, false)
	p := startStallProxy(t, s.addr)
	cfg := s.config(t)
	cfg.Port = p.ln.Addr().(*net.TCPAddr).Port
	cfg.IOTimeout = time.Second
	tg := newTarget(t, cfg, nil)

	start := time.Now()
	var frozeAt time.Time
	r := &hook{r: generator(1, 64<<20), after: 2 << 20, fn: func() {
		frozeAt = time.Now()
		p.freeze()
	}}
	_, err := tg.Put(t.Context(), "ujet-voice-recordings/call-1.wav", r, storage.PutOptions{Size: 64 << 20})
	require.ErrorIs(t, err, ErrConnection)
	assert.True(t, Retryable(err))
	require.False(t, frozeAt.IsZero())
	assert.Less(t, time.Since(frozeAt), 3*cfg.IOTimeout, "Put must not hang on a stalled connection (took %s in all)", time.Since(start))
	_, err = os.Stat(filepath.Join(cfg.FolderPath, "ujet-voice-recordings", "call-1.wav"))
	assert.True(t, os.IsNotExist(err), "nothing under the final name")

	// The server itself is fine: going around the proxy works.
	cfg.Port = s.port
	tg = newTarget(t, cfg, nil)
	_, err = tg.Put(t.Context(), "ujet-voice-recordings/call-1.wav", generator(1, 1<<20), storage.PutOptions{Size: 1 << 20})
	require.NoError(t, err)
}

// An SFTP server that stops answering while its SSH side still answers
// keepalives (so the socket deadlines never fire) is caught by the
// watchdog within IOTimeout.
func TestSFTPServerHangs(t *testing.T) {
	s := startMemServer(t, false)
	cfg := s.config(t)
	cfg.IOTimeout = time.Second
	tg := newTarget(t, cfg, nil)

	var hungAt time.Time
	r := &hook{r: generator(5, 64<<20), after: 2 << 20, fn: func() {
		hungAt = time.Now()
		s.sftpHung.Store(true)
	}}
	_, err := tg.Put(t.Context(), "ujet-media/call-1-video-v1.mp4", r, storage.PutOptions{Size: 64 << 20})
	require.ErrorIs(t, err, ErrConnection)
	assert.True(t, Retryable(err))
	require.False(t, hungAt.IsZero())
	assert.Less(t, time.Since(hungAt), 3*cfg.IOTimeout)

	s.sftpHung.Store(false)
	_, err = tg.Put(t.Context(), "ujet-media/call-1-video-v1.mp4", generator(5, 1<<20), storage.PutOptions{Size: 1 << 20})
	require.NoError(t, err, "the next call reconnects")
}

// An idle connection outlives IOTimeout: keepalive replies keep its reads
// within the deadline, and the watchdog sees no request waiting.
func TestIdleConnectionStays(t *testing.T) {
	s := startMemServer(t, false)
	cfg := s.config(t)
	cfg.IOTimeout = 600 * time.Millisecond
	log, logged := testLog()
	tg := newTarget(t, cfg, log)
	ctx := t.Context()
	for i, size := range []int64{0, 1, 32 << 10, 100_003, 3 << 20} {
		_, err := tg.Put(ctx, fmt.Sprintf("f%d.bin", i), generator(uint64(i), size), storage.PutOptions{Size: size})
		require.NoError(t, err)
	}
	rc, err := tg.Open(ctx, "f4.bin")
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	_, err = tg.List(ctx, "")
	require.NoError(t, err)

	time.Sleep(4 * cfg.IOTimeout)
	_, err = tg.Stat(ctx, "f4.bin")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(logged.String(), `"msg":"sftp: connected"`), "one connection all along:\n%s", logged)
	assert.NotContains(t, logged.String(), "connection lost")
}

func TestFolderPath(t *testing.T) {
	s := startMemServer(t, false)
	ctx := t.Context()

	t.Run("missing", func(t *testing.T) {
		cfg := s.config(t)
		cfg.FolderPath = filepath.Join(cfg.FolderPath, "missing")
		tg := newTarget(t, cfg, nil)
		_, err := tg.Put(ctx, "a.txt", strings.NewReader("a"), storage.PutOptions{Size: 1})
		require.ErrorIs(t, err, storage.ErrNoRoot)
		assert.False(t, Retryable(err))
		_, err = tg.Stat(ctx, "a.txt")
		require.ErrorIs(t, err, storage.ErrNoRoot)
		_, err = tg.List(ctx, "")
		require.ErrorIs(t, err, storage.ErrNoRoot)
		assert.NoDirExists(t, cfg.FolderPath, "the folder is never created")
	})
	t.Run("a file", func(t *testing.T) {
		cfg := s.config(t)
		cfg.FolderPath = filepath.Join(cfg.FolderPath, "file")
		require.NoError(t, os.WriteFile(cfg.FolderPath, nil, 0o600))
		tg := newTarget(t, cfg, nil)
		_, err := tg.List(ctx, "")
		require.ErrorIs(t, err, storage.ErrNoRoot)
	})
	t.Run("removed while connected", func(t *testing.T) {
		cfg := s.config(t)
		tg := newTarget(t, cfg, nil)
		_, err := tg.Put(ctx, "a/b.txt", strings.NewReader("b"), storage.PutOptions{Size: 1})
		require.NoError(t, err)
		require.NoError(t, os.RemoveAll(cfg.FolderPath))
		_, err = tg.Put(ctx, "a/b.txt", strings.NewReader("b"), storage.PutOptions{Size: 1})
		require.ErrorIs(t, err, storage.ErrNoRoot)
		assert.NoDirExists(t, cfg.FolderPath)
	})
	t.Run("login directory", func(t *testing.T) {
		cfg := s.config(t)
		cfg.FolderPath = ""
		tg := newTarget(t, cfg, nil)
		name := "login-dir-" + filepath.Base(t.TempDir()) + ".txt"
		obj, err := tg.Put(ctx, name, strings.NewReader("x"), storage.PutOptions{Size: 1})
		require.NoError(t, err)
		assert.FileExists(t, filepath.Join(s.root, name))
		assert.Equal(t, fmt.Sprintf("sftp://127.0.0.1:%d%s/%s", s.port, s.root, name), obj.URL)
	})
	for _, prefix := range []string{"", "~/"} {
		t.Run(fmt.Sprintf("relative to the login directory (%q)", prefix), func(t *testing.T) {
			cfg := s.config(t)
			dir := filepath.Base(cfg.FolderPath)
			cfg.FolderPath = prefix + dir + "/"
			tg := newTarget(t, cfg, nil)
			_, err := tg.Put(ctx, "r.txt", strings.NewReader("r"), storage.PutOptions{Size: 1})
			require.NoError(t, err)
			assert.FileExists(t, filepath.Join(s.root, dir, "r.txt"))
		})
	}
}

func TestPermissionDenied(t *testing.T) {
	s := startMemServer(t, true)
	cfg := s.config(t)
	tg := newTarget(t, cfg, nil)
	_, err := tg.Put(t.Context(), "ujet-metadata/call-1.json", strings.NewReader("{}"), storage.PutOptions{Size: 2})
	require.ErrorIs(t, err, storage.ErrPermission)
	assert.False(t, Retryable(err))
	assert.Empty(t, dirEntries(t, cfg.FolderPath))
}

// A re-run whose name is taken hashes its source instead of uploading
// it, so it succeeds even where nothing may be written.
func TestPutExistingDoesNotUpload(t *testing.T) {
	s := startMemServer(t, false)
	cfg := s.config(t)
	tg := newTarget(t, cfg, nil)
	ctx := t.Context()
	data := bytes.Repeat([]byte("recording "), 100_000)
	first, err := tg.Put(ctx, "ujet-voice-recordings/call-7.mp3", bytes.NewReader(data), storage.PutOptions{Size: -1})
	require.NoError(t, err)

	s.setReadOnly(true)
	s.dropConns()
	again, err := tg.Put(ctx, "ujet-voice-recordings/call-7.mp3", bytes.NewReader(data), storage.PutOptions{Size: -1})
	require.NoError(t, err)
	assert.Equal(t, first.SHA256, again.SHA256)
	assert.True(t, first.ModTime.Equal(again.ModTime))

	_, err = tg.Put(ctx, "ujet-voice-recordings/call-7.mp3", bytes.NewReader(data[1:]), storage.PutOptions{Size: -1})
	require.ErrorIs(t, err, storage.ErrExist)
	assert.False(t, Retryable(err))
	assert.Equal(t, []string{"call-7.mp3"}, dirEntries(t, filepath.Join(cfg.FolderPath, "ujet-voice-recordings")))
}

func TestOpenStreams(t *testing.T) {
	s := startMemServer(t, false)
	tg := newTarget(t, s.config(t), nil)
	ctx := t.Context()
	const size = 3<<20 + 5
	obj, err := tg.Put(ctx, "v.mp4", generator(3, size), storage.PutOptions{Size: size})
	require.NoError(t, err)
	assert.Equal(t, generatorSum(t, 3, size), obj.SHA256)

	rc, err := tg.Open(ctx, "v.mp4")
	require.NoError(t, err)
	var buf bytes.Buffer
	n, err := io.Copy(&buf, rc) // through WriteTo
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.EqualValues(t, size, n)

	cctx, cancel := context.WithCancel(ctx)
	rc, err = tg.Open(cctx, "v.mp4")
	require.NoError(t, err)
	defer rc.Close()
	_, err = rc.Read(make([]byte, 1000))
	require.NoError(t, err)
	cancel()
	_, err = io.Copy(io.Discard, rc)
	require.ErrorIs(t, err, context.Canceled)
}

func TestClose(t *testing.T) {
	s := startMemServer(t, false)
	tg := newTarget(t, s.config(t), nil)
	ctx := t.Context()
	_, err := tg.Put(ctx, "a.txt", strings.NewReader("a"), storage.PutOptions{Size: 1})
	require.NoError(t, err)
	require.NoError(t, tg.Close())
	require.NoError(t, tg.Close())
	_, err = tg.Stat(ctx, "a.txt")
	require.Error(t, err)
	assert.False(t, Retryable(err))
}

func TestValidate(t *testing.T) {
	key := newTestKey(t, "")
	encrypted := sharedEncryptedKey(t)
	valid := func() Config {
		return Config{
			Host:               "sftp.example.com",
			User:               "crm",
			Password:           testPassword,
			HostKeyFingerprint: key.fingerprint(),
		}
	}
	tests := []struct {
		desc   string
		modify func(*Config)
		want   string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"key only", func(c *Config) { c.Password = ""; c.PrivateKey = crmsync.Secret(key.pem) }, ""},
		{"encrypted key", func(c *Config) {
			c.PrivateKey = crmsync.Secret(encrypted.pem)
			c.Passphrase = testPassphrase
		}, ""},
		{"passphrase of an unencrypted key is ignored", func(c *Config) {
			c.PrivateKey = crmsync.Secret(key.pem)
			c.Passphrase = testPassphrase
		}, ""},
		{"trust on first use", func(c *Config) { c.HostKeyFingerprint = ""; c.TrustOnFirstUse = true }, ""},
		{"no host", func(c *Config) { c.Host = " " }, "host: required"},
		{"host with user", func(c *Config) { c.Host = "crm@sftp.example.com" }, "host"},
		{"port", func(c *Config) { c.Port = 70000 }, "port 70000"},
		{"no user", func(c *Config) { c.User = "" }, "user: required"},
		{"no credentials", func(c *Config) { c.Password = "" }, "password or private_key"},
		{"passphrase without key", func(c *Config) { c.Passphrase = "x" }, "passphrase: set without private_key"},
		{"key not PEM", func(c *Config) { c.PrivateKey = "ssh-ed25519 AAAA" }, "private_key: not a PEM private key"},
		{"encrypted key without passphrase", func(c *Config) { c.PrivateKey = crmsync.Secret(encrypted.pem) }, "passphrase: required"},
		{"wrong passphrase", func(c *Config) {
			c.PrivateKey = crmsync.Secret(encrypted.pem)
			c.Passphrase = "wrong"
		}, "passphrase: does not decrypt private_key"},
		{"no host key check", func(c *Config) { c.HostKeyFingerprint = "" }, "known_hosts or host_key_fingerprint: one is required"},
		{"both host key checks", func(c *Config) {
			c.KnownHosts = "sftp.example.com " + strings.TrimSpace(string(key.authorizedKey()))
		}, "set only one"},
		{"trust on first use and a pin", func(c *Config) { c.TrustOnFirstUse = true }, "trust_on_first_use"},
		{"MD5 fingerprint", func(c *Config) { c.HostKeyFingerprint = "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48" }, "host_key_fingerprint"},
		{"short fingerprint", func(c *Config) { c.HostKeyFingerprint = "SHA256:abc" }, "not a SHA256 fingerprint"},
		{"known_hosts for another host", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = "other.example.com " + strings.TrimSpace(string(key.authorizedKey()))
		}, "known_hosts: no line for sftp.example.com"},
		{"known_hosts for another port", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.Port = 2222
			c.KnownHosts = "sftp.example.com " + strings.TrimSpace(string(key.authorizedKey()))
		}, "no line for [sftp.example.com]:2222"},
		{"known_hosts garbage", func(c *Config) {
			c.HostKeyFingerprint = ""
			c.KnownHosts = "# comment\nsftp.example.com ssh-ed25519 !!!"
		}, "known_hosts: line 2"},
		{"negative timeout", func(c *Config) { c.IOTimeout = -time.Second }, "io_timeout"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "concurrency"},
		{"NUL in folder", func(c *Config) { c.FolderPath = "a\x00b" }, "folder_path"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)
			if tt.want == "" {
				tg, err := New(cfg, nil) // which validates
				require.NoError(t, err)
				require.NoError(t, tg.Close())
				return
			}
			err := cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assertNoSecret(t, cfg, err.Error())
		})
	}
	_, err := New(Config{}, nil)
	require.EqualError(t, err, "sftp: host: required", "New validates")
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	key := sharedEncryptedKey(t)
	cfg := Config{
		Host:               "sftp.example.com",
		User:               "crm",
		Password:           testPassword,
		PrivateKey:         crmsync.Secret(key.pem),
		Passphrase:         testPassphrase,
		HostKeyFingerprint: key.fingerprint(),
	}
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", "sftp", cfg)
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "sftp", cfg)
	fmt.Fprintf(&out, "%v %+v %#v", cfg, cfg, cfg)
	assertNoSecret(t, cfg, out.String())
	assert.Contains(t, out.String(), `"password":true`)
}

func TestParsePrivateKey(t *testing.T) {
	const passphrase = "correct-horse" // of the files in testdata
	for _, name := range []string{"pkcs8_pbkdf2_aes256", "pkcs8_scrypt_p256", "pkcs8_pbkdf2sha1_des3_rsa"} {
		t.Run(name, func(t *testing.T) {
			encrypted, err := os.ReadFile(filepath.Join("testdata", name+".pem"))
			require.NoError(t, err)
			plain, err := os.ReadFile(filepath.Join("testdata", name+".plain.pem"))
			require.NoError(t, err)
			want, err := ssh.ParsePrivateKey(plain)
			require.NoError(t, err)

			got, err := parsePrivateKey(crmsync.Secret(encrypted), passphrase)
			require.NoError(t, err)
			assert.Equal(t, want.PublicKey().Marshal(), got.PublicKey().Marshal())

			_, err = parsePrivateKey(crmsync.Secret(encrypted), "wrong")
			require.EqualError(t, err, "sftp: passphrase: does not decrypt private_key")
			_, err = parsePrivateKey(crmsync.Secret(encrypted), "")
			require.EqualError(t, err, "sftp: passphrase: required, private_key is encrypted")
		})
	}
	t.Run("log in with an encrypted PKCS#8 key", func(t *testing.T) {
		encrypted, err := os.ReadFile(filepath.Join("testdata", "pkcs8_pbkdf2_aes256.pem"))
		require.NoError(t, err)
		signer, err := parsePrivateKey(crmsync.Secret(encrypted), passphrase)
		require.NoError(t, err)
		s := startMemServer(t, false)
		s.setUserKey(testKey{signer: signer, pem: encrypted})
		cfg := s.config(t)
		cfg.Password = ""
		cfg.PrivateKey = crmsync.Secret(encrypted)
		cfg.Passphrase = passphrase
		tg := newTarget(t, cfg, nil)
		_, err = tg.List(t.Context(), "")
		require.NoError(t, err)
	})
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("sftp: put: %w (%w)", ErrConnection, io.EOF), true},
		{fmt.Errorf("x: %w", storage.ErrSize), true},
		{io.ErrUnexpectedEOF, true},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{&net.DNSError{Err: "no such host", IsNotFound: true}, false},
		{&net.DNSError{Err: "server misbehaving", IsTemporary: true}, true},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("x: %w", storage.ErrAuth), false},
		{fmt.Errorf("x: %w", storage.ErrHostKey), false},
		{fmt.Errorf("x: %w", storage.ErrPermission), false},
		{fmt.Errorf("x: %w", storage.ErrNoRoot), false},
		{fmt.Errorf("x: %w", storage.ErrExist), false},
		{fmt.Errorf("x: %w", storage.ErrNotExist), false},
		{fmt.Errorf("x: %w", storage.ErrInvalidName), false},
		{errors.New("sftp: disk full"), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Retryable(tt.err), "%v", tt.err)
	}
}

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"host", "host", true},
		{"host", "hostx", false},
		{"*", "anything", true},
		{"*.example.com", "sftp.example.com", true},
		{"*.example.com", "example.com", false},
		{"[10.0.0.?]:2222", "[10.0.0.7]:2222", true},
		{"[10.0.0.?]:2222", "[10.0.0.17]:2222", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, wildcardMatch(tt.pattern, tt.s), "%q %q", tt.pattern, tt.s)
	}
}
