// Package templates embeds the template sets `msctl new service` renders,
// one directory per language. Files end in .tmpl so that a template tree may
// hold what Go would otherwise treat specially (a go.mod, _test.go files,
// files the embed pattern would skip).
//
// Inside a set, service/ is rendered into the new service's directory and
// every other top-level directory into the same path of the workspace (for
// example contracts/). The scaffold package owns the rendering rules.
package templates

import (
	"embed"
	"io/fs"
	"sort"
)

// Version is the version of the template sets. It is recorded in every
// generated service (.msctl-template) so an upgrade can tell which template
// a service came from; bump it whenever a rendered file changes.
const Version = "2"

//go:embed all:go
var files embed.FS

// Set is one language's template set.
type Set struct {
	// Name is the value of --lang, also the directory in this package.
	Name string
	// Description is one line for `msctl new`.
	Description string
	// FS holds the set's files, rooted at the set's directory.
	FS fs.FS
}

// descriptions lists the sets msctl offers; a directory without an entry
// here is not offered.
var descriptions = map[string]string{
	"go": "Go service on services/kit: HTTP API, optional Postgres with migrations, bus consumers (inbox) and publishers (outbox), tests, contract stub",
}

// Sets returns the available template sets, sorted by name.
func Sets() []Set {
	names := make([]string, 0, len(descriptions))
	for n := range descriptions {
		names = append(names, n)
	}
	sort.Strings(names)
	sets := make([]Set, 0, len(names))
	for _, n := range names {
		sub, err := fs.Sub(files, n)
		if err != nil {
			// fs.Sub fails only for an invalid path; names are constants.
			panic(err)
		}
		sets = append(sets, Set{Name: n, Description: descriptions[n], FS: sub})
	}
	return sets
}

// Lookup returns the set named name.
func Lookup(name string) (Set, bool) {
	for _, s := range Sets() {
		if s.Name == name {
			return s, true
		}
	}
	return Set{}, false
}
