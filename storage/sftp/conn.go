package sftp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/crmsync/crmsync/storage"
)

// openSSHMaxWrite is the largest write OpenSSH's sftp-server takes: its
// messages are limited to 256 KiB, and it advertises limits@openssh.com
// with a write length 1 KiB below that. Larger requests mean fewer round
// trips and less per-request work on both ends.
const openSSHMaxWrite = 256*1024 - 1024

// conn is one SSH connection and its SFTP session, shared by every
// operation until it breaks.
type conn struct {
	ssh      *ssh.Client
	sftp     *sftp.Client
	root     string // FolderPath made absolute by the server
	hardlink bool   // the server does hardlink@openssh.com
	progress *progress

	done      chan struct{} // closed by close, once the connection is gone
	closeOnce sync.Once
}

func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// close tears the connection down and reports whether this call did it.
// The SSH connection goes first: that closes the socket and so wakes
// every request still waiting on it.
func (c *conn) close() (first bool) {
	c.closeOnce.Do(func() {
		first = true
		c.ssh.Close()
		c.sftp.Close()
		close(c.done)
	})
	return first
}

// path is name below the root.
func (c *conn) path(name string) string { return path.Join(c.root, name) }

// dialCall is one connection attempt that every caller arriving while it
// runs waits for, so a dead server costs each of them one timeout, not
// one per caller queued before them.
type dialCall struct {
	done chan struct{}
	c    *conn
	err  error
}

// conn returns the shared connection, connecting first if there is none
// or it broke.
func (t *Target) conn(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errClosed
	}
	if t.cur != nil && t.cur.alive() {
		c := t.cur
		t.mu.Unlock()
		return c, nil
	}
	t.cur = nil
	d := t.dialing
	if d == nil {
		d = &dialCall{done: make(chan struct{})}
		t.dialing = d
		t.wg.Add(1)
		go t.dialAsync(d)
	}
	t.mu.Unlock()

	select {
	case <-d.done:
		return d.c, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialAsync connects on behalf of whoever waits on d. It is bounded by
// DialTimeout+IOTimeout (and Close), not by any caller's context: a
// caller giving up must not fail the others.
func (t *Target) dialAsync(d *dialCall) {
	defer t.wg.Done()
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout+t.cfg.IOTimeout)
	c, err := t.dial(ctx)
	cancel()

	t.mu.Lock()
	t.dialing = nil
	if err == nil {
		if t.closed {
			c.close()
			c, err = nil, errClosed
		} else {
			t.cur = c
		}
	}
	d.c, d.err = c, err
	t.mu.Unlock()
	close(d.done)

	if err == nil {
		t.wg.Add(3)
		go t.watch(c)
		go t.keepAlive(c)
		go t.watchdog(c)
		t.removeOrphans(c)
	}
}

// dial connects, trying the server's other host keys when a pinned
// fingerprint does not match the first one it presents: a server
// usually holds several (ECDSA, Ed25519, RSA) and offers the one the
// client prefers, which need not be the one that was pinned.
func (t *Target) dial(ctx context.Context) (*conn, error) {
	algos := t.hostKeys.algorithms()
	if len(algos) == 0 {
		algos = plainHostKeyAlgorithms()
	}
	var mismatch *hostKeyError
	for {
		c, err := t.dialOnce(ctx, algos)
		var hke *hostKeyError
		switch {
		case err == nil:
			return c, nil
		case mismatch != nil && !errors.As(err, &hke):
			// The server has no more key types to offer, or the retry
			// failed otherwise: the mismatch is what to report.
			return nil, mismatch
		case t.hostKeys.fingerprint == "" || !errors.As(err, &hke):
			return nil, err
		}
		if mismatch == nil {
			mismatch = hke
		} else {
			mismatch.got = append(mismatch.got, hke.got...)
			mismatch.fix = "if one of these keys is the server's (check with its administrator), set host_key_fingerprint to its SHA256:..."
		}
		presented := strings.Fields(hke.got[0])[0]
		algos = slices.DeleteFunc(algos, func(a string) bool {
			return a == presented || slices.Contains(algorithmsFor(presented), a)
		})
		if len(algos) == 0 {
			return nil, mismatch
		}
	}
}

func (t *Target) dialOnce(ctx context.Context, hostKeyAlgos []string) (*conn, error) {
	addr := t.cfg.addr()
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return nil, fmt.Errorf("sftp: connect to %s: %w", addr, err)
		}
		return nil, fmt.Errorf("sftp: connect to %s: %w (%w)", addr, ErrConnection, err)
	}
	// Closing the socket is the only way to interrupt the handshake.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()

	config := &ssh.ClientConfig{
		User:              t.cfg.User,
		Auth:              t.auth,
		HostKeyCallback:   t.hostKeys.check(t.log),
		HostKeyAlgorithms: hostKeyAlgos,
	}
	sc, chans, reqs, err := ssh.NewClientConn(&deadlineConn{Conn: nc, timeout: t.cfg.IOTimeout}, addr, config)
	if err != nil {
		nc.Close()
		var hke *hostKeyError
		switch {
		case errors.As(err, &hke):
			return nil, hke
		case ctx.Err() != nil:
			return nil, fmt.Errorf("sftp: connect to %s: %w (%w)", addr, ErrConnection, ctx.Err())
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("sftp: log in to %s as %q: %w (%v)", addr, t.cfg.User, storage.ErrAuth, err)
		}
		return nil, fmt.Errorf("sftp: connect to %s: %w (%w)", addr, ErrConnection, err)
	}
	client := ssh.NewClient(sc, chans, reqs)

	prog := &progress{}
	sc2, err := startSFTP(client, prog,
		sftp.MaxConcurrentRequestsPerFile(t.cfg.Concurrency),
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
	)
	if err != nil {
		client.Close()
		if ctx.Err() != nil || isConnError(err) {
			return nil, fmt.Errorf("sftp: start the sftp subsystem on %s: %w (%w)", addr, ErrConnection, err)
		}
		return nil, fmt.Errorf("sftp: start the sftp subsystem on %s: %w", addr, err)
	}
	c := &conn{ssh: client, sftp: sc2, progress: prog, done: make(chan struct{})}
	if _, ok := sc2.HasExtension("limits@openssh.com"); ok {
		// Applied before the client is shared with anyone.
		if err := sftp.MaxPacketUnchecked(openSSHMaxWrite)(sc2); err != nil {
			c.close()
			return nil, err
		}
	}
	_, c.hardlink = sc2.HasExtension("hardlink@openssh.com")

	if err := c.resolveRoot(t.cfg.FolderPath); err != nil {
		c.close()
		if ctx.Err() != nil || isConnError(err) {
			return nil, fmt.Errorf("sftp: folder_path %q on %s: %w (%w)", t.cfg.FolderPath, addr, ErrConnection, err)
		}
		return nil, err
	}
	if !stop() {
		c.close()
		return nil, fmt.Errorf("sftp: connect to %s: %w (%w)", addr, ErrConnection, ctx.Err())
	}
	t.log.Debug("sftp: connected", "addr", addr, "user", t.cfg.User, "root", c.root, "hardlink", c.hardlink)
	return c, nil
}

// resolveRoot makes the folder path absolute and checks it is a folder.
// It is never created: a missing folder is a configuration mistake, not
// something to paper over.
func (c *conn) resolveRoot(folder string) error {
	if folder == "" {
		folder = "."
	}
	abs, err := c.sftp.RealPath(folder)
	if err == nil {
		var fi os.FileInfo
		if fi, err = c.sftp.Stat(abs); err == nil && !fi.IsDir() {
			return fmt.Errorf("sftp: folder_path %q is a file, not a folder: %w", folder, storage.ErrNoRoot)
		}
	}
	switch {
	case err == nil:
		c.root = abs
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("sftp: folder_path %q: %w", folder, storage.ErrNoRoot)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("sftp: folder_path %q: %w", folder, storage.ErrPermission)
	}
	return fmt.Errorf("sftp: folder_path %q: %w", folder, err)
}

// watch marks the connection gone as soon as the SSH layer sees it close.
func (t *Target) watch(c *conn) {
	defer t.wg.Done()
	err := c.ssh.Wait()
	t.drop(c, err)
}

// keepAlive asks the server for a reply every KeepAlive. Besides finding
// dead connections, the replies keep an idle connection's reads within
// IOTimeout.
func (t *Target) keepAlive(c *conn) {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		if _, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			t.drop(c, fmt.Errorf("keepalive: %w", err))
			return
		}
	}
}

// watchdog drops the connection when SFTP requests go unanswered for
// IOTimeout. The socket deadlines do not catch that case: a server whose
// SSH side still answers keepalives while its SFTP side hangs (on a dead
// disk, say) keeps the socket busy.
func (t *Target) watchdog(c *conn) {
	defer t.wg.Done()
	tick := time.NewTicker(max(t.cfg.IOTimeout/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		if waited := c.progress.stalled(); waited > t.cfg.IOTimeout {
			t.drop(c, fmt.Errorf("the sftp server has not answered for %s", waited.Round(time.Millisecond)))
			return
		}
	}
}

// drop closes a broken connection so that the next call reconnects.
func (t *Target) drop(c *conn, reason error) {
	t.mu.Lock()
	if t.cur == c {
		t.cur = nil
	}
	closed := t.closed
	t.mu.Unlock()
	if c.close() && !closed {
		t.log.Info("sftp: connection lost; the next call reconnects", "addr", t.cfg.addr(), "err", reason)
	}
}

// isConnError reports errors that mean the connection (not the request)
// failed.
func isConnError(err error) bool {
	var (
		ne net.Error
		se *sftp.StatusError
	)
	switch {
	case err == nil:
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, sftp.ErrSSHFxConnectionLost), errors.Is(err, sftp.ErrSSHFxNoConnection),
		errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN),
		errors.Is(err, syscall.EHOSTDOWN):
		return true
	case errors.As(err, &se):
		code := se.FxCode()
		return code == sftp.ErrSSHFxConnectionLost || code == sftp.ErrSSHFxNoConnection
	case errors.As(err, &ne):
		return ne.Timeout()
	}
	return false
}

// deadlineConn gives every read and write IOTimeout to make progress, so
// a server that stops answering (or a network that drops everything)
// fails the connection instead of hanging whoever waits on it. Idle
// connections stay up because the keepalive replies arrive more often.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// Make sure the writers stop too.
		c.Conn.Close()
	}
	return n, err
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.Conn.Close()
	}
	return n, err
}

// startSFTP starts the sftp subsystem as sftp.NewClient does, with the
// session's streams counted by prog.
func startSFTP(client *ssh.Client, prog *progress, opts ...sftp.ClientOption) (*sftp.Client, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	w, err := s.StdinPipe()
	if err != nil {
		return nil, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := s.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		return nil, err
	}
	// Unread stderr would hold the channel's window.
	go io.Copy(io.Discard, stderr)
	return sftp.NewClientPipe(&countedReader{r: r, p: prog}, &countedWriter{w: w, p: prog}, opts...)
}

// progress counts the SFTP packets sent and received (each request gets
// exactly one response) and when the server last sent anything.
type progress struct {
	mu       sync.Mutex
	sent     int64
	received int64
	last     time.Time // last byte received, or when requests became outstanding
	out      framer
	in       framer
}

// stalled returns how long requests have been waiting without a byte
// from the server, or 0 when none is waiting.
func (p *progress) stalled() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent == p.received {
		return 0
	}
	return time.Since(p.last)
}

type countedWriter struct {
	w io.WriteCloser
	p *progress
}

func (w *countedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	if w.p.sent == w.p.received {
		w.p.last = time.Now() // the clock starts with the first outstanding request
	}
	w.p.sent += w.p.out.packets(b)
	w.p.mu.Unlock()
	return w.w.Write(b)
}

func (w *countedWriter) Close() error { return w.w.Close() }

type countedReader struct {
	r io.Reader
	p *progress
}

func (r *countedReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.p.mu.Lock()
		r.p.last = time.Now()
		r.p.received += r.p.in.packets(b[:n])
		r.p.mu.Unlock()
	}
	return n, err
}

// framer follows SFTP's framing (a 4-byte length, then that many bytes)
// across writes or reads of any size.
type framer struct {
	need int64   // bytes left in the current packet
	hdr  [4]byte // the length being read
	hdrN int
}

// packets consumes b and returns how many packets started in it.
func (f *framer) packets(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		if f.need > 0 {
			skip := min(f.need, int64(len(b)))
			f.need -= skip
			b = b[skip:]
			continue
		}
		c := copy(f.hdr[f.hdrN:], b)
		f.hdrN += c
		b = b[c:]
		if f.hdrN == len(f.hdr) {
			f.need = int64(binary.BigEndian.Uint32(f.hdr[:]))
			f.hdrN = 0
			n++
		}
	}
	return n
}
