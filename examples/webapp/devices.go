package main

import (
	"cmp"
	"errors"
	"net/http"
	"slices"

	"github.com/keyhold/keyhold/session"
)

// deviceRoutes adds the devices page and its forms.
func (a *app) deviceRoutes(handle func(string, handler, func(http.Handler) http.Handler), fresh func(http.Handler) http.Handler) {
	handle("GET /devices", a.devices, a.m.RequireLogin)
	handle("POST /devices/revoke", a.revoke, fresh)
	handle("POST /devices/revoke-others", a.revokeOthers, fresh)
}

// sortDevices puts the rows of the devices page in a stable order: this
// device first, then the others by login time, the latest first, ties by
// reference. A row keeps its place as its device is used (the session
// package lists them by last request, which moves them at each click).
func sortDevices(list []session.Device) {
	slices.SortFunc(list, func(a, b session.Device) int {
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Ref, b.Ref)
	})
}

// deviceList is the user's devices in the page's order.
func (a *app) deviceList(r *http.Request) ([]session.Device, error) {
	info, _ := a.m.Current(r.Context())
	list, err := a.m.Devices(r.Context(), info.UserID)
	if err != nil {
		return nil, err
	}
	sortDevices(list)
	return list, nil
}

func (a *app) devices(w http.ResponseWriter, r *http.Request) error {
	list, err := a.deviceList(r)
	if err != nil {
		return err
	}
	d := pageData{Devices: list}
	if r.URL.Query().Get("others") == "ended" {
		d.Notice = "Your other devices are logged out: only this one is logged in now."
	}
	return a.render(w, r, http.StatusOK, "devices", d)
}

func (a *app) revoke(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	err := a.m.Revoke(r.Context(), info.UserID, r.PostFormValue("ref"))
	if errors.Is(err, session.ErrNoSuchSession) || errors.Is(err, session.ErrInvalidInput) {
		// Logged out already (or by another tab), or a reference that was
		// never ours: say so on the list as it is now.
		list, lerr := a.deviceList(r)
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

// revokeOthers logs out every device of the user but this one ("Log out
// everywhere else"), API clients included. The fresh guard ran: the
// password (and second factor) were entered in the last 5 minutes.
func (a *app) revokeOthers(w http.ResponseWriter, r *http.Request) error {
	if err := a.m.RevokeOthers(r.Context()); err != nil {
		return err
	}
	return redirect(w, r, "/devices?others=ended")
}
