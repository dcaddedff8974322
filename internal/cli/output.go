package cli

import (
	"encoding/json"
	"io"
)

// writeListJSON prints a list as a JSON array: [] rather than null when empty.
func writeListJSON[T any](w io.Writer, list []T) error {
	if list == nil {
		list = []T{}
	}
	return writeJSON(w, list)
}

// writeJSON prints v as indented JSON, the one --json format.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
