package main

import (
	"fmt"
	"strings"
)

// prose formats a figure's method text written as a raw string over
// several indented lines: every run of white space in the format becomes one
// space, so the text reads as prose in the source and as one line in the
// results.
func prose(format string, args ...any) string {
	return fmt.Sprintf(strings.Join(strings.Fields(format), " "), args...)
}
