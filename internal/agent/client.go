package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/state"
)

// Client talks to the agent of one workspace.
type Client struct {
	stateDir string
	info     Info
	http     *http.Client
}

// Connect finds the agent of the workspace rooted at workspaceDir. It
// returns ErrNotRunning when no agent is alive there.
func Connect(workspaceDir string) (*Client, error) {
	dir := StateDir(workspaceDir)
	if !Alive(dir) {
		return nil, ErrNotRunning
	}
	in, err := readInfo(dir)
	if err != nil {
		return nil, err
	}
	return &Client{stateDir: dir, info: in, http: &http.Client{}}, nil
}

// Info is what agent.json says about the agent.
func (c *Client) Info() Info { return c.info }

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	resp, err := c.request(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("agent %s %s: decode: %w", method, path, err)
	}
	return nil
}

// request sends one API request and turns non-2xx answers into errors
// carrying the agent's message.
func (c *Client) request(ctx context.Context, method, path string) (*http.Response, error) {
	return c.send(ctx, method, path, nil)
}

// send is request with a JSON body (nil: none).
func (c *Client) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.info.Addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.info.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb errorBody
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&eb)
		if eb.Error.Message == "" {
			eb.Error.Message = resp.Status
		}
		return nil, &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return resp, nil
}

// APIError is an error answer of the agent.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Snapshot returns the agent's current snapshot.
func (c *Client) Snapshot(ctx context.Context) (state.Snapshot, error) {
	var s state.Snapshot
	err := c.do(ctx, http.MethodGet, "/api/snapshot", &s)
	return s, err
}

// Trace returns the spans of one trace, ordered by start.
func (c *Client) Trace(ctx context.Context, id string) ([]state.Span, error) {
	var spans []state.Span
	err := c.do(ctx, http.MethodGet, "/api/traces/"+url.PathEscape(id), &spans)
	return spans, err
}

// Metrics returns the services' RED metrics (only service's when not
// empty).
func (c *Client) Metrics(ctx context.Context, service string) (state.Metrics, error) {
	path := "/api/metrics"
	if service != "" {
		path += "?service=" + url.QueryEscape(service)
	}
	var m state.Metrics
	err := c.do(ctx, http.MethodGet, path, &m)
	return m, err
}

// Logs calls fn with every matching line, oldest first; with Follow it
// keeps going with new lines until ctx ends (then it returns nil) or fn
// returns an error.
func (c *Client) Logs(ctx context.Context, q state.LogQuery, fn func(state.LogLine) error) error {
	v := url.Values{}
	if len(q.Services) > 0 {
		v.Set("service", strings.Join(q.Services, ","))
	}
	if q.Grep != nil {
		v.Set("grep", q.Grep.String())
	}
	if !q.Since.IsZero() {
		// The agent runs on this machine, so a duration and an instant
		// name the same moment; the API takes the duration.
		v.Set("since", time.Since(q.Since).String())
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	resp, err := c.request(ctx, http.MethodGet, "/api/logs?"+v.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var l state.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("agent logs: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("agent logs: %w", err)
	}
	return nil
}

// Restart restarts one service or infra component and returns once it is
// ready again.
func (c *Client) Restart(ctx context.Context, service string) error {
	return c.do(ctx, http.MethodPost, "/api/restart/"+url.PathEscape(service), nil)
}

// Reconcile asks the agent to apply msctl.yaml and the services' current
// code to the running workspace (services limits it to those) and returns
// what it changed, once the changed services are ready again; nothing
// means nothing changed.
func (c *Client) Reconcile(ctx context.Context, services []string) ([]state.Change, error) {
	path := "/api/reconcile"
	if len(services) > 0 {
		path += "?service=" + url.QueryEscape(strings.Join(services, ","))
	}
	var body reconcileBody
	err := c.do(ctx, http.MethodPost, path, &body)
	return body.Changed, err
}

// Down asks the agent to stop everything (and remove the data with
// volumes) and waits until it has exited.
func (c *Client) Down(ctx context.Context, volumes bool) error {
	path := "/api/down"
	if volumes {
		path += "?volumes=1"
	}
	if err := c.do(ctx, http.MethodPost, path, nil); err != nil {
		return err
	}
	return c.WaitGone(ctx)
}

// WaitGone waits until the agent has released the workspace.
func (c *Client) WaitGone(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for Alive(c.stateDir) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the agent (pid %d) to stop: %w", c.info.PID, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// DLQ lists the parked messages, oldest first; subject (a subject or a
// wildcard, empty for all) narrows them.
func (c *Client) DLQ(ctx context.Context, subject string) ([]state.DLQMessage, error) {
	path := "/api/dlq"
	if subject != "" {
		path += "?subject=" + url.QueryEscape(subject)
	}
	var ms []state.DLQMessage
	err := c.do(ctx, http.MethodGet, path, &ms)
	return ms, err
}

// DLQMessage returns one parked message with its headers and payload.
func (c *Client) DLQMessage(ctx context.Context, id uint64) (state.DLQMessage, error) {
	var m state.DLQMessage
	err := c.do(ctx, http.MethodGet, "/api/dlq/"+strconv.FormatUint(id, 10), &m)
	return m, err
}

// DLQReplay delivers the selected parked messages to their consumers again
// and removes them from the DLQ.
func (c *Client) DLQReplay(ctx context.Context, sel DLQSelection) (state.DLQOutcome, error) {
	return c.dlqOp(ctx, "replay", sel)
}

// DLQDrop deletes the selected parked messages.
func (c *Client) DLQDrop(ctx context.Context, sel DLQSelection) (state.DLQOutcome, error) {
	return c.dlqOp(ctx, "drop", sel)
}

func (c *Client) dlqOp(ctx context.Context, op string, sel DLQSelection) (state.DLQOutcome, error) {
	v := url.Values{}
	if sel.All {
		v.Set("all", "1")
	}
	if sel.Subject != "" {
		v.Set("subject", sel.Subject)
	}
	if len(sel.IDs) > 0 {
		ids := make([]string, len(sel.IDs))
		for i, id := range sel.IDs {
			ids[i] = strconv.FormatUint(id, 10)
		}
		v.Set("id", strings.Join(ids, ","))
	}
	var out state.DLQOutcome
	err := c.do(ctx, http.MethodPost, "/api/dlq/"+op+"?"+v.Encode(), &out)
	return out, err
}
