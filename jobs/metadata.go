package jobs

import (
	"strings"
	"time"
)

// MetadataVersion is the version of the session metadata document; the
// schema is docs/session-metadata.schema.json.
const MetadataVersion = 1

// Metadata is the session metadata file (call-{id}.json, chat-{id}.json):
// everything known of a finished session, for storage, the CRM and the
// outcome email.
type Metadata struct {
	SchemaVersion  int              `json:"schema_version"`
	Session        string           `json:"session"`
	ID             string           `json:"id"`
	Type           string           `json:"type"`
	SessionType    string           `json:"session_type,omitempty"`
	Channel        string           `json:"channel"`
	DeviceType     string           `json:"device_type,omitempty"`
	Language       string           `json:"language,omitempty"`
	Queue          MetadataQueue    `json:"queue"`
	Campaign       *MetadataCampain `json:"campaign,omitempty"`
	Agents         []Agent          `json:"agents"`
	EndUser        MetadataEndUser  `json:"end_user"`
	Participants   []Participant    `json:"participants"`
	Times          MetadataTimes    `json:"times"`
	Durations      MetadataDuration `json:"durations"`
	Transfers      MetadataTransfer `json:"transfers"`
	Rating         *int             `json:"rating"`
	Feedback       string           `json:"feedback,omitempty"`
	DisconnectedBy string           `json:"disconnected_by,omitempty"`
	CRM            CRMView          `json:"crm"`
	Files          []FileEntry      `json:"files"`
	Diagnostics    Diagnostics      `json:"diagnostics"`
	GeneratedAt    time.Time        `json:"generated_at"`
}

// MetadataQueue is where the session came from.
type MetadataQueue struct {
	ID       string `json:"id,omitempty"`
	Path     string `json:"path,omitempty"`
	Name     string `json:"name,omitempty"`
	MenuPath string `json:"menu_path,omitempty"`
	MenuID   string `json:"menu_id,omitempty"`
}

// MetadataCampain is the outbound campaign of a campaign call.
type MetadataCampain struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// MetadataEndUser is the customer.
type MetadataEndUser struct {
	ID           string `json:"id,omitempty"`
	Name         string `json:"name,omitempty"`
	Email        string `json:"email,omitempty"`
	Phone        string `json:"phone,omitempty"`
	CustomUserID string `json:"custom_user_id,omitempty"`
}

// Participant is one party of the session.
type Participant struct {
	Type  string `json:"type"` // end_user or agent
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
}

// MetadataTimes are the session's moments; a zero one is unknown.
type MetadataTimes struct {
	CreatedAt  *time.Time `json:"created_at"`
	QueuedAt   *time.Time `json:"queued_at"`
	AnsweredAt *time.Time `json:"answered_at"`
	EndedAt    *time.Time `json:"ended_at"`
}

// MetadataDuration holds durations in seconds; null when unknown.
type MetadataDuration struct {
	CallSeconds *float64 `json:"call_seconds"`
	HoldSeconds *float64 `json:"hold_seconds"`
	WaitSeconds *float64 `json:"wait_seconds"`
}

// MetadataTransfer counts and lists the transfers.
type MetadataTransfer struct {
	Count int        `json:"count"`
	Log   []Transfer `json:"log"`
}

// FileEntry is one file of the session and where it went.
type FileEntry struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256,omitempty"`
	StorageURL string `json:"storage_url,omitempty"`
	CRMURL     string `json:"crm_url,omitempty"`
	// URL is the one the session view shows, per storage.urls.
	URL string `json:"url,omitempty"`
}

// Diagnostics say what went wrong on the way, and how often it was retried.
type Diagnostics struct {
	CRMCalls    int      `json:"crm_calls"`
	CRMFailures int      `json:"crm_failures"`
	JobRetries  int      `json:"job_retries"`
	Archived    int      `json:"jobs_archived"`
	Errors      []string `json:"errors"`
}

// BuildMetadata assembles the metadata document of a session.
func BuildMetadata(v *View, files []FileEntry, now time.Time) Metadata {
	f := v.Facts
	m := Metadata{
		SchemaVersion: MetadataVersion,
		Session:       v.Session, ID: v.ID, Type: v.Kind,
		SessionType: f.SessionType, Channel: firstNonEmpty(f.Channel, channelName(v.Kind)),
		DeviceType: f.DeviceType, Language: f.Lang,
		Queue:  MetadataQueue{ID: f.QueueID, Path: f.QueuePath, Name: f.QueueName, MenuPath: f.MenuPath, MenuID: f.MenuID},
		Agents: append([]Agent{}, f.Agents...),
		EndUser: MetadataEndUser{ID: f.EndUserID, Name: f.EndUserName, Email: f.EndUserEmail,
			Phone: f.EndUserPhone, CustomUserID: f.CustomUserID},
		Durations:      MetadataDuration{CallSeconds: f.CallDuration, HoldSeconds: f.HoldTime, WaitSeconds: f.WaitTime},
		Transfers:      MetadataTransfer{Count: f.Transfers, Log: append([]Transfer{}, f.TransferLog...)},
		Feedback:       f.Feedback,
		DisconnectedBy: f.DisconnectedBy,
		CRM:            v.CRM,
		Files:          append([]FileEntry{}, files...),
		Diagnostics:    Diagnostics{Errors: []string{}},
		GeneratedAt:    now.UTC(),
	}
	if f.CampaignID != "" || f.CampaignName != "" {
		m.Campaign = &MetadataCampain{ID: f.CampaignID, Name: f.CampaignName}
	}
	if f.Rating > 0 {
		r := f.Rating
		m.Rating = &r
	}
	m.Times.CreatedAt = timeOrNil(f.FirstSeenAt)
	if m.Times.CreatedAt == nil {
		m.Times.CreatedAt = timeOrNil(v.Created)
	}
	m.Times.AnsweredAt = timeOrNil(f.StartedAt)
	m.Times.EndedAt = timeOrNil(f.EndedAt)
	if m.Times.AnsweredAt != nil && f.WaitTime != nil {
		q := m.Times.AnsweredAt.Add(-time.Duration(*f.WaitTime * float64(time.Second)))
		m.Times.QueuedAt = &q
	}
	m.Participants = []Participant{{Type: "end_user", ID: f.EndUserID, Email: f.EndUserEmail}}
	for _, a := range f.Agents {
		m.Participants = append(m.Participants, Participant{Type: "agent", ID: a.ID, Email: a.Email})
	}
	for _, e := range v.Timeline {
		switch e.Kind {
		case "crm":
			m.Diagnostics.CRMCalls++
			if e.Error != "" || e.Status >= 400 || e.Status == 0 {
				m.Diagnostics.CRMFailures++
			}
		case "job":
			if strings.HasPrefix(e.Outcome, "retry") {
				m.Diagnostics.JobRetries++
			}
			if e.Outcome == "archived" {
				m.Diagnostics.Archived++
			}
			if e.Error != "" {
				m.Diagnostics.Errors = append(m.Diagnostics.Errors, e.Error)
			}
		}
	}
	if n := len(m.Diagnostics.Errors); n > 10 {
		m.Diagnostics.Errors = m.Diagnostics.Errors[n-10:]
	}
	if m.Agents == nil {
		m.Agents = []Agent{}
	}
	if m.Transfers.Log == nil {
		m.Transfers.Log = []Transfer{}
	}
	if m.Files == nil {
		m.Files = []FileEntry{}
	}
	return m
}

func channelName(kind string) string {
	if kind == "call" {
		return "voice_call"
	}
	return "chat"
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
