package crmsync

import (
	"errors"
	"fmt"
)

func sprint(v any) string  { return fmt.Sprint(v) }
func sprintV(v any) string { return fmt.Sprintf("%v %s %q %+v %#v", v, v, v, v, v) }
func errorsAs(err error, target any) bool {
	return errors.As(err, target)
}
