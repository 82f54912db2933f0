package samplecrm

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// clause is one "field equals value" condition. field is the canonical,
// normalized field name; key is how the request spelled it.
type clause struct {
	field string
	key   string
	value string
	phone phonePattern // parsed value, for phone clauses
}

func newClause(field, key, value string) clause {
	c := clause{field: field, key: key, value: value}
	if field == "phone" {
		c.phone = parsePhone(value)
	}
	return c
}

// searchFields names the fields a search can use.
type searchFields struct {
	names  map[string]string // normalized spelling -> field
	params string            // for messages: the query parameters
	q      string            // for messages: the q field names
}

// step joins a clause to what came before it.
type step struct {
	and bool
	c   clause
}

// criteria is a left-to-right chain of clauses: ((c0 op1 c1) op2 c2) ...
type criteria struct {
	first clause
	rest  []step
}

// parseCriteria reads Zoho-style search criteria:
//
//	(Phone:equals:+12223334444) or (Email:equals:james.bond@007)
//
// Clauses are joined by "or" and "and" and evaluated left to right. Inside a
// value, a backslash escapes the next character, so "\)" is a literal ")".
func parseCriteria(q string, fields searchFields) (criteria, error) {
	var cr criteria
	s := strings.TrimSpace(q)
	and := false
	for n := 0; ; n++ {
		if !strings.HasPrefix(s, "(") {
			return criteria{}, invalid("q: expected \"(\" at %q", s)
		}
		inner, rest, ok := cutClause(s[1:])
		if !ok {
			return criteria{}, invalid("q: unclosed clause at %q", s)
		}
		c, err := parseClause(inner, fields)
		if err != nil {
			return criteria{}, err
		}
		if n == 0 {
			cr.first = c
		} else {
			cr.rest = append(cr.rest, step{and: and, c: c})
		}
		if rest == "" {
			return cr, nil
		}
		and, s = connector(rest)
	}
}

// cutClause finds the ")" that ends a clause: the first unescaped one that
// is followed by the end of the criteria or by a connector and a new clause.
// That lets a value hold ")" without escaping it, as long as it is not
// followed by " or (".
func cutClause(s string) (inner, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ')':
			after := strings.TrimSpace(s[i+1:])
			if after == "" {
				return s[:i], "", true
			}
			if _, next := connector(after); next != "" {
				return s[:i], after, true
			}
		}
	}
	return "", "", false
}

// connector reads "or (" or "and (" at the start of s. It returns the rest
// from the "(" on, or "" when s does not start with a connector.
func connector(s string) (and bool, rest string) {
	word, after, found := strings.Cut(s, " ")
	if !found {
		return false, ""
	}
	after = strings.TrimLeft(after, " ")
	if !strings.HasPrefix(after, "(") {
		return false, ""
	}
	switch strings.ToLower(word) {
	case "or":
		return false, after
	case "and":
		return true, after
	}
	return false, ""
}

func parseClause(s string, fields searchFields) (clause, error) {
	field, rest, ok1 := strings.Cut(s, ":")
	op, value, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return clause{}, invalid("q: clause %q is not (Field:equals:value)", "("+s+")")
	}
	field = strings.TrimSpace(field)
	name, ok := fields.names[normalize(field)]
	if !ok {
		return clause{}, invalid("q: unknown field %q (use %s)", field, fields.q)
	}
	if !strings.EqualFold(strings.TrimSpace(op), "equals") {
		return clause{}, invalid("q: unsupported operator %q in %q (only equals)", op, "("+s+")")
	}
	return newClause(name, field, unescape(value)), nil
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// searchRequest is a parsed search: query parameters ANDed together and
// ANDed with the q criteria, if any.
type searchRequest struct {
	params []clause
	q      *criteria
	limit  int
	desc   bool
}

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// parseSearch reads the query string of a search.
func parseSearch(query url.Values, fields searchFields) (searchRequest, error) {
	sr := searchRequest{limit: defaultLimit}
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.TrimSpace(query.Get(k))
		switch n := normalize(k); n {
		case "q", "criteria":
			if v == "" {
				continue
			}
			cr, err := parseCriteria(v, fields)
			if err != nil {
				return searchRequest{}, err
			}
			sr.q = &cr
		case "limit":
			if v == "" {
				continue
			}
			l, err := strconv.Atoi(v)
			if err != nil || l < 1 {
				return searchRequest{}, invalid("limit: want a positive integer, got %q", v)
			}
			sr.limit = min(l, maxLimit)
		case "order":
			switch strings.ToLower(v) {
			case "", "asc":
			case "desc":
				sr.desc = true
			default:
				return searchRequest{}, invalid("order: want asc or desc, got %q", v)
			}
		default:
			if name, ok := fields.names[n]; ok && v != "" {
				sr.params = append(sr.params, newClause(name, k, v))
			}
		}
	}
	if len(sr.params) == 0 && sr.q == nil {
		return searchRequest{}, invalid("no search criteria: give %s, or q", fields.params)
	}
	return sr, nil
}

// matcher is what a search needs from an entity table: candidates for a
// clause (from an index where there is one) and a test of one entity.
type matcher interface {
	candidates(c clause) []int
	match(i int, c clause) bool
	// cost ranks clauses so the cheapest goes first; lower is cheaper.
	cost(c clause) int
}

// run evaluates the search and returns ascending entity indices. The caller
// holds the store's read lock.
func (sr searchRequest) run(m matcher) []int {
	var res []int
	if len(sr.params) > 0 {
		params := slices.Clone(sr.params)
		slices.SortStableFunc(params, func(a, b clause) int { return m.cost(a) - m.cost(b) })
		res = m.candidates(params[0])
		for _, c := range params[1:] {
			res = filter(res, m, c)
		}
	}
	if sr.q != nil {
		if len(sr.params) == 0 {
			return sr.q.run(m)
		}
		res = intersect(res, sr.q.run(m))
	}
	return res
}

func (cr criteria) run(m matcher) []int {
	res := m.candidates(cr.first)
	for _, st := range cr.rest {
		if st.and {
			res = filter(res, m, st.c)
		} else {
			res = union(res, m.candidates(st.c))
		}
	}
	return res
}

// filter keeps the indices that match c, in a new slice: res may be an
// index's own storage.
func filter(res []int, m matcher, c clause) []int {
	var out []int
	for _, i := range res {
		if m.match(i, c) {
			out = append(out, i)
		}
	}
	return out
}

func union(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func intersect(a, b []int) []int {
	var out []int
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// window applies order and limit to ascending indices.
func (sr searchRequest) window(res []int) []int {
	if sr.desc {
		res = slices.Clone(res)
		slices.Reverse(res)
	}
	if len(res) > sr.limit {
		res = res[:sr.limit]
	}
	return res
}

// phonePattern is a phone search value. Only digits count. A value with "*"
// is a wildcard: its digit groups must appear in the stored number in order,
// anchored at the start unless it begins with "*" and at the end unless it
// ends with "*". "*222*333*4444" matches +1 (222) 333-4444.
type phonePattern struct {
	exact    string // digits, when there is no wildcard
	groups   []string
	anchorLo bool
	anchorHi bool
}

func parsePhone(value string) phonePattern {
	if !strings.Contains(value, "*") {
		return phonePattern{exact: digits(value)}
	}
	parts := strings.Split(value, "*")
	p := phonePattern{}
	for _, part := range parts {
		if d := digits(part); d != "" {
			p.groups = append(p.groups, d)
		}
	}
	p.anchorLo = digits(parts[0]) != ""
	p.anchorHi = digits(parts[len(parts)-1]) != ""
	return p
}

func (p phonePattern) wildcard() bool { return p.exact == "" && len(p.groups) > 0 }

// empty reports a value with no digits; it matches nothing.
func (p phonePattern) empty() bool { return p.exact == "" && len(p.groups) == 0 }

func (p phonePattern) match(phoneDigits string) bool {
	if p.empty() {
		return false
	}
	if !p.wildcard() {
		return phoneDigits == p.exact
	}
	s, groups := phoneDigits, p.groups
	if p.anchorLo {
		if !strings.HasPrefix(s, groups[0]) {
			return false
		}
		s, groups = s[len(groups[0]):], groups[1:]
	}
	if p.anchorHi && len(groups) > 0 {
		last := groups[len(groups)-1]
		if !strings.HasSuffix(s, last) {
			return false
		}
		s, groups = s[:len(s)-len(last)], groups[:len(groups)-1]
	}
	for _, g := range groups {
		i := strings.Index(s, g)
		if i < 0 {
			return false
		}
		s = s[i+len(g):]
	}
	return true
}

// tailKey is the phone-tail index key that every match must carry, or ""
// when the pattern does not pin the last digits.
func (p phonePattern) tailKey() string {
	if !p.wildcard() || !p.anchorHi {
		return ""
	}
	return tail(p.groups[len(p.groups)-1])
}

var (
	accountFields = searchFields{
		names: map[string]string{
			"id": "id", "phone": "phone", "phonenumber": "phone", "email": "email",
			"customuserid": "customuserid", "name": "name",
		},
		params: "id, phone, email, custom_user_id or name",
		q:      "Id, Phone, Email, Name, Custom_User_Id",
	}
	recordFields = searchFields{
		names: map[string]string{
			"id": "id", "accountid": "accountid", "contactid": "accountid",
			"status": "status", "subject": "subject",
		},
		params: "id, account_id (or contactId), status or subject",
		q:      "Id, Subject, Status, Account_Id",
	}
)

// accountTable searches accounts; the caller holds the read lock.
type accountTable struct{ st *store }

func (t accountTable) cost(c clause) int {
	switch c.field {
	case "id":
		return 0
	case "phone":
		if c.phone.wildcard() && c.phone.tailKey() == "" {
			return 9
		}
	}
	return 1
}

func (t accountTable) candidates(c clause) []int {
	st := t.st
	switch c.field {
	case "id":
		if i, ok := parseID(c.value); ok && i < len(st.accounts) {
			return []int{i}
		}
		return nil
	case "phone":
		p := c.phone
		switch {
		case p.empty():
			return nil
		case !p.wildcard():
			return st.byPhone[p.exact]
		case p.tailKey() != "":
			return filter(st.byPhoneTail[p.tailKey()], t, c)
		}
		return t.scan(c)
	case "email":
		return st.byEmail[strings.ToLower(c.value)]
	case "customuserid":
		return st.byCustomUserID[c.value]
	case "name":
		return st.byName[strings.ToLower(c.value)]
	}
	return nil
}

func (t accountTable) scan(c clause) []int {
	var out []int
	for i := range t.st.accounts {
		if t.match(i, c) {
			out = append(out, i)
		}
	}
	return out
}

func (t accountTable) match(i int, c clause) bool {
	a := t.st.accounts[i]
	switch c.field {
	case "id":
		return a.ID == c.value
	case "phone":
		return c.phone.match(digits(a.Phone))
	case "email":
		return strings.EqualFold(a.Email, c.value)
	case "customuserid":
		return a.CustomUserID == c.value
	case "name":
		return strings.EqualFold(a.Name, c.value)
	}
	return false
}

// recordTable searches records; the caller holds the read lock.
type recordTable struct{ st *store }

func (t recordTable) cost(c clause) int {
	switch c.field {
	case "id":
		return 0
	case "accountid":
		return 1
	}
	return 9
}

func (t recordTable) candidates(c clause) []int {
	st := t.st
	switch c.field {
	case "id":
		if i, ok := parseID(c.value); ok && i < len(st.records) {
			return []int{i}
		}
		return nil
	case "accountid":
		if i, ok := parseID(c.value); ok && i < len(st.accounts) {
			return st.accountRecords[i]
		}
		return nil
	}
	var out []int
	for i := range st.records {
		if t.match(i, c) {
			out = append(out, i)
		}
	}
	return out
}

func (t recordTable) match(i int, c clause) bool {
	r := t.st.records[i]
	switch c.field {
	case "id":
		return r.ID == c.value
	case "accountid":
		return r.AccountID == c.value
	case "status":
		return strings.EqualFold(r.Status, strings.TrimSpace(c.value))
	case "subject":
		return strings.EqualFold(r.Subject, c.value)
	}
	return false
}

func (st *store) searchAccounts(sr searchRequest) []*Account {
	st.mu.RLock()
	defer st.mu.RUnlock()
	idx := sr.window(sr.run(accountTable{st}))
	out := make([]*Account, len(idx))
	for n, i := range idx {
		out[n] = st.accounts[i]
	}
	return out
}

func (st *store) searchRecords(sr searchRequest) []*Record {
	st.mu.RLock()
	defer st.mu.RUnlock()
	idx := sr.window(sr.run(recordTable{st}))
	out := make([]*Record, len(idx))
	for n, i := range idx {
		out[n] = st.records[i]
	}
	return out
}
