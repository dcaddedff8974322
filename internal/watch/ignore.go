package watch

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Ignore decides which paths under a workspace root a change of is not a
// change of the source: the workspace's .gitignore, msctl's own state and
// build outputs, dependencies installed by tools, and editor temp files.
type Ignore struct {
	root  string
	rules []rule
}

// rule is one .gitignore line: the last rule that matches a path decides.
type rule struct {
	re      *regexp.Regexp
	negate  bool
	dirOnly bool
}

// alwaysIgnored are directory names never watched, wherever they are: VCS
// data, msctl's state (its built binaries included), build outputs and
// installed dependencies.
var alwaysIgnored = map[string]bool{".git": true, ".msctl": true, "bin": true, "node_modules": true}

// NewIgnore reads root/.gitignore, when there is one, into an Ignore.
func NewIgnore(root string) (*Ignore, error) {
	ig := &Ignore{root: root}
	f, err := os.Open(filepath.Join(root, ".gitignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return ig, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if r, ok := parseRule(sc.Text()); ok {
			ig.rules = append(ig.rules, r)
		}
	}
	return ig, sc.Err()
}

// parseRule turns one .gitignore line into a rule; blank lines and
// comments give none.
func parseRule(line string) (rule, bool) {
	line = strings.TrimRight(line, " \t\r")
	if line == "" || strings.HasPrefix(line, "#") {
		return rule{}, false
	}
	var r rule
	if strings.HasPrefix(line, "!") {
		r.negate, line = true, line[1:]
	} else if strings.HasPrefix(line, `\`) {
		line = line[1:] // \# and \! stand for themselves
	}
	if strings.HasSuffix(line, "/") {
		r.dirOnly, line = true, strings.TrimRight(line, "/")
	}
	// A pattern with a slash before its end is relative to the root;
	// one without matches a name at any depth.
	anchored := strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	if line == "" {
		return rule{}, false
	}
	expr := globRegexp(line)
	if !anchored {
		expr = "(?:.*/)?" + expr
	}
	// A matched directory ignores everything below it.
	r.re = regexp.MustCompile("^" + expr + "$")
	return r, true
}

// globRegexp translates a gitignore glob into a regular expression: *
// and ? stay within a path segment, ** crosses them.
func globRegexp(glob string) string {
	var b strings.Builder
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch {
		case strings.HasPrefix(glob[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(glob[i:], "/**") && i+3 == len(glob):
			b.WriteString("/.*")
			i += 2
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := glob[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += end + 1
		case c == '\\' && i+1 < len(glob):
			i++
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// Ignored reports whether a change of p (absolute, or relative to the
// root) should be ignored; dir says whether p is a directory. A path
// below an ignored directory is ignored too.
func (ig *Ignore) Ignored(p string, dir bool) bool {
	rel := p
	if filepath.IsAbs(p) {
		r, err := filepath.Rel(ig.root, p)
		if err != nil || strings.HasPrefix(r, "..") {
			// Outside the workspace (shared code of a module above it):
			// only the built-in rules apply.
			return builtinIgnored(p, dir)
		}
		rel = r
	}
	rel = filepath.ToSlash(rel)
	if rel == "." || rel == "" {
		return false
	}
	if builtinIgnored(rel, dir) {
		return true
	}
	// Walk from the top: a directory that is ignored hides what is below.
	parts := strings.Split(rel, "/")
	for i := range parts {
		isDir := dir || i < len(parts)-1
		if ig.match(strings.Join(parts[:i+1], "/"), isDir) {
			return true
		}
	}
	return false
}

func (ig *Ignore) match(rel string, dir bool) bool {
	ignored := false
	for _, r := range ig.rules {
		if r.dirOnly && !dir {
			continue
		}
		if r.re.MatchString(rel) {
			ignored = !r.negate
		}
	}
	return ignored
}

// builtinIgnored holds the rules that need no .gitignore: the directories
// of alwaysIgnored anywhere on the path and editor temp files.
func builtinIgnored(p string, dir bool) bool {
	p = filepath.ToSlash(p)
	for _, part := range strings.Split(p, "/") {
		if alwaysIgnored[part] {
			return true
		}
	}
	return !dir && editorTemp(path.Base(p))
}

// editorTemp reports whether name is a file editors write beside the one
// being saved: vim's swap and backup files and its write probe "4913",
// emacs' lock and auto-save files, JetBrains' and GNOME's safe-write
// temporaries.
func editorTemp(name string) bool {
	switch {
	case name == "4913",
		strings.HasSuffix(name, "~"),
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swx"), strings.HasSuffix(name, ".swo"),
		strings.HasPrefix(name, ".#"),
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"),
		strings.HasSuffix(name, ".tmp"),
		strings.HasPrefix(name, ".goutputstream-"),
		strings.HasSuffix(name, "___jb_tmp___"), strings.HasSuffix(name, "___jb_old___"):
		return true
	}
	return false
}
