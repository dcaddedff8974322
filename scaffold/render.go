package scaffold

import (
	"bytes"
	"fmt"
	"go/format"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"

	"github.com/msctl/msctl/templates"
)

// Rendering rules of a template set:
//   - only files ending in .tmpl are rendered, to their path without it;
//   - service/... goes to the service directory, anything else to the same
//     path in the workspace;
//   - NAME in a file name becomes the service name;
//   - a file that renders to nothing but white space is not written, which
//     is how a template is conditional (e.g. on .DB);
//   - Go files are gofmt'ed, so templates need not get blank lines right.
const (
	tmplExt     = ".tmpl"
	serviceRoot = "service"
	nameToken   = "NAME"
)

func render(set templates.Set, d Data) ([]File, error) {
	var files []File
	err := fs.WalkDir(set.FS, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.HasSuffix(p, tmplExt) {
			return nil
		}
		src, err := fs.ReadFile(set.FS, p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("template %s/%s: %w", set.Name, p, err)
		}
		var out bytes.Buffer
		if err := t.Execute(&out, d); err != nil {
			return fmt.Errorf("template %s/%s: %w", set.Name, p, err)
		}
		if len(bytes.TrimSpace(out.Bytes())) == 0 {
			return nil
		}
		target := targetPath(p, d)
		data := out.Bytes()
		if strings.HasSuffix(target, ".go") {
			if data, err = format.Source(data); err != nil {
				return fmt.Errorf("template %s/%s renders invalid Go: %w\n%s", set.Name, p, err, out.Bytes())
			}
		} else if !bytes.HasSuffix(data, []byte("\n")) {
			data = append(data, '\n')
		}
		files = append(files, File{Path: target, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", d.Name, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// targetPath maps a template path to its path in the workspace.
func targetPath(p string, d Data) string {
	p = strings.TrimSuffix(p, tmplExt)
	dir, base := path.Split(p)
	p = dir + strings.ReplaceAll(base, nameToken, d.Name)
	if rest, ok := strings.CutPrefix(p, serviceRoot+"/"); ok {
		return d.Dir + "/" + rest
	}
	return p
}
