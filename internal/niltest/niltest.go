// Package niltest checks that the exported methods of a type do not panic
// on a nil receiver, the value a failed constructor or call leaves behind,
// and that those with an error result return a typed error.
package niltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// Methods calls every exported method of nilPtr's type (a typed nil
// pointer, such as (*vault.Unlocked)(nil)) with zero arguments, except a
// live context, request, response writer, handler and fmt.State. It fails t
// if a call panics, or if a method with an error result returns a nil
// error or one that does not match want. A returned http.Handler (or
// middleware) is served one request, which must not panic and must get a
// 5xx answer. Reflection over the method set means a new method is
// covered without changing the test.
func Methods(t *testing.T, nilPtr any, want error) {
	t.Helper()
	v := reflect.ValueOf(nilPtr)
	if v.Kind() != reflect.Pointer || !v.IsNil() {
		t.Fatalf("niltest: %T is not a nil pointer", nilPtr)
	}
	if v.NumMethod() == 0 {
		t.Fatalf("niltest: %T has no exported methods", nilPtr)
	}
	for i := range v.NumMethod() {
		name := v.Type().Method(i).Name
		t.Run(name, func(t *testing.T) {
			call(t, v.Method(i), fmt.Sprintf("(%T)(nil).%s", nilPtr, name), want)
		})
	}
}

var (
	typeContext  = reflect.TypeFor[context.Context]()
	typeRequest  = reflect.TypeFor[*http.Request]()
	typeWriter   = reflect.TypeFor[http.ResponseWriter]()
	typeHandler  = reflect.TypeFor[http.Handler]()
	typeState    = reflect.TypeFor[fmt.State]()
	typeError    = reflect.TypeFor[error]()
	typeMidware  = reflect.TypeFor[func(http.Handler) http.Handler]()
	typeReader   = reflect.TypeFor[io.Reader]()
	reachedInner = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
)

func arg(t reflect.Type) reflect.Value {
	switch t {
	case typeContext:
		return reflect.ValueOf(context.Background())
	case typeRequest:
		return reflect.ValueOf(httptest.NewRequest(http.MethodGet, "/", nil))
	case typeWriter:
		return reflect.ValueOf(httptest.NewRecorder())
	case typeHandler:
		return reflect.ValueOf(http.Handler(reachedInner))
	case typeState:
		return reflect.ValueOf(&state{})
	case typeReader:
		return reflect.ValueOf(strings.NewReader(""))
	}
	return reflect.Zero(t)
}

func call(t *testing.T, m reflect.Value, name string, want error) {
	t.Helper()
	mt := m.Type()
	args := make([]reflect.Value, mt.NumIn())
	for i := range args {
		args[i] = arg(mt.In(i))
	}
	var out []reflect.Value
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s panics: %v", name, p)
			}
		}()
		if mt.IsVariadic() {
			out = m.CallSlice(args)
		} else {
			out = m.Call(args)
		}
	}()
	for i, o := range out {
		switch mt.Out(i) {
		case typeError:
			err, _ := o.Interface().(error)
			if err == nil || !errors.Is(err, want) {
				t.Errorf("%s returns error %v, want one matching %v", name, err, want)
			}
		case typeHandler:
			h, _ := o.Interface().(http.Handler)
			serve(t, name, h)
		case typeMidware:
			mw, _ := o.Interface().(func(http.Handler) http.Handler)
			if mw == nil {
				t.Errorf("%s returns a nil middleware", name)
				continue
			}
			serve(t, name, mw(reachedInner))
		}
	}
}

// serve sends h one request: it must answer 5xx without panicking.
func serve(t *testing.T, name string, h http.Handler) {
	t.Helper()
	if h == nil {
		t.Errorf("%s returns a nil handler", name)
		return
	}
	w := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("the handler of %s panics: %v", name, p)
			}
		}()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	if w.Code < 500 {
		t.Errorf("the handler of %s answers %d, want a server error", name, w.Code)
	}
}

// state is a fmt.State that collects what is written.
type state struct{ strings.Builder }

func (*state) Width() (int, bool)     { return 0, false }
func (*state) Precision() (int, bool) { return 0, false }
func (*state) Flag(int) bool          { return false }
