// Package cniplugin holds the VM tier's end-to-end test of the aws-cni
// binary: ADD, CHECK and DEL of a branch-ENI pod on a real 802.1Q trunk,
// with a minimal ipamd that answers as ipamd does for a pod with a branch
// ENI. It has only tests; test/vm runs them inside the guest.
package cniplugin
