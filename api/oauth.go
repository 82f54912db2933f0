package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/crmsync/crmsync"
)

// oauthStart sends an admin's browser to the CRM's authorization page; the
// state travels in a cookie so the callback can check it.
func (s *Server) oauthStart(w http.ResponseWriter, r *http.Request) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	state := hex.EncodeToString(b[:])
	u, err := s.OAuth.AuthCodeURL(state)
	if err != nil {
		s.error(w, r, crmsync.Errorf(crmsync.ECONFLICT, "crm.auth", "%v", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "crmsync_oauth_state", Value: state, Path: "/admin/oauth", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Server) oauthCallback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie("crmsync_oauth_state")
	if err != nil || c.Value == "" || c.Value != r.URL.Query().Get("state") {
		s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "state", "does not match the one this browser was sent with; start again at /admin/oauth/start"))
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "error", "the CRM refused: %s", e))
		return
	}
	code := r.URL.Query().Get("code")
	if code == "" {
		s.error(w, r, crmsync.Errorf(crmsync.EINVALID, "code", "required"))
		return
	}
	if err := s.OAuth.Exchange(r.Context(), code); err != nil {
		s.Logger.Warn("oauth exchange failed", "err", err)
		s.error(w, r, crmsync.Errorf(crmsync.EUNAVAILABLE, "code", "the CRM's token endpoint refused the code: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "connected", "message": "crmsync now holds a token for the CRM"})
}
