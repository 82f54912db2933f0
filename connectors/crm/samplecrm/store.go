package samplecrm

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Record statuses.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// Account is the customer entity: what a CRM may call an account, contact,
// customer or lead. Fields holds whatever else the request sent, as decoded
// from JSON (numbers as json.Number) or as form strings; the same holds for
// the Fields of records and comments.
type Account struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	FirstName    string         `json:"first_name"`
	LastName     string         `json:"last_name"`
	Phone        string         `json:"phone"`
	Email        string         `json:"email"`
	CustomUserID string         `json:"custom_user_id"`
	Fields       map[string]any `json:"fields,omitempty"`
}

// Record is the case, ticket or conversation that belongs to an account.
type Record struct {
	ID          string         `json:"id"`
	AccountID   string         `json:"account_id"`
	Subject     string         `json:"subject"`
	Description string         `json:"description"`
	Status      string         `json:"status"` // StatusOpen or StatusClosed
	Fields      map[string]any `json:"fields,omitempty"`
}

// Comment is a note on a record. HTML reports whether the sender said the
// body is HTML; the body is stored as sent either way.
type Comment struct {
	ID          string         `json:"id"`
	RecordID    string         `json:"record_id"`
	Body        string         `json:"body"`
	HTML        bool           `json:"html"`
	ContentType string         `json:"content_type,omitempty"`
	Fields      map[string]any `json:"fields,omitempty"`
}

// Attachment is a file uploaded to a record.
type Attachment struct {
	ID          string `json:"id"`
	RecordID    string `json:"record_id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
	Bytes       []byte `json:"-"`
}

// store holds the entities. Ids are positions: the entity with id "n" sits
// at index n-1, so a lookup by id is a bounds check. Stored entities are never
// modified; an update stores a new value, which lets readers use a pointer
// after the lock is released.
type store struct {
	mu sync.RWMutex

	accounts       []*Account
	accountRecords [][]int // by account index: its record indices, ascending

	records           []*Record
	recordComments    [][]*Comment // by record index
	recordAttachments [][]int      // by record index: attachment indices
	attachments       []*Attachment
	commentCount      int

	// Account indexes; slices in them are only read under mu.
	byPhone        index // digits of the phone
	byPhoneTail    index // last phoneTail digits of the phone
	byEmail        index // lower-cased
	byCustomUserID index
	byName         index // lower-cased
}

// phoneTail is how many trailing digits the wildcard phone index keys on.
const phoneTail = 4

func newStore() *store {
	return &store{
		byPhone:        index{},
		byPhoneTail:    index{},
		byEmail:        index{},
		byCustomUserID: index{},
		byName:         index{},
	}
}

// index maps a key to entity indices in ascending order.
type index map[string][]int

func (ix index) add(key string, i int) {
	if key == "" {
		return
	}
	list := ix[key]
	pos, found := slices.BinarySearch(list, i)
	if !found {
		ix[key] = slices.Insert(list, pos, i)
	}
}

func (ix index) remove(key string, i int) {
	if key == "" {
		return
	}
	list := ix[key]
	pos, found := slices.BinarySearch(list, i)
	if !found {
		return
	}
	if len(list) == 1 {
		delete(ix, key)
		return
	}
	ix[key] = slices.Delete(list, pos, pos+1)
}

// parseID turns "n" into index n-1. Only the canonical spelling is an id, so
// "01" and "+1" name nothing.
func parseID(id string) (int, bool) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || strconv.Itoa(n) != id {
		return 0, false
	}
	return n - 1, true
}

func idOf(i int) string { return strconv.Itoa(i + 1) }

// digits keeps the ASCII digits of s.
func digits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func tail(d string) string {
	if len(d) < phoneTail {
		return ""
	}
	return d[len(d)-phoneTail:]
}

func (st *store) indexAccount(a *Account, i int) {
	d := digits(a.Phone)
	st.byPhone.add(d, i)
	st.byPhoneTail.add(tail(d), i)
	st.byEmail.add(strings.ToLower(a.Email), i)
	st.byCustomUserID.add(a.CustomUserID, i)
	st.byName.add(strings.ToLower(a.Name), i)
}

func (st *store) unindexAccount(a *Account, i int) {
	d := digits(a.Phone)
	st.byPhone.remove(d, i)
	st.byPhoneTail.remove(tail(d), i)
	st.byEmail.remove(strings.ToLower(a.Email), i)
	st.byCustomUserID.remove(a.CustomUserID, i)
	st.byName.remove(strings.ToLower(a.Name), i)
}

func (st *store) createAccount(a Account) *Account {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := len(st.accounts)
	a.ID = idOf(i)
	p := &a
	st.accounts = append(st.accounts, p)
	st.accountRecords = append(st.accountRecords, nil)
	st.indexAccount(p, i)
	return p
}

func (st *store) account(id string) (*Account, bool) {
	i, ok := parseID(id)
	if !ok {
		return nil, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if i >= len(st.accounts) {
		return nil, false
	}
	return st.accounts[i], true
}

// updateAccount applies change to a copy of the account and stores the copy.
// change runs under the lock, so it must be quick.
func (st *store) updateAccount(id string, change func(*Account)) (*Account, bool) {
	i, ok := parseID(id)
	if !ok {
		return nil, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if i >= len(st.accounts) {
		return nil, false
	}
	old := st.accounts[i]
	next := *old
	change(&next)
	st.unindexAccount(old, i)
	st.indexAccount(&next, i)
	st.accounts[i] = &next
	return &next, true
}

// createRecord stores r if its account exists.
func (st *store) createRecord(r Record) (*Record, bool) {
	ai, ok := parseID(r.AccountID)
	if !ok {
		return nil, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if ai >= len(st.accounts) {
		return nil, false
	}
	i := len(st.records)
	r.ID = idOf(i)
	p := &r
	st.records = append(st.records, p)
	st.recordComments = append(st.recordComments, nil)
	st.recordAttachments = append(st.recordAttachments, nil)
	st.accountRecords[ai] = append(st.accountRecords[ai], i)
	return p, true
}

func (st *store) record(id string) (*Record, bool) {
	i, ok := parseID(id)
	if !ok {
		return nil, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if i >= len(st.records) {
		return nil, false
	}
	return st.records[i], true
}

// updateResult tells a record update which id, if any, was missing.
type updateResult int

const (
	updated updateResult = iota
	noRecord
	noAccount
)

// updateRecord applies change to a copy of the record and stores it. When
// the change moves the record to another account, that account must exist.
func (st *store) updateRecord(id string, change func(*Record)) (*Record, updateResult) {
	i, ok := parseID(id)
	if !ok {
		return nil, noRecord
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if i >= len(st.records) {
		return nil, noRecord
	}
	old := st.records[i]
	next := *old
	change(&next)
	if next.AccountID != old.AccountID {
		to, ok := parseID(next.AccountID)
		if !ok || to >= len(st.accounts) {
			return nil, noAccount
		}
		from, _ := parseID(old.AccountID)
		st.accountRecords[from] = removeSorted(st.accountRecords[from], i)
		st.accountRecords[to] = insertSorted(st.accountRecords[to], i)
	}
	st.records[i] = &next
	return &next, updated
}

func insertSorted(list []int, i int) []int {
	pos, found := slices.BinarySearch(list, i)
	if found {
		return list
	}
	return slices.Insert(list, pos, i)
}

func removeSorted(list []int, i int) []int {
	pos, found := slices.BinarySearch(list, i)
	if !found {
		return list
	}
	return slices.Delete(list, pos, pos+1)
}

// accountRecordList returns the account and its records, newest last.
func (st *store) accountRecordList(id string) (*Account, []*Record, bool) {
	i, ok := parseID(id)
	if !ok {
		return nil, nil, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if i >= len(st.accounts) {
		return nil, nil, false
	}
	idx := st.accountRecords[i]
	out := make([]*Record, len(idx))
	for n, ri := range idx {
		out[n] = st.records[ri]
	}
	return st.accounts[i], out, true
}

func (st *store) addComment(recordID string, c Comment) (*Comment, bool) {
	i, ok := parseID(recordID)
	if !ok {
		return nil, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if i >= len(st.records) {
		return nil, false
	}
	st.commentCount++
	c.ID = strconv.Itoa(st.commentCount)
	c.RecordID = recordID
	p := &c
	st.recordComments[i] = append(st.recordComments[i], p)
	return p, true
}

func (st *store) comments(recordID string) ([]*Comment, bool) {
	i, ok := parseID(recordID)
	if !ok {
		return nil, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if i >= len(st.records) {
		return nil, false
	}
	return slices.Clone(st.recordComments[i]), true
}

func (st *store) addAttachment(recordID string, a Attachment) (*Attachment, bool) {
	ri, ok := parseID(recordID)
	if !ok {
		return nil, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if ri >= len(st.records) {
		return nil, false
	}
	i := len(st.attachments)
	a.ID = idOf(i)
	a.RecordID = recordID
	a.Size = len(a.Bytes)
	p := &a
	st.attachments = append(st.attachments, p)
	st.recordAttachments[ri] = append(st.recordAttachments[ri], i)
	return p, true
}

// attachment finds an attachment by id, only under the record it belongs to.
func (st *store) attachment(recordID, id string) (*Attachment, bool) {
	i, ok := parseID(id)
	if !ok {
		return nil, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if i >= len(st.attachments) || st.attachments[i].RecordID != recordID {
		return nil, false
	}
	return st.attachments[i], true
}

func (st *store) attachmentList(recordID string) ([]*Attachment, bool) {
	ri, ok := parseID(recordID)
	if !ok {
		return nil, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if ri >= len(st.records) {
		return nil, false
	}
	idx := st.recordAttachments[ri]
	out := make([]*Attachment, len(idx))
	for n, ai := range idx {
		out[n] = st.attachments[ai]
	}
	return out, true
}

// latest returns up to n of the newest accounts and records, newest first.
func (st *store) latest(n int) ([]*Account, []*Record) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	accounts := slices.Clone(st.accounts[max(0, len(st.accounts)-n):])
	records := slices.Clone(st.records[max(0, len(st.records)-n):])
	slices.Reverse(accounts)
	slices.Reverse(records)
	return accounts, records
}

// Copies handed to callers own their maps and byte slices.

func (a *Account) clone() Account {
	c := *a
	c.Fields = maps.Clone(a.Fields)
	return c
}

func (r *Record) clone() Record {
	c := *r
	c.Fields = maps.Clone(r.Fields)
	return c
}

func (c *Comment) clone() Comment {
	d := *c
	d.Fields = maps.Clone(c.Fields)
	return d
}

func (a *Attachment) clone() Attachment {
	c := *a
	c.Bytes = bytes.Clone(a.Bytes)
	return c
}

// Accounts returns a copy of every account, oldest first.
func (s *Server) Accounts() []Account {
	s.store.mu.RLock()
	list := slices.Clone(s.store.accounts)
	s.store.mu.RUnlock()
	out := make([]Account, len(list))
	for i, a := range list {
		out[i] = a.clone()
	}
	return out
}

// Records returns a copy of every record, oldest first.
func (s *Server) Records() []Record {
	s.store.mu.RLock()
	list := slices.Clone(s.store.records)
	s.store.mu.RUnlock()
	out := make([]Record, len(list))
	for i, r := range list {
		out[i] = r.clone()
	}
	return out
}

// Comments returns a copy of the record's comments, oldest first; nil when
// the record does not exist.
func (s *Server) Comments(recordID string) []Comment {
	list, ok := s.store.comments(recordID)
	if !ok {
		return nil
	}
	out := make([]Comment, len(list))
	for i, c := range list {
		out[i] = c.clone()
	}
	return out
}

// Attachments returns a copy of the record's attachments, bytes included,
// oldest first; nil when the record does not exist.
func (s *Server) Attachments(recordID string) []Attachment {
	list, ok := s.store.attachmentList(recordID)
	if !ok {
		return nil
	}
	out := make([]Attachment, len(list))
	for i, a := range list {
		out[i] = a.clone()
	}
	return out
}
