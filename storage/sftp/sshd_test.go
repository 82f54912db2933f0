package sftp

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/storagetest"
)

// The same suite against OpenSSH's sshd and internal-sftp, which differ
// from pkg/sftp's server where it matters here: error codes, rename and
// hard link semantics, packet size limits.
func TestOpenSSHConformance(t *testing.T) {
	s := startSSHD(t)
	storagetest.Run(t, func(t *testing.T) storage.Target {
		tg, err := New(s.plainConfig(t.TempDir()), nil)
		require.NoError(t, err)
		return tg
	})
}

func TestOpenSSHAuthAndHostKey(t *testing.T) {
	s := startSSHD(t)
	other := newTestKey(t, "")
	addr := knownhosts.Normalize(s.addr())
	tests := []struct {
		desc     string
		modify   func(*Config)
		wantErr  error
		wantText []string
	}{
		{"encrypted key and passphrase", func(*Config) {}, nil, nil},
		{"pinned fingerprint", func(c *Config) {
			c.KnownHosts = ""
			c.HostKeyFingerprint = s.hostKey.fingerprint()
		}, nil, nil},
		{"unknown key", func(c *Config) { c.PrivateKey = crmsync.Secret(other.pem) }, storage.ErrAuth, nil},
		{"password, which the server refuses", func(c *Config) {
			c.PrivateKey, c.Passphrase = "", ""
			c.Password = testPassword
		}, storage.ErrAuth, nil},
		{"pinned fingerprint of another key", func(c *Config) {
			c.KnownHosts = ""
			c.HostKeyFingerprint = other.fingerprint()
		}, storage.ErrHostKey, []string{"expected " + other.fingerprint(), "presented ssh-ed25519 " + s.hostKey.fingerprint(), "host_key_fingerprint"}},
		{"known_hosts with another key", func(c *Config) {
			c.KnownHosts = knownhosts.Line([]string{addr}, other.signer.PublicKey())
		}, storage.ErrHostKey, []string{"expected ssh-ed25519 " + other.fingerprint(), "presented ssh-ed25519 " + s.hostKey.fingerprint(), s.knownHosts()}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			dir := t.TempDir()
			cfg := s.targetConfig(dir)
			tt.modify(&cfg)
			log, logged := testLog()
			tg := newTarget(t, cfg, log)
			_, err := tg.Put(t.Context(), "ujet-metadata/call-1.json", strings.NewReader("{}"), storage.PutOptions{Size: 2})
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.FileExists(t, filepath.Join(dir, "ujet-metadata", "call-1.json"))
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.False(t, Retryable(err))
			for _, want := range tt.wantText {
				assert.Contains(t, err.Error(), want)
			}
			assertNoSecret(t, cfg, err.Error()+logged.String())
			assert.Empty(t, dirEntries(t, dir), "nothing may be written")
		})
	}
}

// The server dies halfway through a large upload: Put fails with a
// retryable error and leaves nothing under the name; once the server is
// back, the same Target reconnects, the retry stores the whole file, and
// the temporary file of the failed attempt is gone.
func TestOpenSSHKilledDuringUpload(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	tg := newTarget(t, s.targetConfig(dir), nil)
	ctx := t.Context()
	const size = 64 << 20
	name := "ujet-voice-recordings/call-103646.wav"
	final := filepath.Join(dir, "ujet-voice-recordings", "call-103646.wav")

	_, err := tg.Put(ctx, "ujet-metadata/call-103646.json", strings.NewReader("{}"), storage.PutOptions{Size: 2})
	require.NoError(t, err)

	r := &hook{r: generator(7, size), after: size / 2, fn: s.kill}
	_, err = tg.Put(ctx, name, r, storage.PutOptions{Size: size})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrConnection)
	assert.True(t, Retryable(err), "%v", err)
	assert.NoFileExists(t, final, "nothing may appear under the final name")

	s.start()
	obj, err := tg.Put(ctx, name, generator(7, size), storage.PutOptions{Size: size})
	require.NoError(t, err)
	want := generatorSum(t, 7, size)
	assert.Equal(t, want, obj.SHA256)
	assert.EqualValues(t, size, obj.Size)
	assert.Equal(t, want, fileSum(t, final))
	// The failed attempt's temporary file is removed on reconnecting.
	assert.Eventually(t, func() bool {
		entries := dirEntries(t, filepath.Dir(final))
		return len(entries) == 1 && entries[0] == "call-103646.wav"
	}, 5*time.Second, 20*time.Millisecond, "left: %v", dirEntries(t, filepath.Dir(final)))
}

// After the server restarts, the next calls work on the same Target.
func TestOpenSSHReconnect(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	tg := newTarget(t, s.targetConfig(dir), nil)
	ctx := t.Context()
	_, err := tg.Put(ctx, "a.txt", strings.NewReader("a"), storage.PutOptions{Size: 1})
	require.NoError(t, err)

	for range 2 {
		s.kill()
		s.start()
		obj, err := tg.Stat(ctx, "a.txt")
		require.NoError(t, err)
		assert.EqualValues(t, 1, obj.Size)
	}
	s.kill()
	s.start()
	_, err = tg.Put(ctx, "b.txt", strings.NewReader("b"), storage.PutOptions{Size: 1})
	require.NoError(t, err)
	names, err := tg.List(ctx, "")
	require.NoError(t, err)
	assert.Len(t, names, 2)

	// While the server is down, calls fail fast and say so.
	s.kill()
	_, err = tg.Stat(ctx, "a.txt")
	require.ErrorIs(t, err, ErrConnection)
	assert.True(t, Retryable(err))
	data, err := os.ReadFile(filepath.Join(dir, "b.txt"))
	require.NoError(t, err)
	assert.Equal(t, "b", string(data))
}

// With OpenSSH's larger packets too, an idle connection outlives
// IOTimeout (the watchdog's packet count stays in step).
func TestOpenSSHIdleConnectionStays(t *testing.T) {
	s := startSSHD(t)
	cfg := s.plainConfig(t.TempDir())
	cfg.IOTimeout = 600 * time.Millisecond
	log, logged := testLog()
	tg := newTarget(t, cfg, log)
	ctx := t.Context()
	_, err := tg.Put(ctx, "a.bin", generator(1, 3<<20+7), storage.PutOptions{Size: 3<<20 + 7})
	require.NoError(t, err)
	rc, err := tg.Open(ctx, "a.bin")
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.EqualValues(t, 3<<20+7, n)

	time.Sleep(4 * cfg.IOTimeout)
	_, err = tg.Stat(ctx, "a.bin")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(logged.String(), `"msg":"sftp: connected"`), "one connection all along:\n%s", logged)
	assert.NotContains(t, logged.String(), "connection lost")
}
