// Package migrations embeds the orders database schema, applied by kit at start.
package migrations

import "embed"

// FS holds the goose migrations at its root.
//
//go:embed *.sql
var FS embed.FS
