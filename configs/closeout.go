package configs

import (
	"fmt"
	"time"

	"github.com/crmsync/crmsync/connectors/mail"
	"github.com/crmsync/crmsync/storage"
	"github.com/crmsync/crmsync/storage/gcs"
	"github.com/crmsync/crmsync/storage/local"
	"github.com/crmsync/crmsync/storage/sftp"
)

// Storage is the external storage of session files.
type Storage struct {
	// Enabled turns external storage on ("Enable information storage
	// outside CRM servers").
	Enabled bool `yaml:"enabled"`
	// Type is local, sftp or gcs.
	Type string `yaml:"type"`
	// Files lists the kinds stored: call_recordings, voicemails,
	// chat_transcripts, photos, videos, session_metadata. Empty means all.
	Files []string `yaml:"files"`
	// AlsoSendToCRM sends the files listed by crm.endpoints.upload_file
	// to the CRM record as well ("Also send session files to the CRM").
	AlsoSendToCRM bool `yaml:"also_send_to_crm"`
	// URLs says which URL the session view shows for a file: storage
	// (default) or crm.
	URLs  string       `yaml:"urls"`
	Local local.Config `yaml:"local"`
	SFTP  sftp.Config  `yaml:"sftp"`
	GCS   gcs.Config   `yaml:"gcs"`
}

// Files is how session files come in.
type Files struct {
	// Spool is the folder where received files wait for their session's
	// close-out. Every worker process must see the same folder (a shared
	// volume) when there are several. Empty means ./data/spool.
	Spool string `yaml:"spool"`
	// MaxBytes caps one file. Zero means 2 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Closeout runs after a session ends.
type Closeout struct {
	// Delay is how long after the end the close-out runs, so late data
	// (a rating) is in the metadata file. Zero means 15m.
	Delay time.Duration `yaml:"delay"`
}

// Email is the outcome email.
type Email struct {
	// Global is the global setting; Queues override it per queue id, as
	// the spec's inheritance table says.
	Global mail.Settings            `yaml:"global"`
	Queues map[string]mail.Settings `yaml:"queues"`
	SMTP   mail.SMTP                `yaml:"smtp"`
}

// Used reports whether any email can be sent.
func (e *Email) Used() bool {
	if e.Global.Enabled {
		return true
	}
	for _, q := range e.Queues {
		if q.Enabled {
			return true
		}
	}
	return false
}

func (c *Config) validateCloseout(ps *Problems) {
	s := &c.Storage
	if s.Enabled {
		switch s.Type {
		case "local":
			if s.Local.Path == "" {
				ps.add("storage.local.path", "required for type local")
			}
		case "sftp":
			if err := s.SFTP.Validate(); err != nil {
				ps.add("storage.sftp", "%v", err)
			}
		case "gcs":
			if err := s.GCS.Validate(); err != nil {
				ps.add("storage.gcs", "%v", err)
			}
		default:
			ps.add("storage.type", "want local, sftp or gcs, got %q", s.Type)
		}
	}
	if len(s.Files) == 0 {
		for _, k := range storage.FileKinds {
			s.Files = append(s.Files, string(k))
		}
	}
	for i, f := range s.Files {
		ok := false
		for _, k := range storage.FileKinds {
			ok = ok || string(k) == f
		}
		if !ok {
			ps.add(fmt.Sprintf("storage.files[%d]", i), "unknown file kind %q", f)
		}
	}
	switch s.URLs {
	case "":
		s.URLs = "storage"
	case "storage", "crm":
	default:
		ps.add("storage.urls", "want storage or crm, got %q", s.URLs)
	}
	if s.AlsoSendToCRM && c.CRM.Endpoints.UploadFile == nil {
		ps.add("storage.also_send_to_crm", "needs crm.endpoints.upload_file")
	}
	if c.Files.Spool == "" {
		c.Files.Spool = "data/spool"
	}
	if c.Files.MaxBytes == 0 {
		c.Files.MaxBytes = 2 << 30
	} else if c.Files.MaxBytes < 1024 {
		ps.add("files.max_bytes", "must be at least 1024")
	}
	if c.Closeout.Delay == 0 {
		c.Closeout.Delay = 15 * time.Minute
	} else if c.Closeout.Delay < 0 {
		ps.add("closeout.delay", "must not be negative")
	}
	if c.Email.Used() {
		if err := c.Email.SMTP.Validate(); err != nil {
			ps.add("email.smtp", "%v", err)
		}
	}
	if c.Email.Global.Enabled && c.Email.Global.To == "" {
		ps.add("email.global.to", "required when email.global.enabled")
	}
}
