package main

import (
	"errors"
	"fmt"
	"testing"
)

// tb lets this program use package testimage, whose helpers take a
// testing.TB, outside a test. Embedding the interface supplies its
// unexported method; the methods those helpers call are implemented here,
// and Fatal ends the helper by a panic that useTB turns into an error.
// Any other method would panic on the nil interface: a helper that starts
// calling one needs it added here.
type tb struct{ testing.TB }

// tbFailure is what tb's Fatal panics with.
type tbFailure struct{ msg string }

func (tb) Helper()                           {}
func (tb) Fatal(args ...any)                 { panic(tbFailure{fmt.Sprint(args...)}) }
func (tb) Fatalf(format string, args ...any) { panic(tbFailure{fmt.Sprintf(format, args...)}) }
func (tb) Errorf(format string, args ...any) { panic(tbFailure{fmt.Sprintf(format, args...)}) }
func (tb) Logf(string, ...any)               {}

// useTB runs f with a tb and returns its failure as an error.
func useTB(f func(t testing.TB)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fail, ok := r.(tbFailure)
			if !ok {
				panic(r)
			}
			err = errors.New(fail.msg)
		}
	}()
	f(tb{})
	return nil
}
