package main

import (
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"time"
)

// noteContext names a note's field in the vault's associated data: a
// sealed title cannot be passed off as a body, or as another note's.
func noteContext(id, field string) []byte { return []byte("notes/" + id + "/" + field) }

func (a *app) notes(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.m.Unlocked(ctx) // RequireUnlocked ran; locked again when the request ends
	if err != nil {
		return err
	}
	rows, err := a.db.QueryContext(ctx, "SELECT id, created, title, body FROM notes WHERE user_id = ? ORDER BY created DESC", u.UserID())
	if err != nil {
		return err
	}
	defer rows.Close()
	var d pageData
	for rows.Next() {
		var n note
		var created int64
		var title, body []byte
		if err := rows.Scan(&n.ID, &created, &title, &body); err != nil {
			return err
		}
		n.Created = time.UnixMilli(created)
		t, err1 := u.Open(title, noteContext(n.ID, "title"))
		b, err2 := u.Open(body, noteContext(n.ID, "body"))
		if err := errors.Join(err1, err2); err != nil {
			// vault.ErrDecrypt: the row was altered or moved in the database.
			a.log.WarnContext(ctx, "webapp.note_unreadable", "user", u.UserID(), "note", n.ID)
			t, b = []byte("(unreadable)"), nil
		}
		n.Title, n.Body = string(t), string(b)
		d.Notes = append(d.Notes, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "notes", d)
}

func (a *app) addNote(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.m.Unlocked(ctx)
	if err != nil {
		return err
	}
	title, body := strings.TrimSpace(r.PostFormValue("title")), r.PostFormValue("body")
	if title == "" || len(title) > 200 || len(body) > 64<<10 {
		http.Error(w, "400 a note needs a title (at most 200 bytes) and a body of at most 64 KiB", http.StatusBadRequest)
		return nil
	}
	id := rand.Text() // chosen before sealing, as the contexts name it
	sealedTitle, err1 := u.Seal([]byte(title), noteContext(id, "title"))
	sealedBody, err2 := u.Seal([]byte(body), noteContext(id, "body"))
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if _, err := a.db.ExecContext(ctx, "INSERT INTO notes (id, user_id, created, title, body) VALUES (?, ?, ?, ?, ?)",
		id, u.UserID(), time.Now().UnixMilli(), sealedTitle, sealedBody); err != nil {
		return err
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
