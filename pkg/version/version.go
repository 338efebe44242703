// Package version carries the build's version, set by the linker.
package version

// Version is the build version (git describe), or "dev".
var Version = "dev"
