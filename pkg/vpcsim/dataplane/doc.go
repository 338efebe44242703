// Package dataplane is vpcsim's packet path: a set of Linux network
// namespaces that behave like an EC2 VPC for the instances in it.
//
//	node namespace (one per instance)      VPC namespace ("the fabric")          internet namespace
//	  eth0 ── veth ──────────────────────►  ENI link, proxy ARP, rp_filter=1  ──► inet ── vpc  203.0.113.10
//	  eth1 ── veth (hot-plugged) ────────►  ENI link                               (echo service)
//	                                        lo: every subnet router (subnet+1),
//	                                            169.254.169.254 (IMDS), EC2 API
//
// Each attached ENI is a veth pair: the instance side is named eth<device
// index> and carries the ENI's MAC; the other side lives in the VPC
// namespace. The VPC namespace routes every assigned address and prefix to
// the link of the ENI that owns it, and strict reverse-path filtering on the
// ENI links drops any packet whose source is not assigned to the ENI it came
// from: EC2's source/destination check. Only the primary addresses of
// instances with a public IP reach the internet namespace (policy routing in
// the VPC namespace), translated 1:1 to their public IP by an nftables table
// that plays the internet gateway; the internet routes back to exactly those
// public IPs. So pods reach the internet only through their node's SNAT, and
// the far end sees the node's public IP.
//
// Nothing is created in the machine's root network namespace. Namespaces are
// named "vpcsim-<pid>x<rand>-<role>" under /run/netns; Close removes them and
// Cleanup/CleanupStale remove what a crashed run left behind.
package dataplane
