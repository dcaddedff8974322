// Package registry is service discovery on etcd: instances register under
// /msctl/registry/<service>/<instance-id> with a lease kept alive while they are ready, and
// callers resolve services from a watch-fed in-memory table.
package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix is the etcd key prefix of all registrations.
const Prefix = "/msctl/registry/"

// ErrNoInstances means no live instance of a service is known.
var ErrNoInstances = errors.New("no live instances")

// Instance is the value stored under an instance's key.
type Instance struct {
	ID        string    `json:"id"`
	Service   string    `json:"service"`
	Addr      string    `json:"addr"`
	StartedAt time.Time `json:"started_at"`
}

// Key is the etcd key of one instance.
func Key(service, id string) string {
	return Prefix + service + "/" + id
}

// ServicePrefix is the etcd key prefix of one service's instances.
func ServicePrefix(service string) string {
	return Prefix + service + "/"
}

// Picker chooses one live instance of a service per call. Resolver and Static implement it.
type Picker interface {
	Pick(service string) (Instance, error)
}

func parse(key string, value []byte) (Instance, error) {
	var in Instance
	if err := json.Unmarshal(value, &in); err != nil {
		return Instance{}, fmt.Errorf("decode registration %s: %w", key, err)
	}
	rest := strings.TrimPrefix(key, Prefix)
	svc, id, ok := strings.Cut(rest, "/")
	if !ok || svc == "" || id == "" {
		return Instance{}, fmt.Errorf("malformed registry key %s", key)
	}
	// The key is authoritative: it is what a lease expiry or a delete names.
	in.Service, in.ID = svc, id
	if in.Addr == "" {
		return Instance{}, fmt.Errorf("registration %s has no addr", key)
	}
	return in, nil
}
