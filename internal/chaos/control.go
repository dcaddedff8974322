package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/services/kit/httpx"
)

// Controller adds, lists and removes the faults of a workspace's proxies,
// wherever they run: in the agent (Local) or in a proxy of their own inside
// the workspace, reached over its control API (Remote).
type Controller interface {
	Faults(ctx context.Context) ([]state.Fault, error)
	// Add applies a fault; with d > 0 it ends after d. A fault that cannot
	// be added is a *BadFaultError.
	Add(ctx context.Context, spec state.FaultSpec, d time.Duration) (state.Fault, error)
	// Remove ends one fault; an unknown id is ErrNotFound.
	Remove(ctx context.Context, id string) error
	// Clear ends every fault and returns how many there were.
	Clear(ctx context.Context) (int, error)
	// Close releases what the controller holds: a local Set's listeners.
	Close()
}

// Local is the Controller of a Set in this process.
func Local(s *Set) Controller { return local{s} }

type local struct{ s *Set }

func (l local) Faults(context.Context) ([]state.Fault, error) { return l.s.Faults(), nil }
func (l local) Add(_ context.Context, spec state.FaultSpec, d time.Duration) (state.Fault, error) {
	return l.s.Add(spec, d)
}
func (l local) Remove(_ context.Context, id string) error { return l.s.Remove(id) }
func (l local) Clear(context.Context) (int, error)        { return l.s.Clear(), nil }
func (l local) Close()                                    { l.s.Close() }

// The control API of a proxy running on its own (ListenEdges, `msctl agent
// chaos-proxy`):
//
//	GET    /faults          the active faults, oldest first
//	POST   /faults          a state.FaultRequest → the fault (201)
//	DELETE /faults/{id}     204, or 404
//	POST   /faults/clear    {"removed": n}
//
// Errors are {"error": message}: 400 for a bad fault, 404 for an unknown
// id. Only the agent calls it, through a port the runtime keeps local to
// the developer's machine (a loopback-published port, a port-forward).

type apiError struct {
	Error string `json:"error"`
}

type cleared struct {
	Removed int `json:"removed"`
}

// Handler serves the control API over c.
func Handler(c Controller) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		status := http.StatusInternalServerError
		if _, ok := errors.AsType[*BadFaultError](err); ok {
			status = http.StatusBadRequest
		} else if errors.Is(err, ErrNotFound) {
			status = http.StatusNotFound
		}
		httpx.WriteJSON(w, status, apiError{err.Error()})
	}
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		fs, err := c.Faults(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, fs)
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var req state.FaultRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(w, &BadFaultError{"bad fault body: " + err.Error()})
			return
		}
		f, err := c.Add(r.Context(), req.FaultSpec, time.Duration(req.ForMS)*time.Millisecond)
		if err != nil {
			fail(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, f)
	})
	mux.HandleFunc("DELETE /faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := c.Remove(r.Context(), r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /faults/clear", func(w http.ResponseWriter, r *http.Request) {
		n, err := c.Clear(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, cleared{n})
	})
	return mux
}

// Remote is the Controller of a proxy's control API at addr (host:port,
// asked per call: a port-forward may move).
func Remote(addr func(ctx context.Context) (string, error)) Controller {
	return remote{addr: addr, client: &http.Client{Timeout: 10 * time.Second}}
}

type remote struct {
	addr   func(ctx context.Context) (string, error)
	client *http.Client
}

func (r remote) Faults(ctx context.Context) ([]state.Fault, error) {
	var out []state.Fault
	return out, r.call(ctx, http.MethodGet, "/faults", nil, &out)
}

func (r remote) Add(ctx context.Context, spec state.FaultSpec, d time.Duration) (state.Fault, error) {
	var out state.Fault
	return out, r.call(ctx, http.MethodPost, "/faults", state.FaultRequest{FaultSpec: spec, ForMS: d.Milliseconds()}, &out)
}

func (r remote) Remove(ctx context.Context, id string) error {
	return r.call(ctx, http.MethodDelete, "/faults/"+url.PathEscape(id), nil, nil)
}

func (r remote) Clear(ctx context.Context) (int, error) {
	var out cleared
	return out.Removed, r.call(ctx, http.MethodPost, "/faults/clear", nil, &out)
}

func (remote) Close() {}

// call sends body as JSON and decodes the answer into out; the API's 400
// and 404 come back as the errors Local gives.
func (r remote) call(ctx context.Context, method, path string, body, out any) error {
	addr, err := r.addr(ctx)
	if err != nil {
		return fmt.Errorf("chaos proxy: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("chaos proxy: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e apiError
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		switch resp.StatusCode {
		case http.StatusBadRequest:
			return &BadFaultError{e.Error}
		case http.StatusNotFound:
			// The message is Local's: ErrNotFound's text and the id.
			return fmt.Errorf("%w%s", ErrNotFound, strings.TrimPrefix(e.Error, ErrNotFound.Error()))
		}
		return fmt.Errorf("chaos proxy %s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("chaos proxy %s %s: decode: %w", method, path, err)
	}
	return nil
}
