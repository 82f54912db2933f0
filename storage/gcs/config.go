package gcs

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/crmsync/crmsync"
)

// DefaultChunkSize is the resumable upload chunk used when Config.ChunkSize
// is 0.
const DefaultChunkSize = 8 << 20

// minChunk is the granularity of resumable upload chunks: the client rounds
// every chunk size up to a multiple of it.
const minChunk = 256 << 10

// Config is the Cloud Storage target as the contact center's "Cloud Storage"
// setup describes it: a bucket, the credentials that reach it and an
// optional folder path inside it.
type Config struct {
	// Bucket is the bucket's name, without gs://. Required.
	Bucket string `yaml:"bucket"`
	// FolderPath is the folder inside the bucket that holds the vendor's
	// folders; leading and trailing slashes are ignored. Empty means the
	// bucket's root.
	FolderPath string `yaml:"folder_path"`

	// Credentials: at most one kind. None of them means application
	// default credentials (GOOGLE_APPLICATION_CREDENTIALS, the metadata
	// server of GCE, GKE or Cloud Run, gcloud's login).

	// CredentialsJSON is a service account key file's content.
	CredentialsJSON crmsync.Secret `yaml:"credentials_json"`
	// CredentialsFile is the path of a service account key file, read by
	// New.
	CredentialsFile string `yaml:"credentials_file"`
	// ClientID, ClientSecret and RefreshToken are an OAuth client and the
	// refresh token its linking step (the spec's "Link & Save") obtained;
	// all three are required together.
	ClientID     string         `yaml:"client_id"`
	ClientSecret crmsync.Secret `yaml:"client_secret"`
	RefreshToken crmsync.Secret `yaml:"refresh_token"`

	// Endpoint overrides the JSON API's URL, as in
	// "https://storage.example.com" or an emulator's "http://127.0.0.1:4443";
	// "/storage/v1/" is added when the URL has no path. A plain http
	// endpoint is taken to be an emulator and gets no credentials. Empty
	// means Google's endpoint, or STORAGE_EMULATOR_HOST when that is set
	// (also without credentials).
	Endpoint string `yaml:"endpoint"`

	// ChunkSize is the resumable upload chunk in bytes, rounded up to a
	// multiple of 256 KiB; 0 means DefaultChunkSize. It bounds each
	// upload's memory: a file whose announced size is at most ChunkSize
	// (or of unknown size but at most 256 KiB) is sent in one request from
	// a buffer of its own size, any other in chunks of ChunkSize.
	ChunkSize int `yaml:"chunk_size"`
}

// Validate checks the configuration without touching the network or the
// file system. Every problem found is reported, each naming its field;
// secrets are never quoted.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, crmsync.Errorf(crmsync.EINVALID, field, format, args...))
	}

	if err := checkBucket(c.Bucket); err != nil {
		bad("bucket", "%s", err)
	}
	if err := checkFolderPath(c.FolderPath); err != nil {
		bad("folder_path", "%s", err)
	}

	var kinds []string
	if !c.CredentialsJSON.IsZero() {
		kinds = append(kinds, "credentials_json")
		if err := checkServiceAccount([]byte(c.CredentialsJSON.Reveal())); err != nil {
			bad("credentials_json", "%s", err)
		}
	}
	if c.CredentialsFile != "" {
		kinds = append(kinds, "credentials_file")
	}
	if c.ClientID != "" || !c.ClientSecret.IsZero() || !c.RefreshToken.IsZero() {
		kinds = append(kinds, "client_id")
		if c.ClientID == "" {
			bad("client_id", "required with client_secret and refresh_token")
		}
		if c.ClientSecret.IsZero() {
			bad("client_secret", "required with client_id")
		}
		if c.RefreshToken.IsZero() {
			bad("refresh_token", "required with client_id (the token the OAuth linking step returns)")
		}
	}
	if len(kinds) > 1 {
		bad(kinds[1], "set only one kind of credentials, %s is set too", kinds[0])
	}

	if c.Endpoint != "" {
		u, err := parseEndpoint(c.Endpoint)
		switch {
		case err != nil:
			bad("endpoint", "%s", err)
		case u.Scheme == "http" && len(kinds) > 0:
			bad("endpoint", "plain http is for emulators and sends no credentials; use https or remove %s", kinds[0])
		}
	}
	if c.ChunkSize < 0 {
		bad("chunk_size", "must not be negative (0 means %d)", DefaultChunkSize)
	}
	return errors.Join(errs...)
}

// credentialsKind names the kind of credentials configured, for logs.
func (c *Config) credentialsKind() string {
	switch {
	case !c.CredentialsJSON.IsZero():
		return "credentials_json"
	case c.CredentialsFile != "":
		return "credentials_file"
	case c.ClientID != "":
		return "oauth_client"
	}
	return "application_default"
}

// LogValue logs the configuration without its secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("bucket", c.Bucket),
		slog.String("folder_path", c.FolderPath),
		slog.String("credentials", c.credentialsKind()),
		slog.String("credentials_file", c.CredentialsFile),
		slog.String("client_id", c.ClientID),
		slog.String("endpoint", c.Endpoint),
		slog.Int("chunk_size", c.ChunkSize),
	)
}

// chunk is the effective chunk size.
func (c *Config) chunk() int {
	n := c.ChunkSize
	if n == 0 {
		n = DefaultChunkSize
	}
	if r := n % minChunk; r != 0 {
		n += minChunk - r
	}
	return n
}

// root is the folder path as an object name prefix without slashes.
func (c *Config) root() string { return strings.Trim(c.FolderPath, "/") }

// checkBucket applies Cloud Storage's bucket naming rules, so a typo is
// reported by name rather than as a 400 from the first upload.
func checkBucket(name string) error {
	if name == "" {
		return errors.New("required")
	}
	if strings.Contains(name, "://") || strings.Contains(name, "/") {
		return fmt.Errorf("%q: give the bucket's name only, without gs:// or a path (the path goes in folder_path)", name)
	}
	if len(name) < 3 || len(name) > 222 {
		return fmt.Errorf("%q: must be 3 to 63 characters (222 with dots)", name)
	}
	for _, part := range strings.Split(name, ".") {
		if len(part) == 0 || len(part) > 63 {
			return fmt.Errorf("%q: each dot-separated part must be 1 to 63 characters", name)
		}
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("%q: only lowercase letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return fmt.Errorf("%q: must start and end with a letter or digit", name)
	}
	if strings.HasPrefix(name, "goog") || strings.Contains(name, "google") {
		return fmt.Errorf("%q: must not start with goog or contain google", name)
	}
	return nil
}

func alnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }

// checkFolderPath keeps the prefix a plain folder path: object names are
// taken literally by Cloud Storage, so "." and ".." would become folders
// named so rather than move anywhere.
func checkFolderPath(p string) error {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	if !utf8.ValidString(p) {
		return errors.New("not valid UTF-8")
	}
	if len(p) > 512 {
		return errors.New("longer than 512 bytes (object names are limited to 1024)")
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%q: empty folder name (//)", p)
		case ".", "..":
			return fmt.Errorf("%q: %q is not a folder name", p, seg)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q: control characters are not allowed", p)
		}
	}
	return nil
}

// checkServiceAccount makes sure key is a service account key, the one kind
// of credential file accepted: other kinds can point the client at
// arbitrary token URLs. Nothing of the key is quoted.
func checkServiceAccount(key []byte) error {
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(key, &f); err != nil {
		return errors.New("not a JSON key file")
	}
	if f.Type != "service_account" {
		return errors.New(`not a service account key (want "type": "service_account")`)
	}
	if f.ClientEmail == "" || f.PrivateKey == "" {
		return errors.New("service account key without client_email or private_key")
	}
	// Parsed here so that a damaged key fails at startup, as a config
	// error, rather than at the first upload.
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil {
		return errors.New("private_key is not a PEM private key")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return errors.New("private_key cannot be parsed (want PKCS #8 or PKCS #1)")
		}
	}
	return nil
}

// parseEndpoint checks an endpoint URL and adds the JSON API's path when
// it has none. Errors never quote a URL holding a password.
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.User != nil {
		return nil, errors.New("must not contain a user or password")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: want an http or https URL", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: no query or fragment allowed", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/storage/v1/"
	} else if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// readServiceAccountFile reads and checks a key file. Errors name the path
// and the problem, never the content.
func readServiceAccountFile(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, crmsync.Errorf(crmsync.EINVALID, "credentials_file", "%v", err)
	}
	if err := checkServiceAccount(key); err != nil {
		return nil, crmsync.Errorf(crmsync.EINVALID, "credentials_file", "%s: %s", path, err)
	}
	return key, nil
}
