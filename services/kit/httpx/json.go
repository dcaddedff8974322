package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/msctl/msctl/services/kit/errs"
)

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("write json response", "err", err)
	}
}

// WriteError answers with err as {"error":{"code","message"}}. Errors that are not *errs.Error
// become a 500 whose cause is logged, never sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := errs.From(err)
	if e.Status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"status", e.Status, "code", e.Code, "err", err)
	}
	WriteJSON(w, e.Status, e.Body())
}

// DecodeJSON strictly decodes the request body into dst: one JSON value, no unknown fields. Its
// error is an *errs.Error (400, or 413 past the body limit) ready for WriteError.
func DecodeJSON(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeErr(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if e := decodeErr(err); e.Status == http.StatusRequestEntityTooLarge {
				return e
			}
		}
		return errs.BadRequest("invalid_json", "request body must be a single JSON value")
	}
	return nil
}

func decodeErr(err error) *errs.Error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return errs.TooLarge("body_too_large", fmt.Sprintf("request body exceeds %d bytes", maxErr.Limit))
	case errors.Is(err, io.EOF):
		return errs.BadRequest("invalid_json", "request body is empty")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return errs.BadRequest("invalid_json", "request body is not valid JSON")
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return errs.BadRequest("invalid_json", fmt.Sprintf("field %q must be %s", typeErr.Field, typeErr.Type))
		}
		return errs.BadRequest("invalid_json", "request body has the wrong JSON type")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errs.BadRequest("invalid_json", strings.TrimPrefix(err.Error(), "json: ")).Wrap(err)
	}
	return errs.BadRequest("invalid_json", "request body is not valid JSON").Wrap(err)
}
