package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestOrphans(t *testing.T) {
	self := os.Getpid()
	start, _, err := procStat(self)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		procs []proc
		want  []Orphan
	}{
		{name: "no file"},
		{
			name: "live service and postgres are listed",
			procs: []proc{
				{PID: self, PGID: self, What: "orders-1-abc", Service: "orders", Endpoint: "127.0.0.1:1", Start: start},
				{PID: self, PGID: self, What: "postgres", Start: start},
			},
			want: []Orphan{
				{PID: self, Name: "orders", Instance: "orders-1-abc", Endpoint: "127.0.0.1:1"},
				{PID: self, Name: "postgres"},
			},
		},
		{
			name:  "a record without the service is named by its instance",
			procs: []proc{{PID: self, PGID: self, What: "users-1-def", Start: start}},
			want:  []Orphan{{PID: self, Name: "users-1-def", Instance: "users-1-def"}},
		},
		{
			name:  "a recycled pid is not ours",
			procs: []proc{{PID: self, PGID: self, What: "orders-1-abc", Service: "orders", Start: start + 1}},
		},
		{
			name:  "a dead pid is gone",
			procs: []proc{{PID: 1 << 30, PGID: 1 << 30, What: "orders-1-abc", Service: "orders", Start: start}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.procs != nil {
				data, _ := json.Marshal(tt.procs)
				if err := os.WriteFile(filepath.Join(dir, "pids.json"), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Orphans(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Orphans = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOrphansTornFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pids.json"), []byte(`[{"pid":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Orphans(dir); err != nil || got != nil {
		t.Errorf("Orphans of a torn file = %+v, %v; want none, like the reaper", got, err)
	}
}
