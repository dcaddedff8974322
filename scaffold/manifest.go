package scaffold

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/msctl/msctl/internal/manifest"
)

// entryLine is one line of a service's manifest entry; depth 0 is a key of
// the service, depth 1 a key under one of those.
type entryLine struct {
	depth int
	text  string
}

func entryLines(d Data, opts Options) []entryLine {
	lines := []entryLine{{0, "path: " + d.Dir}, {0, "language: " + d.Language}}
	if d.DB {
		lines = append(lines, entryLine{0, "database: true"})
	}
	if opts.Port != 0 {
		lines = append(lines, entryLine{0, "port: " + strconv.Itoa(opts.Port)})
	}
	if len(opts.Depends) > 0 {
		lines = append(lines, entryLine{0, "depends_on: [" + strings.Join(opts.Depends, ", ") + "]"})
	}
	if d.Route != "" {
		lines = append(lines, entryLine{0, "routes:"}, entryLine{1, d.Route + ": " + d.Access})
	}
	return lines
}

// renderEntry writes the entry with the service key indented by indent and
// each level below it by unit.
func renderEntry(name string, lines []entryLine, indent, unit string) string {
	var b strings.Builder
	b.WriteString(indent + name + ":\n")
	for _, l := range lines {
		b.WriteString(indent + strings.Repeat(unit, l.depth+1) + l.text + "\n")
	}
	return b.String()
}

// addService inserts the service's entry at the end of the services mapping
// of a manifest. It edits the text rather than re-encoding the YAML, so
// every comment, blank line and the order of everything else stay as the
// user wrote them; yaml.v3 only locates the mapping and its indentation.
func addService(src []byte, name string, lines []entryLine) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", manifest.FileName, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, refuse("declare project: and services: in "+manifest.FileName, "%s is not a mapping", manifest.FileName)
	}
	text := string(src)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	fileLines := strings.SplitAfter(text, "\n")
	if fileLines[len(fileLines)-1] == "" {
		fileLines = fileLines[:len(fileLines)-1]
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "services" {
			continue
		}
		next := len(fileLines) + 1 // first line after the services block
		if i+2 < len(root.Content) {
			next = root.Content[i+2].Line
		}
		switch {
		case v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0:
			indent := strings.Repeat(" ", v.Content[0].Column-1)
			unit := "  "
			if first := v.Content[1]; first.Kind == yaml.MappingNode && first.Style&yaml.FlowStyle == 0 && len(first.Content) > 0 && first.Content[0].Column > v.Content[0].Column {
				unit = strings.Repeat(" ", first.Content[0].Column-v.Content[0].Column)
			}
			// After the block's last line of content: comments and blank
			// lines before the next top-level key stay where they are.
			at := k.Line
			for n := next - 1; n > k.Line; n-- {
				if t := strings.TrimSpace(fileLines[n-1]); t != "" && !strings.HasPrefix(t, "#") {
					at = n
					break
				}
			}
			return insertAt(fileLines, at, renderEntry(name, lines, indent, unit)), nil
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value == "":
			return insertAt(fileLines, k.Line, renderEntry(name, lines, "  ", "  ")), nil
		default:
			return nil, refuse("write services: as a block mapping (one service name per line) so msctl new can add to it",
				"services: in %s is not a block mapping", manifest.FileName)
		}
	}
	return []byte(text + "services:\n" + renderEntry(name, lines, "  ", "  ")), nil
}

// insertAt inserts block after line n (1-based) of lines.
func insertAt(lines []string, n int, block string) []byte {
	var b bytes.Buffer
	for _, l := range lines[:n] {
		b.WriteString(l)
	}
	b.WriteString(block)
	for _, l := range lines[n:] {
		b.WriteString(l)
	}
	return b.Bytes()
}
