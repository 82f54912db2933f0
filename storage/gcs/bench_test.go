package gcs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	crmstorage "github.com/crmsync/crmsync/storage"
)

const parallelExports = 200

// Benchmark200ParallelMetadataExports runs rounds of 200 concurrent
// uploads of a ~4 KB session metadata file to fake-gcs-server in process,
// each round under fresh names, and reports files/s and the peak resident
// set sampled every 20 ms.
//
//	put: Target.Put as configured by default (one request from memory,
//	  declared CRC32C, precondition, SHA-256 metadata).
//	put-chunked-256KiB: Target.Put forced onto the resumable path with
//	  the smallest chunk, the alternative for small files.
//	plain-writer: a bare NewWriter with the library's defaults, no
//	  precondition and no hashing of ours: the baseline.
//	plain-writer-chunk0: the same with ChunkSize 0.
func Benchmark200ParallelMetadataExports(b *testing.B) {
	body := metadataJSON(4 << 10)
	b.Run("put", func(b *testing.B) {
		srv := newServer(b)
		tg := newTarget(b, srv, Config{})
		benchRounds(b, srv, func(ctx context.Context, name string) error {
			_, err := tg.Put(ctx, name, bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body)), ContentType: "application/json"})
			return err
		})
	})
	b.Run("put-chunked-256KiB", func(b *testing.B) {
		srv := newServer(b)
		tg := newTarget(b, srv, Config{ChunkSize: minChunk})
		tg.memMax = -1
		benchRounds(b, srv, func(ctx context.Context, name string) error {
			_, err := tg.Put(ctx, name, bytes.NewReader(body), crmstorage.PutOptions{Size: int64(len(body)), ContentType: "application/json"})
			return err
		})
	})
	for _, chunk := range []int{-1, 0} {
		desc := "plain-writer"
		if chunk == 0 {
			desc += "-chunk0"
		}
		b.Run(desc, func(b *testing.B) {
			srv := newServer(b)
			client := srv.Client()
			defer client.Close()
			bucket := client.Bucket(testBucket)
			benchRounds(b, srv, func(ctx context.Context, name string) error {
				w := bucket.Object(name).NewWriter(ctx)
				if chunk >= 0 {
					w.ChunkSize = chunk
				}
				w.ContentType = "application/json"
				if _, err := w.Write(body); err != nil {
					w.Close()
					return err
				}
				return w.Close()
			})
		})
	}
}

// benchRounds runs b.N rounds of parallelExports concurrent uploads and
// reports files/s and peak RSS. The fake's copies of each round's objects
// are dropped between rounds, off the clock, so its memory stays flat.
func benchRounds(b *testing.B, srv *fakestorage.Server, upload func(ctx context.Context, name string) error) {
	b.Helper()
	ctx := context.Background()
	debug.FreeOSMemory()
	stop := sampleRSS(20 * time.Millisecond)
	names := make([]string, parallelExports)
	b.ResetTimer()
	for round := range b.N {
		for i := range names {
			names[i] = fmt.Sprintf("ujet-metadata/call-%d.json", round*parallelExports+i)
		}
		var wg sync.WaitGroup
		errs := make([]error, parallelExports)
		for i, name := range names {
			wg.Go(func() { errs[i] = upload(ctx, name) })
		}
		wg.Wait()
		b.StopTimer()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		for _, name := range names {
			if err := srv.Backend().DeleteObject(testBucket, name); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	peak := stop()
	b.ReportMetric(float64(b.N*parallelExports)/b.Elapsed().Seconds(), "files/s")
	b.ReportMetric(peak, "peak-RSS-MB")
}

// sampleRSS samples VmRSS every interval until the returned function is
// called, which returns the peak in MB.
func sampleRSS(interval time.Duration) (stop func() float64) {
	var peak atomic.Int64
	sample := func() {
		if v := vmRSS(); v > peak.Load() {
			peak.Store(v)
		}
	}
	sample()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() float64 {
		close(done)
		wg.Wait()
		sample()
		return float64(peak.Load()) / (1 << 20)
	}
}

// vmRSS is the process's resident set in bytes, from /proc/self/status.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
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

// metadataJSON is a session metadata document of about size bytes.
func metadataJSON(size int) []byte {
	doc := map[string]any{
		"call_id":      103646,
		"call_type":    "IVR",
		"status":       "finished",
		"lang":         "en",
		"queue":        map[string]any{"id": 12, "name": "Billing", "path": "Support > Billing"},
		"end_user":     map[string]any{"id": 777, "identifier": "cust-0042", "phone": "+15551234567"},
		"participants": []map[string]any{{"type": "agent", "id": 55, "name": "Ada"}, {"type": "end_user", "id": 777}},
		"times":        map[string]any{"created_at": "2025-05-01T10:00:00Z", "connected_at": "2025-05-01T10:00:12Z", "ended_at": "2025-05-01T10:07:40Z"},
		"files":        []map[string]any{{"kind": "call_recordings", "name": "ujet-voice-recordings/call-103646.mp3", "size": 2345678}},
	}
	var notes []string
	for {
		b, _ := json.Marshal(doc)
		if len(b) >= size {
			return b
		}
		notes = append(notes, fmt.Sprintf("transfer %d: Billing -> Retention, agent note %x", len(notes), len(b)))
		doc["notes"] = notes
	}
}
