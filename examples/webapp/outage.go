package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"modernc.org/sqlite"
)

// storeUnavailable reports whether err says that a storage server could
// not be reached or cannot serve for now: a connection refused, reset or
// cut mid-answer, a PostgreSQL that is starting, stopping or out of
// connections, a Redis that is loading its data or failing over, a pool
// with no free connection in time, a SQLite database busy past its
// timeout, a call that ran out of time. Such a request is answered 503 with Retry-After (a retry soon
// may succeed), any other failure 500. Either way the page names no
// detail and the error goes to the log.
func storeUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	// A call to storage that ran out of time (the request's deadline, a
	// driver's timeout) is an outage for the user too.
	for _, target := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, io.ErrUnexpectedEOF, io.EOF, redis.ErrPoolTimeout, context.DeadlineExceeded} {
		if errors.Is(err, target) {
			return true
		}
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		// Class 08: connection exception; 53: insufficient resources
		// (too many connections); 57P01-57P03: the server is shutting
		// down, crashed, or cannot take connections yet.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true // pgx: failed before anything was sent, or timed out
	}
	if rerr, ok := errors.AsType[redis.Error](err); ok {
		for _, prefix := range []string{"LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "READONLY ", "BUSY "} {
			if strings.HasPrefix(rerr.Error(), prefix) {
				return true
			}
		}
		return false
	}
	if serr, ok := errors.AsType[*sqlite.Error](err); ok {
		switch serr.Code() & 0xff {
		case sqliteBusy, sqliteLocked:
			return true
		}
	}
	return false
}

// unavailableMessage is the page's (or the JSON answer's) text for a
// request refused because storage is unavailable.
const unavailableMessage = "This service is unavailable for a moment. Please try again in a few seconds."

// SQLite's primary result codes for a database that another connection
// holds (extended codes keep them in their low byte).
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)
