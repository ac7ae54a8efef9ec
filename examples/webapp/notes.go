package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyhold/keyhold/vault"
)

// noteContext names a note's field in the vault's associated data: a
// sealed title cannot be passed off as a body, or as another note's.
func noteContext(id, field string) []byte { return []byte("notes/" + id + "/" + field) }

// Every note is sealed with its version (1 when added, one more at each
// edit), which the vault authenticates with the ciphertext; the row's
// version column says which version the app expects. An older ciphertext
// of the note put back into the title or body column (from a backup, a
// log, an earlier copy of the row) then does not open: vault.ErrRollback.
// Someone who can write the database can still put back a whole old row,
// version column included: the database is where the app keeps the
// version it expects (SECURITY.md, "Records").

func (a *app) notes(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.m.Unlocked(ctx) // RequireUnlocked ran; locked again when the request ends
	if err != nil {
		return err
	}
	rows, err := a.db.QueryContext(ctx, "SELECT id, created, version, title, body FROM notes WHERE user_id = ? ORDER BY created DESC", u.UserID())
	if err != nil {
		return err
	}
	defer rows.Close()
	var d pageData
	for rows.Next() {
		var n note
		var created int64
		var title, body []byte
		if err := rows.Scan(&n.ID, &created, &n.Version, &title, &body); err != nil {
			return err
		}
		n.Created = time.UnixMilli(created)
		t, _, err1 := u.OpenVersion(title, noteContext(n.ID, "title"), n.Version)
		b, _, err2 := u.OpenVersion(body, noteContext(n.ID, "body"), n.Version)
		if err := errors.Join(err1, err2); err != nil {
			// vault.ErrDecrypt: the row was altered or moved in the
			// database; vault.ErrRollback: an older version was put back.
			a.log.WarnContext(ctx, "webapp.note_unreadable", "user", u.UserID(), "note", n.ID,
				"rollback", errors.Is(err, vault.ErrRollback))
			t, b, n.Unreadable = []byte("(unreadable)"), nil, true
		}
		n.Title, n.Body = string(t), string(b)
		d.Notes = append(d.Notes, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "notes", d)
}

// noteForm returns the request's unlocked vault and the note's title and
// body from the form, within their bounds.
func (a *app) noteForm(r *http.Request) (u *vault.Unlocked, title, body string, err error) {
	if u, err = a.m.Unlocked(r.Context()); err != nil {
		return nil, "", "", err
	}
	title, body = strings.TrimSpace(r.PostFormValue("title")), r.PostFormValue("body")
	if title == "" || len(title) > 200 || len(body) > 64<<10 {
		return nil, "", "", badInput("A note needs a title of at most 200 bytes and a body of at most 64 KiB.")
	}
	return u, title, body, nil
}

// hookNoteWrite, when set (by tests), runs after a note is sealed and
// before it is written: a test holds the write there while a rotation runs.
var hookNoteWrite atomic.Pointer[func(userID string)]

// sealNote seals a note's title and body at version.
func sealNote(u *vault.Unlocked, id, title, body string, version uint64) (sealedTitle, sealedBody []byte, err error) {
	sealedTitle, err1 := u.SealVersion([]byte(title), noteContext(id, "title"), version)
	sealedBody, err2 := u.SealVersion([]byte(body), noteContext(id, "body"), version)
	return sealedTitle, sealedBody, errors.Join(err1, err2)
}

func (a *app) addNote(w http.ResponseWriter, r *http.Request) error {
	u, title, body, err := a.noteForm(r)
	if err != nil {
		return err
	}
	id := rand.Text() // chosen before sealing, as the contexts name it
	sealedTitle, sealedBody, err := sealNote(u, id, title, body, 1)
	if err != nil {
		return err
	}
	if hook := hookNoteWrite.Load(); hook != nil {
		(*hook)(u.UserID())
	}
	if _, err := a.db.ExecContext(r.Context(), "INSERT INTO notes (id, user_id, created, version, title, body) VALUES (?, ?, ?, 1, ?, ?)",
		id, u.UserID(), time.Now().UnixMilli(), sealedTitle, sealedBody); err != nil {
		return err
	}
	// A rotation that ran while this request held the old key (settings.go)
	// may have checked the notes before this write, and destroyed the old
	// key since: the note would never open again. An edit is fenced by its
	// version (the re-sealing moves it on); a new note is not, so it is
	// checked here, after its write: under a key older than the vault's, it
	// is taken back, unless the re-sealing got to it first.
	if taken, err := a.takeBackIfOutdated(context.WithoutCancel(r.Context()), u, id, sealedTitle); err != nil {
		return err
	} else if taken {
		return &userError{status: http.StatusConflict, msg: "Your notes' key was changed while this note was saved, so it was not saved. Lock your notes, unlock them again, and add it again."}
	}
	return redirect(w, r, "/notes")
}

// takeBackIfOutdated deletes the note just added (id, still version 1 with
// the title sealed as written) if u's key is older than the vault's
// current one, and reports whether it did. A note the re-sealing moved
// to the new key meanwhile is kept.
func (a *app) takeBackIfOutdated(ctx context.Context, u *vault.Unlocked, id string, sealedTitle []byte) (bool, error) {
	slots, err := a.vault.Slots(ctx, u.UserID())
	if err != nil {
		return false, err
	}
	current := u.KeyVersion()
	for _, sl := range slots {
		current = max(current, sl.KeyVersion)
	}
	if current == u.KeyVersion() {
		return false, nil
	}
	res, err := a.db.ExecContext(ctx, "DELETE FROM notes WHERE id = ? AND user_id = ? AND version = 1 AND title = ?", id, u.UserID(), sealedTitle)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	a.log.WarnContext(ctx, "webapp.note_under_old_key", "user", u.UserID(), "taken_back", n == 1)
	return n == 1, nil
}

// editNote replaces a note's title and body, sealed at the next version.
// The form carries the version it was made from: the update applies only
// if the note is still at that version, so an edit in another tab is not
// silently overwritten.
func (a *app) editNote(w http.ResponseWriter, r *http.Request) error {
	u, title, body, err := a.noteForm(r)
	if err != nil {
		return err
	}
	from, err := strconv.ParseUint(r.PostFormValue("version"), 10, 62)
	if err != nil {
		return badInput("That form is not one of ours. Reload the page and try again.")
	}
	id := r.PathValue("id")
	sealedTitle, sealedBody, err := sealNote(u, id, title, body, from+1)
	if err != nil {
		return err
	}
	if hook := hookNoteWrite.Load(); hook != nil {
		(*hook)(u.UserID())
	}
	res, err := a.db.ExecContext(r.Context(), "UPDATE notes SET title = ?, body = ?, version = ? WHERE id = ? AND user_id = ? AND version = ?",
		sealedTitle, sealedBody, from+1, id, u.UserID(), from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return &userError{status: http.StatusConflict, msg: "That note was changed or deleted meanwhile. Reload the notes and try again."}
	}
	return redirect(w, r, "/notes")
}

func (a *app) deleteNote(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	if _, err := a.db.ExecContext(r.Context(), "DELETE FROM notes WHERE id = ? AND user_id = ?", r.PathValue("id"), info.UserID); err != nil {
		return err
	}
	return redirect(w, r, "/notes")
}
