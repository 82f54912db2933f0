package samplecrm

import (
	"maps"
	"net/http"
	"strings"
)

var accountSpecs = []fieldSpec{
	{"name", []string{"name", "fullname"}},
	{"first_name", []string{"firstname"}},
	{"last_name", []string{"lastname"}},
	{"phone", []string{"phone", "phonenumber"}},
	{"email", []string{"email"}},
	{"custom_user_id", []string{"customuserid"}},
}

// apply sets the fields sent; the rest of the account stays as it was.
func (a *Account) apply(f fields) {
	for name, v := range f.known {
		switch name {
		case "name":
			a.Name = v
		case "first_name":
			a.FirstName = v
		case "last_name":
			a.LastName = v
		case "phone":
			a.Phone = v
		case "email":
			a.Email = v
		case "custom_user_id":
			a.CustomUserID = v
		}
	}
	a.Fields = mergeFields(a.Fields, f.extra)
}

// mergeFields returns a new map so a stored entity's map is never modified.
func mergeFields(old, extra map[string]any) map[string]any {
	if len(extra) == 0 {
		return old
	}
	out := maps.Clone(old)
	if out == nil {
		out = make(map[string]any, len(extra))
	}
	maps.Copy(out, extra)
	return out
}

func (s *Server) accountFields(w http.ResponseWriter, r *http.Request) (fields, error) {
	p, _, err := readPayload(w, r, s.maxBody)
	if err != nil {
		return fields{}, err
	}
	f, err := split(p, accountSpecs)
	if err != nil {
		return fields{}, err
	}
	if f.empty() {
		return fields{}, invalid("body: no account fields")
	}
	return f, nil
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) error {
	f, err := s.accountFields(w, r)
	if err != nil {
		return err
	}
	var a Account
	a.apply(f)
	if a.Name == "" {
		a.Name = strings.TrimSpace(a.FirstName + " " + a.LastName)
	}
	created := s.store.createAccount(a)
	w.Header().Set("Location", "/api/accounts/"+created.ID)
	writeData(w, http.StatusCreated, created)
	return nil
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	a, ok := s.store.account(id)
	if !ok {
		return accountNotFound(id)
	}
	writeData(w, http.StatusOK, a)
	return nil
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, ok := s.store.account(id); !ok {
		return accountNotFound(id)
	}
	f, err := s.accountFields(w, r)
	if err != nil {
		return err
	}
	a, ok := s.store.updateAccount(id, func(a *Account) { a.apply(f) })
	if !ok {
		return accountNotFound(id)
	}
	writeData(w, http.StatusOK, a)
	return nil
}

func (s *Server) searchAccounts(w http.ResponseWriter, r *http.Request) error {
	sr, err := parseSearch(r.URL.Query(), accountFields)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, itemList[*Account]{Items: s.store.searchAccounts(sr)})
	return nil
}

func accountNotFound(id string) error { return notFound("account %s not found", id) }
