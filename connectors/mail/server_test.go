package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

// serverOptions shape a fakeServer.
type serverOptions struct {
	// security is SecuritySTARTTLS (the server offers STARTTLS), SecurityTLS
	// (implicit TLS) or SecurityNone (plain text, no STARTTLS offered).
	security string
	// username and password, when set, make AUTH PLAIN required.
	username, password string
	// echoPassword puts the password a client tried in the failure reply.
	echoPassword bool
	// Replies to MAIL, RCPT and DATA; nil accepts.
	mailReply, rcptReply, dataReply *smtp.SMTPError
	// blockData, when non-nil, is signalled once DATA has been read and
	// DATA then waits until the test ends.
	blockData chan<- struct{}
}

// fakeServer is a real SMTP server on a loopback port that records what
// it is sent.
type fakeServer struct {
	host string
	port int
	opts serverOptions
	done chan struct{}

	mu       sync.Mutex
	sessions int
	mails    int
	auths    []string // usernames of AUTH attempts
	messages []received
}

// received is one message the server accepted.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

func startServer(t testing.TB, opts serverOptions) *fakeServer {
	t.Helper()
	fs := &fakeServer{host: "127.0.0.1", opts: opts, done: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(fs.newSession))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	switch opts.security {
	case SecuritySTARTTLS:
		srv.TLSConfig = serverTLSConfig(t)
	case SecurityTLS:
		l = tls.NewListener(l, serverTLSConfig(t))
	case SecurityNone:
		srv.AllowInsecureAuth = true // loopback only, like the client
	default:
		t.Fatalf("unknown security %q", opts.security)
	}
	fs.port = l.Addr().(*net.TCPAddr).Port

	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		close(fs.done)
		_ = srv.Close()
	})
	return fs
}

// config is a client config for this server; the certificate is
// self-signed, so it is not verified.
func (fs *fakeServer) config() SMTP {
	cfg := SMTP{
		Host:               fs.host,
		Port:               fs.port,
		Security:           fs.opts.security,
		From:               "crmsync <no-reply@crmsync.example>",
		Timeout:            5 * time.Second,
		InsecureSkipVerify: true,
	}
	if fs.opts.username != "" {
		cfg.Username = fs.opts.username
		cfg.Password = crmsync.Secret(fs.opts.password)
	}
	return cfg
}

func (fs *fakeServer) Sessions() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.sessions
}

func (fs *fakeServer) Mails() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.mails
}

func (fs *fakeServer) Auths() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.auths...)
}

func (fs *fakeServer) Messages() []received {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]received(nil), fs.messages...)
}

func (fs *fakeServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	fs.mu.Lock()
	fs.sessions++
	fs.mu.Unlock()
	return &session{srv: fs, conn: c}, nil
}

type session struct {
	srv  *fakeServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string {
	if s.srv.opts.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		s.srv.mu.Lock()
		s.srv.auths = append(s.srv.auths, username)
		s.srv.mu.Unlock()
		if username == s.srv.opts.username && password == s.srv.opts.password {
			s.user = username
			return nil
		}
		if s.srv.opts.echoPassword {
			return &smtp.SMTPError{
				Code:         535,
				EnhancedCode: smtp.EnhancedCode{5, 7, 8},
				Message:      "bad credentials " + username + ":" + password,
			}
		}
		return smtp.ErrAuthFailed
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.srv.mu.Lock()
	s.srv.mails++
	s.srv.mu.Unlock()
	if s.srv.opts.username != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if r := s.srv.opts.mailReply; r != nil {
		return r
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if r := s.srv.opts.rcptReply; r != nil {
		return r
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ch := s.srv.opts.blockData; ch != nil {
		ch <- struct{}{}
		<-s.srv.done
		return nil
	}
	if r := s.srv.opts.dataReply; r != nil {
		return r
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.messages = append(s.srv.messages, received{
		From: s.from, To: s.to, Data: data, TLS: isTLS, User: s.user,
	})
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset() {
	s.from, s.to = "", nil
}

func (s *session) Logout() error { return nil }

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

func serverTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := testCert()
	require.NoError(t, err)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// parsedMessage is a received message taken apart the way a mail client
// would: headers decoded, body and attachments with their transfer
// encoding undone.
type parsedMessage struct {
	Header      netmail.Header
	Subject     string
	BodyType    string // media type of the body part
	BodyCharset string
	Body        string
	Attachments []attachment
}

type attachment struct {
	Name        string
	ContentType string
	Charset     string
	Disposition string
	Data        []byte
}

func parseMessage(t testing.TB, raw []byte) parsedMessage {
	t.Helper()
	m, err := netmail.ReadMessage(strings.NewReader(string(raw)))
	require.NoError(t, err)
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	p := parsedMessage{Header: m.Header, Subject: subject}

	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	require.NoError(t, err)
	if !strings.HasPrefix(mediaType, "multipart/") {
		p.BodyType, p.BodyCharset = mediaType, params["charset"]
		p.Body = textBody(decodeBody(t, m.Header.Get("Content-Transfer-Encoding"), m.Body))
		return p
	}
	require.Equal(t, "multipart/mixed", mediaType)
	mr := multipart.NewReader(m.Body, params["boundary"])
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		// NextPart undoes quoted-printable itself and drops the header.
		data := decodeBody(t, part.Header.Get("Content-Transfer-Encoding"), part)
		partType, partParams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		require.NoError(t, err)
		disposition, _, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if i == 0 {
			require.NotEqual(t, "attachment", disposition, "the first part is the body")
			p.BodyType, p.BodyCharset, p.Body = partType, partParams["charset"], textBody(data)
			continue
		}
		p.Attachments = append(p.Attachments, attachment{
			Name:        part.FileName(),
			ContentType: partType,
			Charset:     partParams["charset"],
			Disposition: disposition,
			Data:        data,
		})
	}
	return p
}

// textBody undoes the CRLF line ends that text takes in transit (RFC 2046
// section 4.1.1), as a mail client would.
func textBody(data []byte) string {
	return strings.ReplaceAll(string(data), "\r\n", "\n")
}

func decodeBody(t testing.TB, encoding string, r io.Reader) []byte {
	t.Helper()
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "", "7bit", "8bit":
	default:
		t.Fatalf("unexpected transfer encoding %q", encoding)
	}
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	return data
}
