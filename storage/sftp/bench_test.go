package sftp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/storage"
)

// BenchmarkPut200MB uploads a 200 MB file to sshd on loopback through
// Target.Put and through OpenSSH's own sftp client, and reports both
// rates and their ratio (crmsync/OpenSSH). Each upload includes
// connecting and logging in; the two alternate which goes first.
func BenchmarkPut200MB(b *testing.B) {
	if _, err := exec.LookPath("sftp"); err != nil {
		b.Skip("OpenSSH's sftp client is not installed (apt-get install openssh-client)")
	}
	s := startSSHD(b)
	const size = 200 << 20
	src := filepath.Join(b.TempDir(), "recording.wav")
	writeFile(b, src, generator(200, size))
	dest := b.TempDir()
	cfg := s.targetConfig(dest)

	var ours, theirs time.Duration
	for i := 0; b.Loop(); i++ {
		runOurs := func() {
			tg, err := New(cfg, nil) // decrypting the key is not part of the upload
			require.NoError(b, err)
			f, err := os.Open(src)
			require.NoError(b, err)
			name := fmt.Sprintf("ours-%d.wav", i)
			start := time.Now()
			obj, err := tg.Put(b.Context(), name, f, storage.PutOptions{Size: size})
			ours += time.Since(start)
			require.NoError(b, err)
			require.EqualValues(b, size, obj.Size)
			f.Close()
			tg.Close()
			require.NoError(b, os.Remove(filepath.Join(dest, name)))
		}
		runTheirs := func() {
			name := fmt.Sprintf("theirs-%d.wav", i)
			batch := filepath.Join(s.dir, "batch")
			require.NoError(b, os.WriteFile(batch, fmt.Appendf(nil, "put %s %s\n", src, filepath.Join(dest, name)), 0o600))
			cmd := exec.Command("sftp", "-F", "/dev/null", "-b", batch,
				"-i", filepath.Join(s.dir, "plain_key"),
				"-o", "IdentitiesOnly=yes",
				"-o", "StrictHostKeyChecking=yes",
				"-o", "UserKnownHostsFile="+filepath.Join(s.dir, "known_hosts"),
				"-P", strconv.Itoa(s.port),
				s.user+"@127.0.0.1")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			theirs += time.Since(start)
			require.NoError(b, err, "%s", out)
			fi, err := os.Stat(filepath.Join(dest, name))
			require.NoError(b, err)
			require.EqualValues(b, size, fi.Size())
			require.NoError(b, os.Remove(filepath.Join(dest, name)))
		}
		if i%2 == 0 {
			runOurs()
			runTheirs()
		} else {
			runTheirs()
			runOurs()
		}
	}
	mb := float64(size) / 1e6 * float64(b.N)
	b.ReportMetric(mb/ours.Seconds(), "MB/s-crmsync")
	b.ReportMetric(mb/theirs.Seconds(), "MB/s-openssh")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
}

// BenchmarkPut1GBRSS streams 1 GB from a generator through Put and
// reports how far the process's resident memory grew above where it
// started (VmRSS, sampled every 50 ms).
func BenchmarkPut1GBRSS(b *testing.B) {
	s := startSSHD(b)
	const size = 1 << 30
	dest := b.TempDir()
	tg, err := New(s.targetConfig(dest), nil)
	require.NoError(b, err)
	defer tg.Close()
	// Connect first: the connection's own buffers are not per upload.
	_, err = tg.List(b.Context(), "")
	require.NoError(b, err)

	runtime.GC()
	debug.FreeOSMemory()
	base := vmRSS(b)
	var mu sync.Mutex
	peak := base
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if rss := vmRSS(b); rss > 0 {
				mu.Lock()
				peak = max(peak, rss)
				mu.Unlock()
			}
		}
	})

	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("call-%d.wav", i)
		obj, err := tg.Put(b.Context(), name, generator(uint64(i), size), storage.PutOptions{Size: size})
		require.NoError(b, err)
		require.EqualValues(b, size, obj.Size)
		b.StopTimer()
		require.NoError(b, os.Remove(filepath.Join(dest, name)))
		b.StartTimer()
	}
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(peak-base)/(1<<20), "MiB-rss-growth")
}

// vmRSS reads the process's resident set size in bytes.
func vmRSS(tb testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

func writeFile(tb testing.TB, path string, r io.Reader) {
	tb.Helper()
	f, err := os.Create(path)
	require.NoError(tb, err)
	_, err = io.Copy(f, r)
	require.NoError(tb, err)
	require.NoError(tb, f.Close())
}
