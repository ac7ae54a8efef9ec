package main

import (
	"errors"
	"net/http"

	"github.com/keyhold/keyhold/session"
)

// deviceRoutes adds the devices page and its forms.
func (a *app) deviceRoutes(handle func(string, handler, func(http.Handler) http.Handler), fresh func(http.Handler) http.Handler) {
	handle("GET /devices", a.devices, a.m.RequireLogin)
	handle("POST /devices/revoke", a.revoke, fresh)
}

func (a *app) devices(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	list, err := a.m.Devices(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "devices", pageData{Devices: list})
}

func (a *app) revoke(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	err := a.m.Revoke(r.Context(), info.UserID, r.PostFormValue("ref"))
	if errors.Is(err, session.ErrNoSuchSession) || errors.Is(err, session.ErrInvalidInput) {
		// Logged out already (or by another tab), or a reference that was
		// never ours: say so on the list as it is now.
		list, lerr := a.m.Devices(r.Context(), info.UserID)
		if lerr != nil {
			return lerr
		}
		return a.render(w, r, http.StatusNotFound, "devices", pageData{Devices: list, Error: "That device is not logged in any more."})
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/devices")
}
