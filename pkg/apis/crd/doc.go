// Package crd holds what our hand-written custom resource types share:
// registering them in a scheme and the generic parts of their DeepCopy
// methods.
package crd
