package envfile

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/joho/godotenv"

	"github.com/msctl/msctl/internal/manifest"
)

// Entry is one variable a file sets, at the line of its last assignment.
type Entry struct {
	Name  string
	Value string
	Line  int
}

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Parse reads one dotenv file (file names it in errors): NAME=value lines,
// blank lines and # comments, an optional `export ` prefix, 'single' (as
// written) or "double" quoted values (\n escapes, ${VAR} of variables
// set earlier in the same file; may span lines), unquoted values up to a
// ` #` comment. godotenv does the values; a scan of ours first finds where
// each statement starts, so that every problem is reported with its line
// and each variable keeps the line it came from. Every problem of the
// file comes back at once, as manifest.Errors, with the entries the scan
// found (without values) for further checks.
func Parse(file string, data []byte) ([]Entry, error) {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	entries, errs := scan(file, strings.Split(string(data), "\n"))
	if len(errs) > 0 {
		return entries, errs
	}
	values, err := godotenv.UnmarshalBytes(data)
	if err != nil { // the scan accepts only what godotenv reads
		return nil, manifest.Errors{{File: file, Msg: err.Error(), Fix: "write NAME=value lines"}}
	}
	for i := range entries {
		entries[i].Value = values[entries[i].Name]
	}
	return entries, nil
}

// scan checks each statement of lines and returns the variables in the
// order of their last assignment.
func scan(file string, lines []string) ([]Entry, manifest.Errors) {
	var errs manifest.Errors
	fail := func(line int, fix, format string, args ...any) {
		errs = append(errs, &manifest.Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Fix: fix})
	}
	last := map[string]int{}
	var order []string
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		stmt := strings.TrimSpace(lines[i])
		if stmt == "" || strings.HasPrefix(stmt, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(stmt, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			stmt = strings.TrimSpace(rest)
		}
		name, value, ok := strings.Cut(stmt, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			// The line is not quoted back: it may be a pasted secret.
			fail(lineNo, "write NAME=value (or start the line with # to keep it as a comment)", "not a NAME=value line (no =)")
			continue
		case !varName.MatchString(name):
			fail(lineNo, "use letters, digits and _ in names, not starting with a digit, e.g. API_TOKEN=…", "invalid variable name %q", clip(name))
			continue
		}
		value = strings.TrimLeft(value, " \t")
		if value != "" && (value[0] == '"' || value[0] == '\'') {
			end, rest, closed := closeQuote(lines, i, value)
			if !closed {
				fail(lineNo, "close the quote with "+string(value[0])+" (a quoted value may span lines; a literal "+string(value[0])+" inside is written \\"+string(value[0])+")",
					"the value of %s opens a quote that never closes", name)
				break // the rest of the file is inside the quote
			}
			if rest = strings.TrimSpace(rest); rest != "" && !strings.HasPrefix(rest, "#") {
				fail(end+1, "quote the whole value, or put one variable per line", "text after the closing quote of %s", name)
			}
			i = end
		}
		if _, seen := last[name]; !seen {
			order = append(order, name)
		}
		last[name] = lineNo
	}
	entries := make([]Entry, 0, len(order))
	for _, n := range order {
		entries = append(entries, Entry{Name: n, Line: last[n]})
	}
	// Later assignments win: keep the order of the lines that count.
	slices.SortFunc(entries, func(a, b Entry) int { return a.Line - b.Line })
	return entries, errs
}

// closeQuote finds the quote closing value (which starts with it, on line
// start): the same quote character not preceded by a backslash, as
// godotenv reads it. It returns the line it is on and what follows it.
func closeQuote(lines []string, start int, value string) (int, string, bool) {
	q := value[0]
	text := value[1:]
	for i := start; i < len(lines); i++ {
		if i > start {
			text = lines[i]
		}
		for j := 0; j < len(text); j++ {
			if text[j] == q && (j == 0 || text[j-1] != '\\') {
				return i, text[j+1:], true
			}
		}
	}
	return 0, "", false
}

// clip shortens a name quoted in a message.
func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
