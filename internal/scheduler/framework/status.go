package framework

import (
	"errors"
	"strings"
)

// Code is the outcome class of a plugin call.
type Code int

// The outcome classes. Expected outcomes (a node that does not fit) are
// Unschedulable or UnschedulableAndUnresolvable, never Error: Error means
// the plugin could not decide, and the pod is retried after a backoff.
const (
	// Success: the plugin agrees (a nil *Status also means Success).
	Success Code = iota
	// Error: something failed that has nothing to do with the pod's fit
	// (a bad cycle state, an API error). The pod goes to the backoff queue.
	Error
	// Unschedulable: the pod does not fit this node now, and preemption
	// of lower-priority pods might change that.
	Unschedulable
	// UnschedulableAndUnresolvable: the pod does not fit this node, and
	// evicting pods cannot change that (a taint, a selector).
	UnschedulableAndUnresolvable
	// Skip: from PreFilter or PreScore, the plugin has nothing to check
	// for this pod and its Filter or Score is not called this cycle.
	Skip
)

var codeNames = [...]string{"Success", "Error", "Unschedulable", "UnschedulableAndUnresolvable", "Skip"}

func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Unknown"
}

// Status is the result of a plugin call: a Code and the reasons people
// read ("Insufficient cpu"). A nil *Status is Success; every method works
// on nil. Statuses are values once returned: callers do not modify them.
type Status struct {
	code    Code
	reasons []string
	err     error
	plugin  string
}

// NewStatus returns a status with the code and reasons.
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{code: code, reasons: reasons}
}

// AsStatus wraps err as an Error status; nil gives nil (Success).
func AsStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return &Status{code: Error, reasons: []string{err.Error()}, err: err}
}

// Code returns the status's code.
func (s *Status) Code() Code {
	if s == nil {
		return Success
	}
	return s.code
}

// IsSuccess reports whether the code is Success.
func (s *Status) IsSuccess() bool { return s.Code() == Success }

// IsSkip reports whether the code is Skip.
func (s *Status) IsSkip() bool { return s.Code() == Skip }

// IsRejected reports whether the pod does not fit: Unschedulable or
// UnschedulableAndUnresolvable.
func (s *Status) IsRejected() bool {
	c := s.Code()
	return c == Unschedulable || c == UnschedulableAndUnresolvable
}

// Reasons returns the reasons; the caller must not modify the slice.
func (s *Status) Reasons() []string {
	if s == nil {
		return nil
	}
	return s.reasons
}

// Message joins the reasons with ", ".
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.reasons, ", ")
}

// Err returns the error of an Error status (or one made from its
// message), and nil for every other code.
func (s *Status) Err() error {
	if s.Code() != Error {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return errors.New(s.Message())
}

// Plugin is the name of the plugin that returned the status, once the
// framework has recorded it.
func (s *Status) Plugin() string {
	if s == nil {
		return ""
	}
	return s.plugin
}

// WithPlugin returns a copy of s that records the plugin's name. It
// returns nil for nil.
func (s *Status) WithPlugin(name string) *Status {
	if s == nil {
		return nil
	}
	c := *s
	c.plugin = name
	return &c
}

func (s *Status) String() string {
	if s == nil {
		return "Success"
	}
	if len(s.reasons) == 0 {
		return s.code.String()
	}
	return s.code.String() + ": " + s.Message()
}

// AsError returns nil for Success and an error carrying the message (or
// the wrapped error of an Error status) otherwise.
func (s *Status) AsError() error {
	if s.IsSuccess() {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return errors.New(s.String())
}
