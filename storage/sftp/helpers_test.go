package sftp

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/logtest"
)

const (
	testUser       = "crm"
	testPassword   = "s3cret-pa55word"
	testPassphrase = "correct-horse-battery"
)

// testKey is an Ed25519 key in OpenSSH PEM form, encrypted with
// passphrase when it is not empty.
type testKey struct {
	signer ssh.Signer
	pem    []byte
}

func newTestKey(t testing.TB, passphrase string) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "crmsync test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "crmsync test", []byte(passphrase))
	}
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return testKey{signer: signer, pem: pem.EncodeToMemory(block)}
}

var (
	encryptedKeyOnce sync.Once
	encryptedKey     testKey
)

// sharedEncryptedKey is one key encrypted with testPassphrase for all
// tests: OpenSSH's bcrypt KDF makes each encryption and decryption slow,
// very slow under the race detector.
func sharedEncryptedKey(t testing.TB) testKey {
	encryptedKeyOnce.Do(func() { encryptedKey = newTestKey(t, testPassphrase) })
	return encryptedKey
}

func (k testKey) fingerprint() string { return ssh.FingerprintSHA256(k.signer.PublicKey()) }

func (k testKey) authorizedKey() []byte { return ssh.MarshalAuthorizedKey(k.signer.PublicKey()) }

// memServer is pkg/sftp's server behind an in-process SSH server on a
// loopback port: password or key login, files below one folder.
type memServer struct {
	addr     string
	port     int
	root     string // the login directory
	hostKey  testKey
	userKey  testKey // encrypted with testPassphrase
	readOnly bool

	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	hostKeys []ssh.Signer // presented, in this order of preference

	// sftpHung makes the SFTP servers stop reading requests, while SSH
	// goes on answering keepalives: a server stuck on a dead disk.
	sftpHung atomic.Bool
	quit     chan struct{}
}

// hangableChannel is an SSH channel whose reads stop while the server's
// sftpHung is set.
type hangableChannel struct {
	ssh.Channel
	s *memServer
}

func (c hangableChannel) Read(p []byte) (int, error) {
	if c.s.sftpHung.Load() {
		<-c.s.quit
		return 0, io.EOF
	}
	return c.Channel.Read(p)
}

func startMemServer(t testing.TB, readOnly bool) *memServer {
	t.Helper()
	s := &memServer{
		root:     t.TempDir(),
		hostKey:  newTestKey(t, ""),
		userKey:  sharedEncryptedKey(t),
		readOnly: readOnly,
		conns:    map[net.Conn]bool{},
		quit:     make(chan struct{}),
	}
	s.hostKeys = []ssh.Signer{s.hostKey.signer}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.ln = ln
	s.addr = ln.Addr().String()
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[nc] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(nc)
			}()
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// setHostKeys changes the keys the server presents from the next
// connection on.
func (s *memServer) setHostKeys(keys ...ssh.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostKeys = keys
}

// setUserKey changes the key the server accepts.
func (s *memServer) setUserKey(k testKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userKey = k
}

// setReadOnly makes the sessions opened from now on refuse writes.
func (s *memServer) setReadOnly(readOnly bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readOnly = readOnly
}

// dropConns closes every open connection, as a server restart would.
func (s *memServer) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nc := range s.conns {
		nc.Close()
	}
}

func (s *memServer) serverConfig() *ssh.ServerConfig {
	config := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == testUser && string(pw) == testPassword {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			want := s.userKey.signer.PublicKey()
			s.mu.Unlock()
			if c.User() == testUser && bytes.Equal(key.Marshal(), want.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.hostKeys {
		config.AddHostKey(k)
	}
	return config
}

func (s *memServer) serve(nc net.Conn) {
	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	_, chans, reqs, err := ssh.NewServerConn(nc, s.serverConfig())
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for req := range creqs {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				req.Reply(ok, nil)
				if !ok {
					continue
				}
				opts := []sftp.ServerOption{sftp.WithServerWorkingDirectory(s.root)}
				s.mu.Lock()
				readOnly := s.readOnly
				s.mu.Unlock()
				if readOnly {
					opts = append(opts, sftp.ReadOnly())
				}
				srv, err := sftp.NewServer(hangableChannel{Channel: ch, s: s}, opts...)
				if err != nil {
					ch.Close()
					return
				}
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					srv.Serve()
					srv.Close()
				}()
			}
		}()
	}
}

func (s *memServer) stop() {
	close(s.quit)
	s.ln.Close()
	s.mu.Lock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// config logs in with the password and pins the host key by fingerprint;
// the folder is a fresh one below the login directory.
func (s *memServer) config(t testing.TB) Config {
	t.Helper()
	dir, err := os.MkdirTemp(s.root, "target-")
	require.NoError(t, err)
	return Config{
		Host:               "127.0.0.1",
		Port:               s.port,
		User:               testUser,
		Password:           testPassword,
		FolderPath:         dir,
		HostKeyFingerprint: s.hostKey.fingerprint(),
		DialTimeout:        5 * time.Second,
		IOTimeout:          10 * time.Second,
	}
}

// sshd is OpenSSH's server run from the test on a loopback port, as the
// current user, with internal-sftp.
type sshd struct {
	t       testing.TB
	dir     string
	port    int
	user    string
	hostKey testKey
	userKey testKey // encrypted with testPassphrase
	plain   testKey // unencrypted, for OpenSSH's own sftp client
	config  string

	cmd  *exec.Cmd
	done chan struct{}
	log  *logtest.Buffer
}

// startSSHD starts sshd, or skips the test when it is not installed
// (fails instead under CI, which installs it).
func startSSHD(t testing.TB) *sshd {
	t.Helper()
	const bin = "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; CI must install openssh-server", bin)
		}
		t.Skipf("%s is missing; install it with `apt-get install openssh-server` to run the OpenSSH tests", bin)
	}
	u, err := user.Current()
	require.NoError(t, err)
	if u.Uid == "0" {
		// sshd refuses to start as root without its privilege separation
		// folder, which the system unit creates at boot.
		if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) {
			require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
		}
	}
	s := &sshd{
		t:       t,
		dir:     t.TempDir(),
		port:    freePort(t),
		user:    u.Username,
		hostKey: newTestKey(t, ""),
		userKey: sharedEncryptedKey(t),
		plain:   newTestKey(t, ""),
		log:     &logtest.Buffer{},
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(s.dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	hostKeyFile := write("host_ed25519", s.hostKey.pem)
	write("user_key", s.userKey.pem)
	write("plain_key", s.plain.pem)
	authorized := write("authorized_keys", append(s.userKey.authorizedKey(), s.plain.authorizedKey()...))
	write("known_hosts", []byte(s.knownHosts()+"\n"))
	s.config = write("sshd_config", fmt.Appendf(nil, `Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
Subsystem sftp internal-sftp
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 100
MaxSessions 100
LogLevel INFO
`, s.port, hostKeyFile, authorized, filepath.Join(s.dir, "sshd.pid")))
	s.start()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.log.String())
		}
	})
	return s
}

// start runs sshd and waits until it accepts connections.
func (s *sshd) start() {
	s.t.Helper()
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", s.config)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	require.NoError(s.t, cmd.Start())
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("sshd exited: %s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd does not listen on %s: %v\n%s", s.addr(), err, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills sshd and the processes serving its connections, as a crash
// or a reboot of the server would: each connection's sshd runs in its own
// session, so killing the process group is not enough.
func (s *sshd) kill() {
	if s.cmd == nil {
		return
	}
	pids := append(descendants(s.cmd.Process.Pid), s.cmd.Process.Pid)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-s.done
	s.cmd = nil
}

func (s *sshd) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *sshd) knownHosts() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, s.hostKey.signer.PublicKey())
}

// targetConfig logs in with the encrypted key and pins the host key with
// known_hosts; folder is the folder path.
func (s *sshd) targetConfig(folder string) Config {
	return Config{
		Host:        "127.0.0.1",
		Port:        s.port,
		User:        s.user,
		PrivateKey:  crmsync.Secret(s.userKey.pem),
		Passphrase:  testPassphrase,
		FolderPath:  folder,
		KnownHosts:  s.knownHosts(),
		DialTimeout: 5 * time.Second,
		IOTimeout:   10 * time.Second,
	}
}

// plainConfig is targetConfig with the unencrypted key, for tests that
// make many Targets.
func (s *sshd) plainConfig(folder string) Config {
	cfg := s.targetConfig(folder)
	cfg.PrivateKey, cfg.Passphrase = crmsync.Secret(s.plain.pem), ""
	return cfg
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// generator returns n pseudo-random bytes made from seed, without holding
// them in memory; the same seed gives the same bytes.
func generator(seed uint64, n int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	return io.LimitReader(mrand.NewChaCha8(key), n)
}

func generatorSum(t testing.TB, seed uint64, n int64) string {
	t.Helper()
	h := sha256.New()
	_, err := io.Copy(h, generator(seed, n))
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func fileSum(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, bufio.NewReader(f))
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// hook calls fn once, when at least after bytes have been read.
type hook struct {
	r     io.Reader
	after int64
	n     int64
	once  sync.Once
	fn    func()
}

func (h *hook) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	if h.n >= h.after {
		h.once.Do(h.fn)
	}
	return n, err
}

// dirEntries lists the names in dir on disk, hidden ones included.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
