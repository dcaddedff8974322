package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/msctl/msctl/internal/manifest"
)

// Exit codes of msctl.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2 // bad flags, arguments or manifest
	exitInterrupted = 130
)

// usageErr marks an error as the user's invocation being wrong rather than
// the work failing.
type usageErr struct{ err error }

func (e *usageErr) Error() string { return e.err.Error() }
func (e *usageErr) Unwrap() error { return e.err }

// usageError marks err as a usage error: msctl exits 2 and points at --help.
// Commands use it for argument problems they detect themselves.
func usageError(err error) error {
	if err == nil {
		return nil
	}
	return &usageErr{err: err}
}

// exitCode maps the outcome of a command to msctl's exit code. started says
// whether the command's own RunE was reached: anything cobra rejects before
// that (unknown command or flag, wrong arguments) is a usage error.
func exitCode(ctx context.Context, err error, started bool) int {
	if ctx.Err() != nil {
		return exitInterrupted
	}
	if err == nil {
		return exitOK
	}
	var ue *usageErr
	var me *manifest.Error
	if !started || errors.As(err, &ue) || errors.As(err, &me) {
		return exitUsage
	}
	return exitFailure
}

// printError is the one place msctl reports an error.
func printError(w io.Writer, err error, code int) {
	if err == nil || (code == exitInterrupted && errors.Is(err, context.Canceled)) {
		return
	}
	var list manifest.Errors
	if errors.As(err, &list) {
		// One "msctl:" line per problem so each reads like a compiler error.
		for _, e := range list {
			fmt.Fprintf(w, "msctl: %v\n", e)
		}
		return
	}
	fmt.Fprintf(w, "msctl: %v\n", err)
	// A manifest error already says how to fix it; other usage errors
	// point at the help.
	var me *manifest.Error
	if code == exitUsage && !errors.As(err, &me) {
		fmt.Fprintln(w, "Run 'msctl --help' for usage.")
	}
}
