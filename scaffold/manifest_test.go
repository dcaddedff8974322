package scaffold

import (
	"errors"
	"testing"
)

// commented is a manifest with comments the edit must keep.
const commented = `# workspace
project: shop
gateway:
  port: 8080   # fixed

services:
  users:
    path: services/users   # where
    routes:
      /api/v1/auth: public
`

func TestAddService(t *testing.T) {
	entry := []entryLine{{0, "path: services/shipping"}, {0, "routes:"}, {1, "/api/v1/shipping: auth"}}
	tests := []struct {
		name, in, want string
		refused        bool
	}{
		{
			name: "appended after the last service, comments kept",
			in:   commented,
			want: commented + "  shipping:\n    path: services/shipping\n    routes:\n      /api/v1/shipping: auth\n",
		},
		{
			name: "indentation of the file is followed",
			in:   "project: shop\nservices:\n    users:\n        path: services/users\n",
			want: "project: shop\nservices:\n    users:\n        path: services/users\n    shipping:\n        path: services/shipping\n        routes:\n            /api/v1/shipping: auth\n",
		},
		{
			name: "before a later top-level key, its comment and the blank line stay",
			in:   "project: shop\nservices:\n  users: {path: services/users}\n\n# the gateway\ngateway:\n  port: 8080\n",
			want: "project: shop\nservices:\n  users: {path: services/users}\n  shipping:\n    path: services/shipping\n    routes:\n      /api/v1/shipping: auth\n\n# the gateway\ngateway:\n  port: 8080\n",
		},
		{
			name: "empty services",
			in:   "project: shop\nservices:\ngateway:\n  port: 8080\n",
			want: "project: shop\nservices:\n  shipping:\n    path: services/shipping\n    routes:\n      /api/v1/shipping: auth\ngateway:\n  port: 8080\n",
		},
		{
			name: "no services key, no final newline",
			in:   "project: shop",
			want: "project: shop\nservices:\n  shipping:\n    path: services/shipping\n    routes:\n      /api/v1/shipping: auth\n",
		},
		{
			name:    "flow mapping is refused",
			in:      "project: shop\nservices: {users: {path: services/users}}\n",
			refused: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := addService([]byte(tt.in), "shipping", entry)
			var r *Refusal
			if tt.refused {
				if !errors.As(err, &r) {
					t.Fatalf("err = %v, want a refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
