package agent

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestRestartAnswers: the restart endpoint answers 404 naming services and
// infra for an unknown name, and 409 for infra that is not running yet.
func TestRestartAnswers(t *testing.T) {
	_, c := idleClient(t)
	err := c.Restart(t.Context(), "redis")
	if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != http.StatusNotFound || !strings.Contains(ae.Message, "services: echo; infra: postgres, nats, etcd") {
		t.Errorf("restart redis = %v, want 404 naming services and infra", err)
	}
	err = c.Restart(t.Context(), "postgres")
	if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, "not running") {
		t.Errorf("restart postgres before up = %v, want 409: not running", err)
	}
}
