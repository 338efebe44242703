package node

import (
	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// kubeenv.Apply builds a controller-runtime client, which prints a stack
// trace to stderr when no logger was ever set; this tier has nothing to say
// through it.
func init() { ctrllog.SetLogger(logr.Discard()) }
