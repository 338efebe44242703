// Package trailer names the gRPC trailer keys ipamd and the aws-cni plugin
// share. It is a leaf so the plugin can use them without importing ipamd
// (and with it the AWS SDK, Kubernetes and Prometheus).
package trailer

// Cause carries the reason of a Success=false reply: the reply message
// has no field for it, and upstream's clients ignore trailers.
const Cause = "vpc-cni-cause"
