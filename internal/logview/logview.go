// Package logview renders the services' log lines for a person: the JSON
// lines kit/logx writes become
//
//	15:04:05.000 INFO  orders  order placed order_id=42 trace_id=…
//
// (time, level, service, message, then the other attributes as key=value in
// the order the service wrote them), with colour on a terminal. It is the
// one format of `msctl logs` and of the foreground `msctl up`.
package logview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/charmbracelet/lipgloss"

	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/services/kit/logx"
)

// Options choose what a Printer prints.
type Options struct {
	// Raw prints each line exactly as the service wrote it, e.g. for jq.
	Raw bool
	// MinLevel hides lines below it; lines that are not JSON count as info.
	// The zero value is slog.LevelInfo: ParseLevel("") gives every line.
	MinLevel slog.Level
	// Width pads the service column, usually to the longest service name.
	Width int
	// Renderer decides colours; nil means one for the writer, which colours
	// only a terminal and honours NO_COLOR.
	Renderer *lipgloss.Renderer
}

// ParseLevel reads a --level value; empty means every line.
func ParseLevel(s string) (slog.Level, error) {
	if s == "" {
		return slog.LevelDebug, nil
	}
	return logx.ParseLevel(s)
}

// LevelOf is the level a line is filtered by: its JSON level, info for a
// line without one.
func LevelOf(l state.LogLine) slog.Level {
	name := l.Level
	if name == "" {
		name = state.LevelOf(l.Text)
	}
	var level slog.Level
	if name == "" || level.UnmarshalText([]byte(name)) != nil {
		return slog.LevelInfo
	}
	return level
}

// Printer writes log lines to one writer.
type Printer struct {
	w    io.Writer
	opts Options
	st   styles
}

// New returns a Printer writing to w.
func New(w io.Writer, opts Options) *Printer {
	r := opts.Renderer
	if r == nil {
		r = lipgloss.NewRenderer(w)
	}
	return &Printer{w: w, opts: opts, st: newStyles(r)}
}

type styles struct {
	time, service, key, err lipgloss.Style
	levels                  map[slog.Level]lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	c := func(ansi string) lipgloss.Style { return r.NewStyle().Foreground(lipgloss.Color(ansi)) }
	return styles{
		time:    r.NewStyle().Faint(true),
		service: c("6"),
		key:     r.NewStyle().Faint(true),
		err:     c("1"),
		levels: map[slog.Level]lipgloss.Style{
			slog.LevelDebug: c("4"),
			slog.LevelInfo:  c("2"),
			slog.LevelWarn:  c("3"),
			slog.LevelError: c("1").Bold(true),
		},
	}
}

// Hides reports whether the level filter leaves l out; --json, which
// prints lines itself, asks it too.
func (p *Printer) Hides(l state.LogLine) bool { return LevelOf(l) < p.opts.MinLevel }

// Print writes l unless the level filter hides it.
func (p *Printer) Print(l state.LogLine) error {
	if p.Hides(l) {
		return nil
	}
	level := LevelOf(l)
	if p.opts.Raw {
		_, err := fmt.Fprintln(p.w, l.Text)
		return err
	}
	rec, ok := parse(l.Text)
	var b strings.Builder
	at := l.Time
	if ok && !rec.time.IsZero() {
		at = rec.time
	}
	b.WriteString(p.st.time.Render(at.Local().Format("15:04:05.000")))
	b.WriteByte(' ')
	lvl := "     " // a line that is not JSON has no level to show
	if ok && rec.level != nil {
		lvl = fmt.Sprintf("%-5s", levelName(*rec.level))
	}
	b.WriteString(p.levelStyle(level).Render(lvl))
	b.WriteByte(' ')
	b.WriteString(p.st.service.Render(fmt.Sprintf("%-*s", p.opts.Width, l.Service)))
	b.WriteByte(' ')
	if !ok {
		b.WriteString(l.Text)
	} else {
		b.WriteString(rec.msg)
		for _, a := range rec.attrs {
			b.WriteByte(' ')
			kv := p.st.key.Render(a.key+"=") + a.value
			if a.key == "err" || a.key == "error" {
				kv = p.st.err.Render(a.key + "=" + a.value)
			}
			b.WriteString(kv)
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(p.w, b.String())
	return err
}

// levelStyle is the style of the nearest named level at or below l.
func (p *Printer) levelStyle(l slog.Level) lipgloss.Style {
	for _, named := range []slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo} {
		if l >= named {
			return p.st.levels[named]
		}
	}
	return p.st.levels[slog.LevelDebug]
}

// levelName is slog's name without its offset ("INFO+2" is shown as INFO),
// so the column stays five cells wide.
func levelName(l slog.Level) string {
	name := l.String()
	if i := strings.IndexAny(name, "+-"); i > 0 {
		name = name[:i]
	}
	return name
}

type attr struct{ key, value string }

type record struct {
	time  time.Time
	level *slog.Level
	msg   string
	attrs []attr
}

// parse reads a JSON object line, keeping its keys in order; ok is false
// for anything else, which is then printed as it is.
func parse(line string) (record, bool) {
	var rec record
	if !strings.HasPrefix(line, "{") {
		return rec, false
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return rec, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return rec, false
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return rec, false
		}
		if !rec.known(key, raw) {
			rec.attrs = flatten(rec.attrs, key, raw)
		}
	}
	return rec, true
}

// known takes the keys every kit/logx line has; false means an attribute.
// A known key with a value of another type is shown as an attribute.
func (r *record) known(key string, raw json.RawMessage) bool {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	switch key {
	case "time":
		t, err := time.Parse(time.RFC3339Nano, s)
		r.time = t
		return err == nil
	case "level":
		var l slog.Level
		if l.UnmarshalText([]byte(s)) != nil {
			return false
		}
		r.level = &l
		return true
	case "msg":
		r.msg = s
		return true
	case "service":
		return true // the service column shows it
	}
	return false
}

// flatten appends key=value, a nested object as group.key=value the way
// slog's text handler writes groups, and anything else as compact JSON.
func flatten(attrs []attr, key string, raw json.RawMessage) []attr {
	raw = bytes.TrimSpace(raw)
	switch raw[0] {
	case '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		_, _ = dec.Token()
		n := len(attrs)
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				break
			}
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				break
			}
			attrs = flatten(attrs, key+"."+fmt.Sprint(t), v)
		}
		if len(attrs) == n { // {} says the group was there but empty
			attrs = append(attrs, attr{key, "{}"})
		}
		return attrs
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return append(attrs, attr{key, quote(s)})
	}
	// Numbers, booleans, null and arrays read as they are in JSON.
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	v := b.String()
	if strings.ContainsFunc(v, unicode.IsSpace) {
		v = strconv.Quote(v)
	}
	return append(attrs, attr{key, v})
}

// quote quotes a value only when it would not read back as one word: empty,
// or holding a space, a quote, an equals sign or an unprintable rune.
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
