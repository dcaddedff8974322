package main

import (
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/config"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"defaults", map[string]string{"GATEWAY_ROUTES": systemRoutes}, ""},
		{"routes required", map[string]string{}, "GATEWAY_ROUTES is required"},
		{"zero rate", map[string]string{"GATEWAY_ROUTES": systemRoutes, "RATE_LIMIT_RPS": "0"}, "RATE_LIMIT_RPS"},
		{"negative timeout", map[string]string{"GATEWAY_ROUTES": systemRoutes, "SUMMARY_TIMEOUT": "-1s"}, "SUMMARY_TIMEOUT"},
		{"no breaker threshold", map[string]string{"GATEWAY_ROUTES": systemRoutes, "BREAKER_FAILURES": "0"}, "BREAKER_FAILURES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			err := config.LoadFrom(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, &cfg)
			if err == nil {
				err = cfg.validate()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Auth.Issuer != "msctl-users" || cfg.Auth.Audience != "msctl" || cfg.SummaryTimeout.String() != "800ms" {
					t.Fatalf("defaults: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
