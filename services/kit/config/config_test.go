package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type svcConfig struct {
	Base
	Issuer  string        `env:"ISSUER" default:"msctl-users"`
	Secret  string        `env:"SECRET" required:"true" example:"s3cret"`
	TTL     time.Duration `env:"TTL" default:"1h"`
	Workers int           `env:"WORKERS" default:"4"`
	Debug   bool          `env:"DEBUG"`
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	var c svcConfig
	err := LoadFrom(lookup(map[string]string{
		"SECRET":         "x",
		"ETCD_ENDPOINTS": "http://a:2379, http://b:2379,",
		"REGISTRY_TTL":   "2s",
		"DEBUG":          "true",
		"WORKERS":        " 8 ",
	}), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret != "x" || c.Issuer != "msctl-users" || c.TTL != time.Hour || c.Workers != 8 || !c.Debug {
		t.Fatalf("service fields = %+v", c)
	}
	if !reflect.DeepEqual(c.EtcdEndpoints, []string{"http://a:2379", "http://b:2379"}) || c.RegistryTTL != 2*time.Second ||
		c.LogLevel != "info" || c.HTTPAddr != "127.0.0.1:0" || c.MaxBodyBytes != 1<<20 {
		t.Fatalf("base = %+v", c.Base)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing required", map[string]string{}, []string{"SECRET is required", "SECRET=s3cret"}},
		{"bad duration", map[string]string{"SECRET": "x", "REGISTRY_TTL": "5"}, []string{`REGISTRY_TTL="5"`, "not a duration", "REGISTRY_TTL=5s"}},
		{"bad int", map[string]string{"SECRET": "x", "WORKERS": "many"}, []string{"WORKERS", "not an integer"}},
		{"bad bool", map[string]string{"SECRET": "x", "DEBUG": "yes please"}, []string{"DEBUG", "not a boolean"}},
		{"bad level", map[string]string{"SECRET": "x", "LOG_LEVEL": "loud"}, []string{"LOG_LEVEL", "debug,info,warn,error"}},
		{"all reported", map[string]string{"WORKERS": "x"}, []string{"SECRET", "WORKERS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c svcConfig
			err := LoadFrom(lookup(tt.env), &c)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if err := LoadFrom(lookup(nil), svcConfig{}); err == nil {
		t.Error("a non-pointer was accepted")
	}
}
