// Package errs is the one error type services answer with: an HTTP status plus a stable
// snake_case code and a human message, rendered as {"error":{"code","message"}}.
package errs

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error meant for the caller of an HTTP API.
type Error struct {
	Status  int
	Code    string
	Message string
	// Err is the underlying cause; it is logged, never sent to the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, errs.NotFound("", "")) style checks compare status and code only.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && t.Code == e.Code
}

// Wrap returns a copy of e carrying cause.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// New builds an Error with any status.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func BadRequest(code, message string) *Error   { return New(http.StatusBadRequest, code, message) }
func Unauthorized(code, message string) *Error { return New(http.StatusUnauthorized, code, message) }
func Forbidden(code, message string) *Error    { return New(http.StatusForbidden, code, message) }
func NotFound(code, message string) *Error     { return New(http.StatusNotFound, code, message) }
func Conflict(code, message string) *Error     { return New(http.StatusConflict, code, message) }
func TooLarge(code, message string) *Error {
	return New(http.StatusRequestEntityTooLarge, code, message)
}
func TooManyRequests(code, message string) *Error {
	return New(http.StatusTooManyRequests, code, message)
}
func Unavailable(code, message string) *Error {
	return New(http.StatusServiceUnavailable, code, message)
}
func Internal(code, message string) *Error { return New(http.StatusInternalServerError, code, message) }

// From turns any error into an *Error: an *Error found in the chain is returned as is, anything
// else becomes a 500 whose message hides the cause.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Err: err}
}

// Body is the JSON shape of an error response.
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inner object of Body.
type BodyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Body renders e for the wire.
func (e *Error) Body() Body {
	return Body{Error: BodyError{Code: e.Code, Message: e.Message}}
}
