// Package introspect serves ipamd's introspection endpoint.
//
// The paths and JSON shapes are upstream's (operators' scripts and support
// tooling read them): /v1/enis, /v1/eni-configs, /v1/networkutils-env-settings
// and /v1/ipamd-env-settings; any other path lists the commands. We add
// /v1/pool, a summary of the warm pool and what ipamd is waiting on, which
// the ipamctl command renders for humans.
package introspect
